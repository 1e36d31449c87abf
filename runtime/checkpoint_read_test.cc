// Reading checkpoint archives for a restore: anything but what CheckpointContainer writes
// (missing, not a tar, unsafe, foreign, incomplete, swapped or rewritten, too big, a rootfs diff
// with devices) is refused, naming the field.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/checkpoint.h"
#include "runtime/checkpoint_test_util.h"
#include "runtime/checkpoint_testing.h"
#include "test/util/temp_dir.h"
#include "util/fd.h"
#include "util/fs.h"

namespace berth::engine {
namespace {

using namespace checkpoint_test;  // NOLINT: the shared helpers of these tests

TEST(CheckpointTest, OnlyAbsolutePathsNameArchives) {
  EXPECT_TRUE(IsCheckpointArchiveRef("/var/lib/ckpt.tar"));
  EXPECT_FALSE(IsCheckpointArchiveRef("busybox"));
  EXPECT_FALSE(IsCheckpointArchiveRef("docker.io/library/busybox:1"));
  EXPECT_FALSE(IsCheckpointArchiveRef("sha256:abcd"));
}

// Nor does a restore make them: a rootfs-diff.tar berth never wrote is refused.
TEST(CheckpointTest, ARootfsDiffWithDevicesIsNotRestored) {
  test::TempDir t;
  const std::string dir = t.path() + "/ckpt";
  MakeCheckpointDir(dir, "de7");
  WriteTarFile(dir + "/" + kCheckpointRootfsDiff,
               {{"etc/ok", "fine"}, {"dev-sda", "", AE_IFBLK}, {"pipe", "", AE_IFIFO}});
  CheckpointArchive a;
  absl::Status st;
  ASSERT_NO_FATAL_FAILURE(ArchiveAndRestore(dir, t.path(), &a, &st));
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "dev-sda")) << st;
  EXPECT_FALSE(PathExists(t.path() + "/restored/dev-sda"));
}

TEST(CheckpointTest, MissingOrForeignFilesAreInvalidArguments) {
  test::TempDir t;
  ExpectInvalid(t.path() + "/absent.tar", "cannot be read");
  ExpectInvalid(t.path(), "not a checkpoint archive file");
  ASSERT_TRUE(WriteFileAtomic(t.path() + "/text", "not a tar at all\n").ok());
  ExpectInvalid(t.path() + "/text", "is not a checkpoint archive");
  // A tar, but of something else.
  WriteTarFile(t.path() + "/other.tar", {{"etc/passwd", "root:x:0:0::/:/bin/sh\n"}});
  ExpectInvalid(t.path() + "/other.tar", "not part of a berth checkpoint");
  // CRI-O's layout without berth's record and version.
  WriteTarFile(
      t.path() + "/crio.tar",
      {{"config.dump", R"({"id":"x"})"}, {"spec.dump", "{}"}, {"checkpoint/inventory.img", "i"}});
  ExpectInvalid(t.path() + "/crio.tar", "not a berth checkpoint archive");
  WriteTarFile(t.path() + "/future.tar", {{"config.dump", R"({"berthCheckpointVersion":9})"}});
  ExpectInvalid(t.path() + "/future.tar", "format 9 is not supported");
}

TEST(CheckpointTest, IncompleteOrUnsafeArchivesAreRefused) {
  test::TempDir t;
  const std::string record = Record("abc").SerializeAsString();
  WriteTarFile(t.path() + "/noimages.tar",
               {{"config.dump", ConfigDump("abc")}, {"container.pb", record}, {"spec.dump", "{}"}});
  ExpectInvalid(t.path() + "/noimages.tar", "no CRIU images");
  WriteTarFile(t.path() + "/mismatch.tar", {{"config.dump", ConfigDump("other")},
                                            {"container.pb", record},
                                            {"spec.dump", "{}"},
                                            {"checkpoint/inventory.img", "i"}});
  ExpectInvalid(t.path() + "/mismatch.tar", "different containers");
  WriteTarFile(t.path() + "/dotdot.tar", {{"config.dump", ConfigDump("abc")},
                                          {"../../etc/cron.d/evil", "* * * * * root id\n"}});
  ExpectInvalid(t.path() + "/dotdot.tar", "leaves the archive");
  WriteTarFile(t.path() + "/absolute.tar", {{"/etc/evil", "x"}});
  ExpectInvalid(t.path() + "/absolute.tar", "leaves the archive");
  WriteTarFile(t.path() + "/symlink.tar",
               {{"config.dump", ConfigDump("abc")}, {"checkpoint", "", AE_IFLNK, "/etc"}});
  ExpectInvalid(t.path() + "/symlink.tar", "is not a file or directory");
  WriteTarFile(t.path() + "/twice.tar",
               {{"config.dump", ConfigDump("abc")}, {"config.dump", ConfigDump("other")}});
  ExpectInvalid(t.path() + "/twice.tar", "appears twice");
  // Cut short inside an entry's data, which the check passes over without reading it.
  WriteTarFile(t.path() + "/cut.tar",
               MinimalArchive("abc", "i", {{"checkpoint/pages-1.img", std::string(100000, 'p')}}));
  ASSERT_EQ(truncate((t.path() + "/cut.tar").c_str(), 50000), 0);
  ExpectInvalid(t.path() + "/cut.tar", "Truncated");
}

