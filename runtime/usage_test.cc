// /proc/<pid>/net/dev parsing for pod network statistics.
#include "runtime/usage.h"

#include "gtest/gtest.h"

namespace berth::runtime {
namespace {

TEST(UsageTest, NetDevSkipsLoopbackAndReadsCounters) {
  const std::string text =
      "Inter-|   Receive                                                |  Transmit\n"
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
      "    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n"
      "  eth0:    5000      40    2    0    0     0          0         0     7000      50    3    0    0     0       0          0\n";
  auto ifaces = ParseNetDev(text);
  ASSERT_EQ(ifaces.size(), 1u);
  EXPECT_EQ(ifaces[0].name(), "eth0");
  EXPECT_EQ(ifaces[0].rx_bytes().value(), 5000u);
  EXPECT_EQ(ifaces[0].rx_errors().value(), 2u);
  EXPECT_EQ(ifaces[0].tx_bytes().value(), 7000u);
  EXPECT_EQ(ifaces[0].tx_errors().value(), 3u);
  EXPECT_TRUE(ParseNetDev("garbage\n").empty());
}

}  // namespace
}  // namespace berth::runtime
