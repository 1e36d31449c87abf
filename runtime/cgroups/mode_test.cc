// Cgroup mode detection, checked against /proc/mounts read independently.
#include "runtime/cgroups/mode.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace berth::cgroups {
namespace {

// The filesystem type mounted at `dir` per /proc/mounts (the last mount wins), or "".
std::string MountType(const std::string& dir) {
  std::ifstream in("/proc/mounts");
  std::string line, type;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() > 2 && f[1] == dir) type = f[2];
  }
  return type;
}

TEST(CgroupModeTest, AgreesWithProcMounts) {
  absl::StatusOr<CgroupMode> mode = DetectCgroupMode();
  ASSERT_TRUE(mode.ok()) << mode.status();
  std::string root = MountType("/sys/fs/cgroup");
  if (root == "cgroup2") {
    EXPECT_EQ(*mode, CgroupMode::kUnified);
  } else if (MountType("/sys/fs/cgroup/unified") == "cgroup2") {
    EXPECT_EQ(*mode, CgroupMode::kHybrid);
    EXPECT_STREQ(CgroupModeName(*mode), "hybrid");
  } else {
    EXPECT_EQ(*mode, CgroupMode::kLegacy);
  }
}

TEST(CgroupModeTest, MissingRootIsFailedPreconditionNamingIt) {
  absl::StatusOr<CgroupMode> mode = DetectCgroupMode("/nonexistent/cgroup");
  EXPECT_TRUE(absl::IsFailedPrecondition(mode.status()));
  EXPECT_NE(mode.status().message().find("/nonexistent/cgroup"), std::string::npos);
}

TEST(CgroupModeTest, ProcIsNotACgroupRoot) {
  EXPECT_TRUE(absl::IsFailedPrecondition(DetectCgroupMode("/proc").status()));
}

TEST(CgroupModeTest, SwapControllerMatchesMemswFiles) {
  absl::StatusOr<CgroupMode> mode = DetectCgroupMode();
  ASSERT_TRUE(mode.ok());
  if (*mode == CgroupMode::kUnified) GTEST_SKIP() << "v1 check";
  bool memsw = std::ifstream("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").good();
  EXPECT_EQ(SwapControllerAvailable(*mode), memsw);
}

}  // namespace
}  // namespace berth::cgroups
