// Cgroup mode detection, checked against /proc/mounts read independently.
#include "runtime/cgroups/mode.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
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

TEST(HugetlbTest, PageSizesAreNamedAsRuncNamesThem) {
  EXPECT_EQ(PageSizeName("hugepages-2048kB"), "2MB");
  EXPECT_EQ(PageSizeName("hugepages-1048576kB"), "1GB");
  EXPECT_EQ(PageSizeName("hugepages-64kB"), "64KB");
  EXPECT_EQ(PageSizeName("hugepages-32768kB"), "32MB");
  EXPECT_EQ(PageSizeName("hugepages-3000kB"), "3000KB");
  EXPECT_EQ(PageSizeName("hugepages-kB"), "");
  EXPECT_EQ(PageSizeName("hugepages-0kB"), "");
  EXPECT_EQ(PageSizeName("nr_hugepages"), "");
}

// A scratch cgroup root and sysfs hugepages directory.
class HugetlbDirs : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-hugetlb-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::filesystem::create_directories(root() + "");
    std::filesystem::create_directories(pages() + "/hugepages-2048kB");
    std::filesystem::create_directories(pages() + "/hugepages-1048576kB");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string root() const { return dir_ + "/cgroup"; }
  std::string pages() const { return dir_ + "/hugepages"; }
  std::string dir_;
};

TEST_F(HugetlbDirs, V1NeedsTheHugetlbHierarchy) {
  EXPECT_TRUE(HugetlbPageSizes(CgroupMode::kLegacy, root(), pages()).empty());
  std::filesystem::create_directories(root() + "/hugetlb");
  EXPECT_EQ(HugetlbPageSizes(CgroupMode::kHybrid, root(), pages()),
            (std::vector<std::string>{"1GB", "2MB"}));
}

TEST_F(HugetlbDirs, V2NeedsTheControllerEnabledAtTheRoot) {
  std::ofstream(root() + "/cgroup.controllers") << "cpuset cpu io memory pids\n";
  EXPECT_TRUE(HugetlbPageSizes(CgroupMode::kUnified, root(), pages()).empty());
  std::ofstream(root() + "/cgroup.controllers") << "cpuset cpu io memory hugetlb pids\n";
  EXPECT_EQ(HugetlbPageSizes(CgroupMode::kUnified, root(), pages()),
            (std::vector<std::string>{"1GB", "2MB"}));
}

TEST(HugetlbTest, ThisHostAgreesWithItsFilesystem) {
  absl::StatusOr<CgroupMode> mode = DetectCgroupMode();
  ASSERT_TRUE(mode.ok());
  std::vector<std::string> sizes = HugetlbPageSizes(*mode);
  if (*mode != CgroupMode::kUnified && access("/sys/fs/cgroup/hugetlb", F_OK) != 0) {
    EXPECT_TRUE(sizes.empty()) << "no hugetlb hierarchy, yet sizes were reported";
  }
  for (const auto& s : sizes) EXPECT_FALSE(s.empty());
}

}  // namespace
}  // namespace berth::cgroups
