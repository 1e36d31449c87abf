// Masked and read-only paths: defaults, CRI overrides, privileged containers.
#include "runtime/security/defaults.h"

#include <algorithm>

#include "gtest/gtest.h"

namespace berth::security {
namespace {

bool Has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(PathDefaultsTest, DefaultsHideKernelInternals) {
  EXPECT_TRUE(Has(DefaultMaskedPaths(), "/proc/kcore"));
  EXPECT_TRUE(Has(DefaultMaskedPaths(), "/sys/firmware"));
  EXPECT_TRUE(Has(DefaultMaskedPaths(), "/sys/devices/virtual/powercap"));
  EXPECT_EQ(DefaultMaskedPaths().size(), 11u);
  EXPECT_TRUE(Has(DefaultReadonlyPaths(), "/proc/sys"));
  EXPECT_TRUE(Has(DefaultReadonlyPaths(), "/proc/sysrq-trigger"));
  EXPECT_EQ(DefaultReadonlyPaths().size(), 5u);
}

TEST(PathDefaultsTest, CriListsReplaceDefaults) {
  std::vector<std::string> masked = {"/proc/kcore", "/proc/secret"};
  EXPECT_EQ(MaskedPathsFor(false, masked), masked);
  std::vector<std::string> ro = {"/proc/sys"};
  EXPECT_EQ(ReadonlyPathsFor(false, ro), ro);
}

TEST(PathDefaultsTest, EmptyCriListsMeanDefaults) {
  EXPECT_EQ(MaskedPathsFor(false, {}), DefaultMaskedPaths());
  EXPECT_EQ(ReadonlyPathsFor(false, {}), DefaultReadonlyPaths());
}

TEST(PathDefaultsTest, PrivilegedContainersSeeEverything) {
  EXPECT_TRUE(MaskedPathsFor(true, {}).empty());
  EXPECT_TRUE(MaskedPathsFor(true, {"/proc/kcore"}).empty());
  EXPECT_TRUE(ReadonlyPathsFor(true, {"/proc/sys"}).empty());
}

}  // namespace
}  // namespace berth::security
