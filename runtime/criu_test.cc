// CRIU: a missing or broken one is a FailedPrecondition saying why, a probe keeps its answer,
// and the last errors of its logs are found.
#include "runtime/criu.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "test/util/temp_dir.h"
#include "util/fs.h"

namespace berth::engine {
namespace {

TEST(CriuTest, UnusableCriuIsAFailedPreconditionSayingWhy) {
  test::TempDir t;
  absl::Status missing = CriuProbe(t.path() + "/no-criu").Usable();
  EXPECT_TRUE(absl::IsFailedPrecondition(missing)) << missing;
  EXPECT_TRUE(absl::StrContains(missing.message(), "runtime.criu_path")) << missing;
  const std::string fake = t.path() + "/criu";
  ASSERT_TRUE(
      WriteFileAtomic(fake,
                      "#!/bin/sh\necho 'Warn  (kerndat.c:1): tmpfs' >&2\n"
                      "echo 'Error (vdso.c:1): vdso: Failed to fill self vdso symtable' >&2\n"
                      "exit 1\n",
                      0755)
          .ok());
  CriuProbe probe(fake);
  absl::Status broken = probe.Usable();
  EXPECT_TRUE(absl::IsFailedPrecondition(broken)) << broken;
  EXPECT_TRUE(absl::StrContains(broken.message(), "vdso symtable")) << broken;
  EXPECT_FALSE(absl::StrContains(broken.message(), "Warn")) << broken;
  // Kept by the probe: a CRIU that starts working needs a new probe (a berthd restart).
  ASSERT_TRUE(WriteFileAtomic(fake, "#!/bin/sh\nexit 0\n", 0755).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(probe.Usable()));
  absl::StatusOr<std::string> found = CriuProbe(fake).Find();
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, fake);
}

TEST(CriuTest, CriuLogErrorsKeepsTheLastErrorLines) {
  test::TempDir t;
  ASSERT_TRUE(
      WriteFileAtomic(t.path() + "/restore.log",
                      "(00.1) starting\n(00.2) Error (a.c:1): one\n(00.3) Error (b.c:2): two\n"
                      "(00.4) Error (c.c:3): three\n(00.5) Error (d.c:4): four\n")
          .ok());
  EXPECT_EQ(CriuLogErrors(t.path() + "/restore.log"),
            "(00.3) Error (b.c:2): two; (00.4) Error (c.c:3): three; (00.5) Error (d.c:4): four");
  EXPECT_EQ(CriuLogErrors(t.path() + "/absent.log"), "");
}

}  // namespace
}  // namespace berth::engine
