// ProcessBackend: exec/attach as plain child processes, port-forward to loopback listeners.
#include "test/streaming/process_backend.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "util/fd.h"

namespace berth::test {
namespace {

// Copies `from` to `to` until EOF/error on `from`, or until `stop` becomes readable.
void Copy(int from, int to, int stop) {
  char buf[16384];
  for (;;) {
    pollfd p[2] = {{from, POLLIN, 0}, {stop, POLLIN, 0}};
    if (poll(p, stop >= 0 ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (stop >= 0 && (p[1].revents & (POLLIN | POLLHUP)) && !(p[0].revents & POLLIN)) return;
    ssize_t n = read(from, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    if (!WriteAll(to, buf, n)) return;
  }
}

std::vector<char*> Argv(const std::vector<std::string>& cmd) {
  std::vector<char*> argv;
  for (const auto& a : cmd) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  return argv;
}

int WaitExit(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

absl::StatusOr<int> RunWithPipes(const std::vector<std::string>& cmd, const engine::StreamIO& io) {
  std::vector<char*> argv = Argv(cmd);
  UniqueFd devnull(open("/dev/null", O_RDWR | O_CLOEXEC));
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    dup2(io.in >= 0 ? io.in : devnull.get(), 0);
    dup2(io.out >= 0 ? io.out : devnull.get(), 1);
    dup2(io.err >= 0 ? io.err : devnull.get(), 2);
    signal(SIGPIPE, SIG_DFL);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  return WaitExit(pid);
}

absl::StatusOr<int> RunWithPty(const std::vector<std::string>& cmd, const engine::StreamIO& io) {
  // The first size usually arrives right after the streams open: start with it, as a terminal
  // opened at its size, so the command never sees 0x0.
  winsize ws{};
  ws.ws_row = 24;
  ws.ws_col = 80;
  if (io.resize) {
    uint16_t w = 0, h = 0;
    if (io.resize->Pop(&w, &h, absl::Seconds(10))) {
      ws.ws_col = w;
      ws.ws_row = h;
    }
  }
  int master_fd = -1, slave_fd = -1;
  if (openpty(&master_fd, &slave_fd, nullptr, nullptr, &ws) != 0) {
    return absl::InternalError(absl::StrCat("openpty: ", strerror(errno)));
  }
  UniqueFd master(master_fd), slave(slave_fd);
  fcntl(master.get(), F_SETFD, FD_CLOEXEC);
  std::vector<char*> argv = Argv(cmd);
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    setsid();
    ioctl(slave.get(), TIOCSCTTY, 0);
    dup2(slave.get(), 0);
    dup2(slave.get(), 1);
    dup2(slave.get(), 2);
    if (slave.get() > 2) close(slave.get());
    signal(SIGPIPE, SIG_DFL);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  slave.reset();
  int stop_pipe[2];
  if (pipe2(stop_pipe, O_CLOEXEC) != 0) return absl::InternalError("pipe");
  UniqueFd stop_r(stop_pipe[0]), stop_w(stop_pipe[1]);
  std::thread in_copy, resizer;
  if (io.in >= 0) in_copy = std::thread([&] { Copy(io.in, master.get(), stop_r.get()); });
  if (io.resize) {
    resizer = std::thread([&] {
      for (;;) {
        pollfd p{stop_r.get(), POLLIN, 0};
        if (poll(&p, 1, 0) > 0) return;
        uint16_t w, h;
        if (io.resize->Pop(&w, &h, absl::Milliseconds(100))) {
          winsize s{};
          s.ws_col = w;
          s.ws_row = h;
          ioctl(master.get(), TIOCSWINSZ, &s);
        } else if (io.resize->closed()) {
          return;
        }
      }
    });
  }
  // Output ends with EIO once the command (and everything holding the pty) is gone.
  if (io.out >= 0) Copy(master.get(), io.out, -1);
  int code = WaitExit(pid);
  stop_w.reset();
  if (in_copy.joinable()) in_copy.join();
  if (resizer.joinable()) resizer.join();
  return code;
}

}  // namespace

absl::StatusOr<int> ProcessBackend::Exec(const std::string&, const std::vector<std::string>& cmd,
                                         const engine::StreamIO& io) {
  if (cmd.empty()) return absl::InvalidArgumentError("empty command");
  return io.tty ? RunWithPty(cmd, io) : RunWithPipes(cmd, io);
}

absl::Status ProcessBackend::Attach(const std::string& id, const engine::StreamIO& io) {
  absl::StatusOr<int> code = Exec(id, {"/bin/cat"}, io);
  return code.status();
}

absl::Status ProcessBackend::PortForward(const std::string& pod_id, int32_t port, int fd) {
  UniqueFd sock(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(sock.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    return absl::UnavailableError(
        absl::StrCat("connect to 127.0.0.1:", port, ": ", strerror(errno)));
  }
  forwards_++;
  // Each direction ends with a half-close of the other side, as a proxied TCP connection does.
  std::thread up([&] {
    Copy(fd, sock.get(), -1);
    shutdown(sock.get(), SHUT_WR);
  });
  Copy(sock.get(), fd, -1);
  shutdown(fd, SHUT_WR);
  up.join();
  return absl::OkStatus();
}

}  // namespace berth::test
