// Capability names, the host's set, and CRI add/drop semantics including "ALL".
#include "runtime/security/capabilities.h"

#include <fstream>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace berth::security {
namespace {

using Caps = std::vector<std::string>;

TEST(CapabilitiesTest, HostSetFollowsCapLastCap) {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  size_t last = 0;
  ASSERT_TRUE(in >> last);
  size_t expected = std::min(last + 1, KnownCapabilities().size());
  ASSERT_EQ(HostCapabilities().size(), expected);
  EXPECT_EQ(HostCapabilities()[0], "CAP_CHOWN");
  EXPECT_EQ(HostCapabilities()[21], "CAP_SYS_ADMIN");
  if (last >= 40) {
    EXPECT_EQ(HostCapabilities()[40], "CAP_CHECKPOINT_RESTORE");
  }
}

TEST(CapabilitiesTest, DefaultSetIsTheContainerdSet) {
  Caps d = DefaultCapabilities();
  EXPECT_EQ(d.size(), 14u);
  for (const char* c : {"CAP_CHOWN", "CAP_NET_RAW", "CAP_SETFCAP", "CAP_AUDIT_WRITE"}) {
    EXPECT_NE(std::find(d.begin(), d.end(), c), d.end()) << c;
  }
  EXPECT_EQ(std::find(d.begin(), d.end(), "CAP_SYS_ADMIN"), d.end());
}

TEST(CapabilitiesTest, BothSpellingsNormaliseToCapPrefix) {
  for (const char* spelling : {"NET_ADMIN", "CAP_NET_ADMIN", "net_admin", "cap_net_admin"}) {
    absl::StatusOr<std::string> c = NormalizeCapability(spelling);
    ASSERT_TRUE(c.ok()) << spelling;
    EXPECT_EQ(*c, "CAP_NET_ADMIN");
  }
}

TEST(CapabilitiesTest, UnknownCapabilityIsInvalidArgumentNamingIt) {
  absl::StatusOr<CapabilitySets> s =
      ApplyCapabilityChanges(DefaultCapabilities(), {"NET_WIZARD"}, {});
  EXPECT_TRUE(absl::IsInvalidArgument(s.status()));
  EXPECT_TRUE(absl::StrContains(s.status().message(), "NET_WIZARD"));
  s = ApplyCapabilityChanges(DefaultCapabilities(), {}, {"CAP_NOPE"});
  EXPECT_TRUE(absl::IsInvalidArgument(s.status()));
  EXPECT_TRUE(absl::StrContains(s.status().message(), "CAP_NOPE"));
}

TEST(CapabilitiesTest, AddAndDropNamedCapabilities) {
  absl::StatusOr<CapabilitySets> s = ApplyCapabilityChanges(
      DefaultCapabilities(), {"NET_ADMIN", "CAP_SYS_TIME"}, {"chown", "KILL"});
  ASSERT_TRUE(s.ok()) << s.status();
  const Caps& b = s->bounding;
  EXPECT_NE(std::find(b.begin(), b.end(), "CAP_NET_ADMIN"), b.end());
  EXPECT_NE(std::find(b.begin(), b.end(), "CAP_SYS_TIME"), b.end());
  EXPECT_EQ(std::find(b.begin(), b.end(), "CAP_CHOWN"), b.end());
  EXPECT_EQ(std::find(b.begin(), b.end(), "CAP_KILL"), b.end());
  EXPECT_EQ(b.size(), 14u);
  EXPECT_EQ(s->effective, b);
  EXPECT_EQ(s->permitted, b);
  EXPECT_TRUE(s->inheritable.empty());
  EXPECT_TRUE(s->ambient.empty());
  // Number order, whatever the request order: CAP_DAC_OVERRIDE (1) before CAP_NET_ADMIN (12).
  EXPECT_EQ(b.front(), "CAP_DAC_OVERRIDE");
}

TEST(CapabilitiesTest, AddAllThenDropOneLeavesEverythingElse) {
  absl::StatusOr<CapabilitySets> s =
      ApplyCapabilityChanges(DefaultCapabilities(), {"ALL"}, {"CHOWN"});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->bounding.size(), HostCapabilities().size() - 1);
  EXPECT_EQ(std::find(s->bounding.begin(), s->bounding.end(), "CAP_CHOWN"), s->bounding.end());
}

TEST(CapabilitiesTest, DropAllThenAddOneLeavesOnlyThatOne) {
  absl::StatusOr<CapabilitySets> s =
      ApplyCapabilityChanges(DefaultCapabilities(), {"NET_BIND_SERVICE"}, {"all"});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->bounding, Caps{"CAP_NET_BIND_SERVICE"});
  s = ApplyCapabilityChanges(DefaultCapabilities(), {}, {"ALL"});
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->bounding.empty());
}

TEST(CapabilitiesTest, AmbientCapabilitiesAreAlsoInheritableAndPermitted) {
  absl::StatusOr<CapabilitySets> s =
      ApplyCapabilityChanges(DefaultCapabilities(), {}, {"ALL"}, {"NET_BIND_SERVICE"});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->ambient, Caps{"CAP_NET_BIND_SERVICE"});
  EXPECT_EQ(s->inheritable, Caps{"CAP_NET_BIND_SERVICE"});
  EXPECT_EQ(s->permitted, Caps{"CAP_NET_BIND_SERVICE"});
  nlohmann::json oci = s->ToOci();
  for (const char* set : {"bounding", "effective", "permitted", "inheritable", "ambient"}) {
    ASSERT_TRUE(oci.contains(set)) << set;
    EXPECT_EQ(oci[set], nlohmann::json::array({"CAP_NET_BIND_SERVICE"})) << set;
  }
}

TEST(CapabilitiesTest, PrivilegedGetsEveryHostCapability) {
  CapabilitySets s = PrivilegedCapabilities();
  EXPECT_EQ(s.bounding, HostCapabilities());
  EXPECT_EQ(s.effective, HostCapabilities());
  EXPECT_EQ(s.permitted, HostCapabilities());
  EXPECT_TRUE(s.inheritable.empty());
}

}  // namespace
}  // namespace berth::security
