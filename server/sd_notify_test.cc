// sd_notify: the datagrams berthd sends to $NOTIFY_SOCKET, received on a real socket.
#include "server/sd_notify.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <string>

#include "gtest/gtest.h"
#include "test/util/temp_dir.h"
#include "util/fd.h"

namespace berth {
namespace {

// Binds a datagram socket where systemd's would be and points NOTIFY_SOCKET at it; restores the
// environment on destruction.
class FakeNotifySocket {
 public:
  FakeNotifySocket() {
    path_ = dir_.path() + "/notify";
    fd_.reset(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path_.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    bound_ = fd_.valid() && bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    setenv("NOTIFY_SOCKET", path_.c_str(), 1);
  }
  ~FakeNotifySocket() { unsetenv("NOTIFY_SOCKET"); }
  bool bound() const { return bound_; }

  // Blocks until one datagram arrives.
  std::string Receive() {
    char buf[512];
    ssize_t n = recv(fd_.get(), buf, sizeof(buf), 0);
    return n < 0 ? std::string() : std::string(buf, n);
  }
  // The next datagram if one is already queued, else empty.
  std::string ReceiveIfQueued() {
    char buf[512];
    ssize_t n = recv(fd_.get(), buf, sizeof(buf), MSG_DONTWAIT);
    return n < 0 ? std::string() : std::string(buf, n);
  }

 private:
  test::TempDir dir_;
  std::string path_;
  UniqueFd fd_;
  bool bound_ = false;
};

TEST(SdNotifyTest, ReadyThenStoppingReachTheNotifySocket) {
  FakeNotifySocket sock;
  ASSERT_TRUE(sock.bound());
  NotifyReady();
  std::string ready = sock.Receive();
  EXPECT_NE(ready.find("READY=1"), std::string::npos) << ready;
  // The environment is kept after READY=1, so the stop message still has somewhere to go.
  NotifyStopping();
  std::string stopping = sock.Receive();
  EXPECT_NE(stopping.find("STOPPING=1"), std::string::npos) << stopping;
  EXPECT_EQ(sock.ReceiveIfQueued(), "");
}

TEST(SdNotifyTest, WithoutNotifySocketNothingHappens) {
  unsetenv("NOTIFY_SOCKET");
  NotifyReady();
  NotifyStopping();
}

TEST(SdNotifyTest, UnreachableNotifySocketIsNotFatal) {
  test::TempDir dir;
  std::string missing = dir.path() + "/nobody-listens";
  setenv("NOTIFY_SOCKET", missing.c_str(), 1);
  NotifyReady();
  NotifyStopping();
  unsetenv("NOTIFY_SOCKET");
}

}  // namespace
}  // namespace berth
