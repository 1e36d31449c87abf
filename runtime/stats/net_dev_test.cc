// /proc/<pid>/net/dev: parsing of kernel text, and counters of a real network namespace.
#include "runtime/stats/net_dev.h"

#include <unistd.h>

#include "gtest/gtest.h"
#include "runtime/stats/scratch_netns.h"

namespace berth::engine::stats {
namespace {

namespace cri = runtime::v1;

constexpr char kText[] =
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop "
    "fifo colls carrier compressed\n"
    "    lo:     100       1    0    0    0     0          0         0      100       1    0    0  "
    "  0     0       0          0\n"
    "  eth0:    5000      40    2    0    0     0          0         0     7000      50    3    0  "
    "  0     0       0          0\n"
    "  net1:12345678901 9 1 0 0 0 0 0 42 1 0 0 0 0 0 0\n"
    "  bad0: 1 2 3\n";

TEST(ParseNetDevTest, ReadsCountersOfEveryInterfaceButLoopback) {
  std::vector<cri::NetworkInterfaceUsage> ifaces = ParseNetDev(kText);
  ASSERT_EQ(ifaces.size(), 2u);
  EXPECT_EQ(ifaces[0].name(), "eth0");
  EXPECT_EQ(ifaces[0].rx_bytes().value(), 5000u);
  EXPECT_EQ(ifaces[0].rx_errors().value(), 2u);
  EXPECT_EQ(ifaces[0].tx_bytes().value(), 7000u);
  EXPECT_EQ(ifaces[0].tx_errors().value(), 3u);
  // No space after the colon once the counter is wide: still parsed.
  EXPECT_EQ(ifaces[1].name(), "net1");
  EXPECT_EQ(ifaces[1].rx_bytes().value(), 12345678901u);
  EXPECT_EQ(ifaces[1].tx_bytes().value(), 42u);
}

TEST(ParseNetDevTest, GarbageGivesNothing) {
  EXPECT_TRUE(ParseNetDev("").empty());
  EXPECT_TRUE(ParseNetDev("garbage\nno: numbers here at all x x x x x x x x x x x x\n").empty());
}

TEST(ToNetworkUsageTest, DefaultInterfaceIsEth0ElseTheFirst) {
  cri::NetworkUsage u = ToNetworkUsage(ParseNetDev(kText), 42);
  EXPECT_EQ(u.timestamp(), 42);
  EXPECT_EQ(u.default_interface().name(), "eth0");
  EXPECT_EQ(u.interfaces_size(), 2);

  std::vector<cri::NetworkInterfaceUsage> no_eth0(1);
  no_eth0[0].set_name("net1");
  EXPECT_EQ(ToNetworkUsage(no_eth0, 1).default_interface().name(), "net1");
  EXPECT_FALSE(ToNetworkUsage({}, 1).has_default_interface());
}

TEST(ReadNetDevTest, SeesTrafficSentInsideARealNetworkNamespace) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for ip netns";
  testing::ScratchNetns netns;
  ASSERT_EQ(netns.error(), "");
  constexpr int kDatagrams = 5, kPayload = 200;
  testing::ProcessInNetns proc(netns.path(), kDatagrams, kPayload);
  ASSERT_GT(proc.pid(), 0);

  absl::StatusOr<std::vector<cri::NetworkInterfaceUsage>> ifaces = ReadNetDev(proc.pid());
  ASSERT_TRUE(ifaces.ok()) << ifaces.status();
  ASSERT_EQ(ifaces->size(), 2u);  // eth0 and peer0; lo left out
  cri::NetworkUsage usage = ToNetworkUsage(*ifaces, 1);
  const cri::NetworkInterfaceUsage& eth0 = usage.default_interface();
  EXPECT_EQ(eth0.name(), "eth0");
  // Each datagram is the payload plus UDP, IP and Ethernet headers; what eth0 sends, peer0 gets.
  EXPECT_GE(eth0.tx_bytes().value(), uint64_t{kDatagrams} * (kPayload + 28));
  EXPECT_EQ(eth0.tx_errors().value(), 0u);
  const cri::NetworkInterfaceUsage& peer =
      usage.interfaces(0).name() == "peer0" ? usage.interfaces(0) : usage.interfaces(1);
  EXPECT_EQ(peer.name(), "peer0");
  EXPECT_GE(peer.rx_bytes().value(), uint64_t{kDatagrams} * (kPayload + 28));
}

TEST(ReadNetDevTest, GoneProcessIsNotFound) {
  // Pid numbers stop below 2^22 on Linux.
  EXPECT_TRUE(absl::IsNotFound(ReadNetDev(1 << 23).status()));
}

}  // namespace
}  // namespace berth::engine::stats
