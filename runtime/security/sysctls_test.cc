// Pod sysctl validation: namespaced keys only, and only in namespaces the pod owns.
#include "runtime/security/sysctls.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace berth::security {
namespace {

TEST(SysctlsTest, IpcAndNetworkSysctlsAreAllowedInOwnNamespaces) {
  for (const char* key :
       {"kernel.shm_rmid_forced", "kernel.shmmax", "kernel.shmall", "kernel.shmmni",
        "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "fs.mqueue.msg_max",
        "net.ipv4.ip_local_port_range", "net.core.somaxconn"}) {
    EXPECT_TRUE(CheckSysctl(key, {}).ok()) << key;
  }
}

TEST(SysctlsTest, HostNamespacesRefuseTheirSysctls) {
  absl::Status s = CheckSysctl("net.ipv4.ip_forward", {.own_network = false, .own_ipc = true});
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_TRUE(absl::StrContains(s.message(), "net.ipv4.ip_forward"));
  s = CheckSysctl("kernel.shmmax", {.own_network = true, .own_ipc = false});
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_TRUE(absl::StrContains(s.message(), "kernel.shmmax"));
  EXPECT_TRUE(CheckSysctl("kernel.shmmax", {.own_network = false, .own_ipc = true}).ok());
}

TEST(SysctlsTest, NonNamespacedSysctlsAreRefused) {
  for (const char* key : {"kernel.hostname", "kernel.domainname", "vm.swappiness",
                          "kernel.shm_next_id_bogus", "fs.file-max", "kernel.msgmax2"}) {
    absl::Status s = CheckSysctl(key, {});
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << key;
    EXPECT_TRUE(absl::StrContains(s.message(), key)) << s;
  }
}

TEST(SysctlsTest, SlashSeparatedNamesAreNormalised) {
  EXPECT_EQ(NormalizeSysctlName("net/ipv4/ip_forward"), "net.ipv4.ip_forward");
  EXPECT_EQ(NormalizeSysctlName("net/ipv4/conf/eth0.100/rp_filter"),
            "net.ipv4.conf.eth0/100.rp_filter");
  EXPECT_EQ(NormalizeSysctlName("net.ipv4.conf.eth0/100.rp_filter"),
            "net.ipv4.conf.eth0/100.rp_filter");
}

TEST(SysctlsTest, ValidateSysctlsReturnsNormalisedMapOrFirstRefusal) {
  std::map<std::string, std::string> in = {{"kernel/shm_rmid_forced", "1"},
                                           {"net.ipv4.tcp_syncookies", "1"}};
  auto out = ValidateSysctls(in, {});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at("kernel.shm_rmid_forced"), "1");
  EXPECT_EQ(out->at("net.ipv4.tcp_syncookies"), "1");

  in["vm.overcommit_memory"] = "1";
  out = ValidateSysctls(in, {});
  EXPECT_TRUE(absl::IsInvalidArgument(out.status()));
  EXPECT_TRUE(absl::StrContains(out.status().message(), "vm.overcommit_memory"));
}

}  // namespace
}  // namespace berth::security