// The archive is opened once, and what is unpacked is what was read: a file renamed over the
// path afterwards (here one that adds a symlink the first never had) is never looked at.
// <dir>/ckpt.tar holds `good` and has been read; <dir>/other.tar holds `evil` plus a symlink
// checkpoint/evil -> /etc/shadow, to be put in its place.
struct ReadThenSwapped {
  ReadThenSwapped(const std::string& dir, const std::vector<TarEntry>& good,
                  std::vector<TarEntry> evil)
      : archive(dir + "/ckpt.tar"), other(dir + "/other.tar") {
    evil.push_back({"checkpoint/evil", "", AE_IFLNK, "/etc/shadow"});
    WriteTarFile(archive, good);
    WriteTarFile(other, evil);
    read = ReadCheckpointArchive(archive);
  }
  const std::string archive, other;
  absl::StatusOr<CheckpointArchive> read;
};

TEST(CheckpointTest, AnArchiveSwappedAfterItWasReadIsUnpackedAsRead) {
  test::TempDir t;
  ReadThenSwapped r(t.path(), MinimalArchive("aaa", "first"), MinimalArchive("aaa", "second"));
  absl::StatusOr<CheckpointArchive>& a = r.read;
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(rename(r.other.c_str(), r.archive.c_str()), 0);
  const std::string dest = t.path() + "/unpacked";
  ASSERT_TRUE(MakeDirs(dest).ok());
  absl::Status st = UnpackCheckpointArchive(*a, dest);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(ReadFile(dest + "/checkpoint/inventory.img").value_or(""), "first");
  struct stat sb;
  EXPECT_NE(lstat((dest + "/checkpoint/evil").c_str(), &sb), 0);
}

// Rewritten in place (same inode, same metadata), the archive is checked again entry by entry as
// it is unpacked: the symlink the first read never saw is refused then.
TEST(CheckpointTest, AnArchiveRewrittenInPlaceIsCheckedAgainWhenUnpacked) {
  test::TempDir t;
  ReadThenSwapped r(t.path(), MinimalArchive("aaa"), MinimalArchive("aaa"));
  absl::StatusOr<CheckpointArchive>& a = r.read;
  ASSERT_TRUE(a.ok()) << a.status();
  const std::string& archive = r.archive;
  absl::StatusOr<std::string> bytes = ReadFile(r.other);
  ASSERT_TRUE(bytes.ok());
  {
    UniqueFd fd(open(archive.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    ASSERT_TRUE(WriteAll(fd.get(), bytes->data(), bytes->size()));
  }
  const std::string dest = t.path() + "/unpacked";
  ASSERT_TRUE(MakeDirs(dest).ok());
  absl::Status st = UnpackCheckpointArchive(*a, dest);
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "config.image.image")) << st;
  struct stat sb;
  EXPECT_NE(lstat((dest + "/checkpoint/evil").c_str(), &sb), 0);
}

TEST(CheckpointTest, AnArchiveMustBeARegularFileNotASymlinkToOne) {
  test::TempDir t;
  MakeCheckpointDir(t.path() + "/ckpt", "abc");
  const std::string archive = t.path() + "/ckpt.tar.gz";
  ASSERT_TRUE(WriteCheckpointArchive(t.path() + "/ckpt", archive).ok());
  ASSERT_TRUE(ReadCheckpointArchive(archive).ok());
  ASSERT_EQ(symlink(archive.c_str(), (t.path() + "/link.tar.gz").c_str()), 0);
  ExpectInvalid(t.path() + "/link.tar.gz", "symlink");
  ASSERT_EQ(mkfifo((t.path() + "/fifo").c_str(), 0600), 0);
  ExpectInvalid(t.path() + "/fifo", "not a checkpoint archive file");  // and does not block
}

TEST(CheckpointTest, ArchivesBeyondTheLimitsAreRefused) {
  const checkpoint_testing::ArchiveLimits defaults = checkpoint_testing::DefaultArchiveLimits();
  EXPECT_GE(defaults.max_bytes, int64_t{16} << 30);
  EXPECT_GE(defaults.max_entries, 1 << 16);
  absl::Cleanup restore = [defaults] { checkpoint_testing::SetArchiveLimits(defaults); };
  test::TempDir t;
  std::vector<TarEntry> entries = MinimalArchive("abc");
  for (int i = 0; i < 20; ++i)
    entries.push_back({absl::StrCat("checkpoint/core-", i, ".img"), "c"});
  WriteTarFile(t.path() + "/many.tar", entries);
  ASSERT_TRUE(ReadCheckpointArchive(t.path() + "/many.tar").ok());
  checkpoint_testing::SetArchiveLimits({.max_bytes = defaults.max_bytes, .max_entries = 10});
  ExpectInvalid(t.path() + "/many.tar", "more than 10 entries");

  // Counted in uncompressed bytes, before they are read: a small gzip bomb stops at the bound.
  const std::string big = t.path() + "/big.tar.gz";
  WriteTarFile(big,
               MinimalArchive("abc", "i", {{"checkpoint/pages-1.img", std::string(2 << 20, 'p')}}),
               /*gzip=*/true);
  struct stat st;
  ASSERT_EQ(stat(big.c_str(), &st), 0);
  ASSERT_LT(st.st_size, 100000);
  checkpoint_testing::SetArchiveLimits({.max_bytes = 4 << 20, .max_entries = 100});
  ASSERT_TRUE(ReadCheckpointArchive(big).ok());
  checkpoint_testing::SetArchiveLimits({.max_bytes = 1 << 20, .max_entries = 100});
  ExpectInvalid(big, "more than 1048576 bytes");
  // The file itself, before anything is decompressed.
  checkpoint_testing::SetArchiveLimits({.max_bytes = st.st_size - 1, .max_entries = 100});
  ExpectInvalid(big, absl::StrCat("more than ", st.st_size - 1, " bytes"));
}

}  // namespace
}  // namespace berth::engine
