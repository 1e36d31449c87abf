// Test helpers that run code inside a network namespace from a forked child (setns there, so
// the test process itself never switches), plus a one-shot TCP server and client.
#ifndef BERTH_TEST_NETWORK_NETNS_EXEC_H_
#define BERTH_TEST_NETWORK_NETNS_EXEC_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <errno.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>

namespace berth::test {

// A forked child running `fn` in `netns` (the host namespace when empty); killed and reaped on
// destruction if still running.
class NetnsChild {
 public:
  NetnsChild(const std::string& netns, const std::function<int()>& fn) {
    pid_ = fork();
    if (pid_ == 0) {
      // Whatever happens, the child never outlives a stuck test by much.
      alarm(30);
      if (!netns.empty()) {
        int fd = open(netns.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(120);
        close(fd);
      }
      _exit(fn());
    }
  }
  ~NetnsChild() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  NetnsChild(const NetnsChild&) = delete;
  NetnsChild& operator=(const NetnsChild&) = delete;

  bool started() const { return pid_ > 0; }
  // The child's exit code, or 128+signal.
  int Wait() {
    if (pid_ <= 0) return -1;
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
};

// Runs `fn` in `netns` and returns its exit code.
inline int RunInNetns(const std::string& netns, const std::function<int()>& fn) {
  NetnsChild c(netns, fn);
  return c.Wait();
}

inline constexpr char kGreeting[] = "hello from berth\n";

// Child body: listens on 0.0.0.0:port, reports readiness through `ready_fd` (one byte), serves
// kGreeting to `connections` clients, then exits 0.
inline int ServeGreeting(int port, int ready_fd, int connections = 1) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(s, 16) != 0)
    return 2;
  if (write(ready_fd, "r", 1) != 1) return 3;
  for (int i = 0; i < connections; ++i) {
    int c = accept(s, nullptr, nullptr);
    if (c < 0) return 4;
    if (write(c, kGreeting, strlen(kGreeting)) < 0) return 5;
    close(c);
  }
  return 0;
}

// Connects to ip:port and returns what the server sent until it closed ("" on failure).
inline std::string FetchGreeting(const std::string& ip, int port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return "";
  timeval tv{10, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  std::string out;
  if (connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    char buf[256];
    ssize_t r;
    while ((r = read(s, buf, sizeof(buf))) > 0) out.append(buf, r);
  }
  close(s);
  return out;
}

// A greeting server running in `netns`, ready to accept when the constructor returns.
class GreetingServer {
 public:
  GreetingServer(const std::string& netns, int port, int connections = 1) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return;
    child_ =
        std::make_unique<NetnsChild>(netns, [&] { return ServeGreeting(port, p[1], connections); });
    close(p[1]);
    char b;
    ready_ = read(p[0], &b, 1) == 1;
    close(p[0]);
  }
  bool ready() const { return ready_; }
  int Wait() { return child_ ? child_->Wait() : -1; }

 private:
  std::unique_ptr<NetnsChild> child_;
  bool ready_ = false;
};

}  // namespace berth::test

#endif  // BERTH_TEST_NETWORK_NETNS_EXEC_H_
