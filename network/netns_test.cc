// Persistent network namespaces (root only): creation, isolation, listing and idempotent removal.
#include "network/netns.h"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "gtest/gtest.h"
#include "network/loopback.h"
#include "test/network/netns_exec.h"
#include "test/util/temp_dir.h"

namespace berth::network {
namespace {

class NetnsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (auto l = ListNetns(dir_); l.ok()) {
      for (const auto& p : *l) EXPECT_TRUE(RemoveNetns(p).ok()) << p;
    }
    // CreateNetns bind-mounted the directory onto itself to make it a shared mount.
    while (umount2(dir_.c_str(), MNT_DETACH) == 0) {
    }
  }

  test::TempDir tmp_;
  std::string dir_ = tmp_.path() + "/netns";
};

ino_t NsInode(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

TEST_F(NetnsTest, CreatedNamespaceIsMountedSeparateAndLeavesTheCallerInTheHostNamespace) {
  const ino_t before = NsInode("/proc/self/ns/net");
  auto path = CreateNetns(dir_, "pod-a");
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, dir_ + "/pod-a");
  EXPECT_TRUE(IsNetnsMounted(*path));
  EXPECT_NE(NsInode(*path), before);
  EXPECT_EQ(NsInode("/proc/self/ns/net"), before);
  // Inside, only loopback exists: the host's interfaces are not there.
  EXPECT_EQ(
      test::RunInNetns(
          *path, [] { return if_nametoindex("lo") != 0 && if_nametoindex("eth0") == 0 ? 0 : 1; }),
      0);
}

// IFF_UP of lo in the calling thread's netns: 1 up, 0 down, -1 error.
int LoopbackUpHere() {
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return -1;
  struct ifreq ifr {};
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  int r = ioctl(sock, SIOCGIFFLAGS, &ifr) == 0 ? ((ifr.ifr_flags & IFF_UP) ? 1 : 0) : -1;
  close(sock);
  return r;
}

TEST_F(NetnsTest, LoopbackIsUpWithoutAPlugin) {
  auto path = CreateNetns(dir_, "pod-lo");
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(test::RunInNetns(*path, [] { return LoopbackUpHere() == 1 ? 0 : 1; }), 0);
  // A namespace made elsewhere with lo down: BringUpLoopback brings it up, and again is fine.
  ASSERT_EQ(test::RunInNetns(*path,
                             [] {
                               int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                               struct ifreq ifr {};
                               strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
                               ioctl(sock, SIOCGIFFLAGS, &ifr);
                               ifr.ifr_flags &= ~IFF_UP;
                               int r = ioctl(sock, SIOCSIFFLAGS, &ifr);
                               close(sock);
                               return r == 0 && LoopbackUpHere() == 0 ? 0 : 1;
                             }),
            0);
  ASSERT_TRUE(BringUpLoopback(*path).ok());
  ASSERT_TRUE(BringUpLoopback(*path).ok());
  EXPECT_EQ(test::RunInNetns(*path, [] { return LoopbackUpHere() == 1 ? 0 : 1; }), 0);
  EXPECT_EQ(LoopbackUpHere(), 1) << "the caller's own namespace is untouched";
  EXPECT_TRUE(absl::IsFailedPrecondition(BringUpLoopback(dir_ + "/absent")));
}

TEST_F(NetnsTest, TwoPodsGetDifferentNamespaces) {
  auto a = CreateNetns(dir_, "pod-a");
  auto b = CreateNetns(dir_, "pod-b");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(NsInode(*a), NsInode(*b));
  auto l = ListNetns(dir_);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(*l, (std::vector<std::string>{*a, *b}));
}

TEST_F(NetnsTest, CreatingTheSamePodTwiceFails) {
  ASSERT_TRUE(CreateNetns(dir_, "pod-a").ok());
  EXPECT_TRUE(absl::IsAlreadyExists(CreateNetns(dir_, "pod-a").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(CreateNetns(dir_, "../x").status()));
}

TEST_F(NetnsTest, RemovalUnmountsUnlinksAndIsIdempotent) {
  auto path = CreateNetns(dir_, "pod-a");
  ASSERT_TRUE(path.ok());
  ASSERT_TRUE(RemoveNetns(*path).ok());
  EXPECT_FALSE(IsNetnsMounted(*path));
  struct stat st;
  EXPECT_NE(stat(path->c_str(), &st), 0);
  EXPECT_TRUE(RemoveNetns(*path).ok());
  auto l = ListNetns(dir_);
  ASSERT_TRUE(l.ok());
  EXPECT_TRUE(l->empty());
}

TEST_F(NetnsTest, LeftoverUnmountedFileIsListedAndRemoved) {
  ASSERT_TRUE(CreateNetns(dir_, "pod-a").ok());
  // As after a reboot: the file is there, the namespace mount is not.
  ASSERT_EQ(umount2((dir_ + "/pod-a").c_str(), MNT_DETACH), 0);
  EXPECT_FALSE(IsNetnsMounted(dir_ + "/pod-a"));
  auto l = ListNetns(dir_);
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l->size(), 1u);
  EXPECT_TRUE(RemoveNetns((*l)[0]).ok());
  EXPECT_TRUE(ListNetns(dir_)->empty());
}

TEST_F(NetnsTest, ListingAMissingDirIsEmpty) {
  auto l = ListNetns(dir_ + "/absent");
  ASSERT_TRUE(l.ok());
  EXPECT_TRUE(l->empty());
}

}  // namespace
}  // namespace berth::network
