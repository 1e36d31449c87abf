// cgroupsPath forms for both drivers and the directories they name.
#include "runtime/cgroups/paths.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace berth::cgroups {
namespace {

TEST(CgroupPathsTest, CgroupfsPutsContainerUnderPodParent) {
  auto p = ContainerCgroupsPath(CgroupDriver::kCgroupfs, "/kubepods/burstable/pod1234", "abc");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, "/kubepods/burstable/pod1234/berth-abc");
  p = ContainerCgroupsPath(CgroupDriver::kCgroupfs, "/kubepods/besteffort/pod1/", "abc");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, "/kubepods/besteffort/pod1/berth-abc");
  p = ContainerCgroupsPath(CgroupDriver::kCgroupfs, "", "abc");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, "/berth/berth-abc");
  p = ContainerCgroupsPath(CgroupDriver::kCgroupfs, "/", "abc");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, "/berth-abc");
}

TEST(CgroupPathsTest, SystemdUsesSliceColonPrefixColonId) {
  auto p = ContainerCgroupsPath(CgroupDriver::kSystemd, "kubepods-burstable-pod1234.slice", "abc");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, "kubepods-burstable-pod1234.slice:berth:abc");
  p = ContainerCgroupsPath(CgroupDriver::kSystemd, "", "abc");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, "system.slice:berth:abc");
}

TEST(CgroupPathsTest, ParentOfTheOtherDriverIsInvalidArgumentNamingIt) {
  auto p = ContainerCgroupsPath(CgroupDriver::kSystemd, "/kubepods/burstable/pod1", "abc");
  EXPECT_TRUE(absl::IsInvalidArgument(p.status()));
  EXPECT_TRUE(absl::StrContains(p.status().message(), "/kubepods/burstable/pod1"));
  p = ContainerCgroupsPath(CgroupDriver::kCgroupfs, "kubepods.slice", "abc");
  EXPECT_TRUE(absl::IsInvalidArgument(p.status()));
  EXPECT_TRUE(absl::StrContains(p.status().message(), "kubepods.slice"));
  p = ContainerCgroupsPath(CgroupDriver::kCgroupfs, "/kubepods", "../x");
  EXPECT_TRUE(absl::IsInvalidArgument(p.status()));
}

TEST(CgroupPathsTest, RelativeDirExpandsSystemdSlices) {
  auto d = CgroupRelativeDir("/kubepods/burstable/pod1/berth-abc");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, "/kubepods/burstable/pod1/berth-abc");
  d = CgroupRelativeDir("kubepods-burstable-pod1.slice:berth:abc");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d,
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/"
            "berth-abc.scope");
  d = CgroupRelativeDir("system.slice:berth:abc");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, "/system.slice/berth-abc.scope");
  d = CgroupRelativeDir("-.slice:berth:abc");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, "/berth-abc.scope");
  EXPECT_TRUE(absl::IsInvalidArgument(CgroupRelativeDir("nonsense").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(CgroupRelativeDir("a--b.slice:berth:x").status()));
}

TEST(CgroupPathsTest, DriversHaveTheirConfigNames) {
  for (CgroupDriver d : {CgroupDriver::kCgroupfs, CgroupDriver::kSystemd}) {
    absl::StatusOr<CgroupDriver> back = ParseCgroupDriver(CgroupDriverName(d));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, d);
  }
  EXPECT_EQ(CgroupDriverName(CgroupDriver::kSystemd), "systemd");
  absl::StatusOr<CgroupDriver> bad = ParseCgroupDriver("Systemd");
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_NE(bad.status().message().find("cgroupfs or systemd"), absl::string_view::npos);
}

}  // namespace
}  // namespace berth::cgroups
