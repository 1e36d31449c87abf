// Parsing CNI results of each spec generation, pod IP ordering and plugin error objects.
#include "network/cni_result.h"

#include "gtest/gtest.h"

namespace berth::network {
namespace {

TEST(CniResultTest, ParsesCurrentResultAndOrdersPodIpsV4First) {
  auto r = ParseCniResult(R"({
    "cniVersion": "1.0.0",
    "interfaces": [
      {"name": "br0", "mac": "aa:bb:cc:dd:ee:00"},
      {"name": "veth1", "mac": "aa:bb:cc:dd:ee:01"},
      {"name": "eth0", "mac": "aa:bb:cc:dd:ee:02", "sandbox": "/run/berth/netns/p"}
    ],
    "ips": [
      {"address": "fd00::5/64", "gateway": "fd00::1", "interface": 2},
      {"address": "10.1.0.5/24", "gateway": "10.1.0.1", "interface": 2},
      {"address": "10.1.0.1/24", "interface": 0}
    ],
    "routes": [{"dst": "0.0.0.0/0"}],
    "dns": {"nameservers": ["10.1.0.10"], "domain": "cluster.local", "search": ["a", "b"], "options": ["ndots:5"]}
  })");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->cni_version, "1.0.0");
  ASSERT_EQ(r->interfaces.size(), 3u);
  EXPECT_EQ(r->interfaces[2].sandbox, "/run/berth/netns/p");
  ASSERT_EQ(r->ips.size(), 3u);
  EXPECT_EQ(r->ips[0].version, 6);
  EXPECT_EQ(r->ips[1].gateway, "10.1.0.1");
  EXPECT_EQ(r->ips[1].ip(), "10.1.0.5");
  EXPECT_EQ(r->dns.nameservers, std::vector<std::string>{"10.1.0.10"});
  EXPECT_EQ(r->dns.domain, "cluster.local");
  EXPECT_EQ(r->dns.search, (std::vector<std::string>{"a", "b"}));
  // The bridge's own address (a host-side interface) is not a pod IP.
  EXPECT_EQ(PodIps(*r), (std::vector<std::string>{"10.1.0.5", "fd00::5"}));
}

TEST(CniResultTest, ParsesOldIp4Ip6Form) {
  auto r = ParseCniResult(R"({"cniVersion":"0.2.0","ip4":{"ip":"10.2.0.7/16","gateway":"10.2.0.1"},
                               "ip6":{"ip":"fd01::7/64"}})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(PodIps(*r), (std::vector<std::string>{"10.2.0.7", "fd01::7"}));
  EXPECT_EQ(r->ips[0].gateway, "10.2.0.1");
}

TEST(CniResultTest, ResultWithoutIpsHasNoPodIps) {
  auto r = ParseCniResult(R"({"cniVersion":"1.0.0","interfaces":[{"name":"lo","sandbox":"/x"}]})");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(PodIps(*r).empty());
}

TEST(CniResultTest, MalformedResultsAreErrors) {
  EXPECT_FALSE(ParseCniResult("nope").ok());
  EXPECT_FALSE(ParseCniResult("[1,2]").ok());
  EXPECT_FALSE(ParseCniResult(R"({"ips":[{"gateway":"1.2.3.4"}]})").ok());
}

TEST(CniResultTest, PluginErrorObjectIsRecognised) {
  auto e = ParseCniError(
      R"({"cniVersion":"1.0.0","code":7,"msg":"invalid config","details":"no subnet"})");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 7);
  EXPECT_EQ(e->msg, "invalid config");
  EXPECT_EQ(e->details, "no subnet");
  EXPECT_FALSE(ParseCniError("plain text").has_value());
  EXPECT_FALSE(ParseCniError(R"({"cniVersion":"1.0.0","ips":[]})").has_value());
}

}  // namespace
}  // namespace berth::network
