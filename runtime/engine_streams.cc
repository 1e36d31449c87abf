// Exec, attach and port-forward sessions: runc exec (with a console socket for a tty), conmon's
// attach socket, and a socket connected from inside the pod's network namespace.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <pty.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>
#include <atomic>
#include <thread>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"
#include "runtime/engine.h"
#include "runtime/engine_internal.h"
#include "util/json.h"
#include "runtime/spec.h"
#include "util/fd.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace berth::engine {
namespace {

// Applies terminal sizes on a side thread for as long as the session lasts.
class Resizer {
 public:
  Resizer(std::shared_ptr<ResizeQueue> q, std::function<void(uint16_t, uint16_t)> apply) {
    if (!q) return;
    thread_ = std::thread([this, q = std::move(q), apply = std::move(apply)] {
      uint16_t w = 0, h = 0;
      while (!done_.load() && !q->closed()) {
        if (q->Pop(&w, &h, absl::Milliseconds(100))) apply(w, h);
      }
    });
  }
  ~Resizer() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// Copies between a client's stdin/stdout and one bidirectional descriptor until `peer` closes.
// With `framed`, bytes from the peer carry conmon's one-byte stream prefix (2 stdout, 3 stderr).
void CopyLoop(const StreamIO& io, int peer, bool framed, bool stop_on_client_eof) {
  char buf[32768];
  bool in_open = io.in >= 0;
  for (;;) {
    pollfd fds[2] = {{peer, POLLIN, 0}, {in_open ? io.in : -1, POLLIN, 0}};
    int rc = poll(fds, 2, -1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return;
    if (fds[0].revents) {
      ssize_t n = framed ? recv(peer, buf, sizeof(buf), 0) : read(peer, buf, sizeof(buf));
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) return;  // the process side is done
      if (framed) {
        int target = buf[0] == 3 ? io.err : io.out;
        if (io.tty) target = io.out;
        if (target >= 0 && n > 1) WriteAll(target, buf + 1, n - 1);
      } else if (io.out >= 0) {
        WriteAll(io.out, buf, n);
      }
    }
    if (in_open && fds[1].revents) {
      ssize_t n = read(io.in, buf, sizeof(buf));
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        in_open = false;
        if (stop_on_client_eof) return;
        // stdin closed: pass the close on (^D for a terminal, EOF otherwise; conmon closes the
        // container's stdin when its attach connection half-closes and stdin is once-only).
        if (!framed && io.tty) {
          WriteAll(peer, "\x04", 1);
        } else {
          shutdown(peer, SHUT_WR);
        }
        continue;
      }
      if (!WriteAll(peer, buf, n)) return;
    }
  }
}

}  // namespace

absl::StatusOr<int> Engine::Exec(const std::string& id, const std::vector<std::string>& cmd,
                                 const StreamIO& io) {
  if (cmd.empty()) return absl::InvalidArgumentError("cmd is required");
  absl::StatusOr<ContainerView> c = GetContainer(id);
  if (!c.ok()) return c.status();
  if (absl::Status st = EnsureState(**c, Operation::kExec); !st.ok()) return st;
  nlohmann::json spec = nlohmann::json::parse((*c)->config().oci_spec(), nullptr, false);
  if (spec.is_discarded()) return absl::DataLossError("stored OCI spec does not parse");
  const std::string cid = (*c)->config().id();
  // Short paths: the console socket's must fit in sockaddr_un.
  const std::string dir = absl::StrCat(options_.state_dir, "/exec/", NewId().substr(0, 16));
  if (absl::Status st = MakeDirs(dir, 0700); !st.ok()) return st;
  auto cleanup = RemoveWhenDone(dir);
  const std::string process = dir + "/process.json";
  if (absl::Status st = WriteFileAtomic(process, DumpJson(ExecProcess(spec, cmd, io.tty)), 0600);
      !st.ok()) {
    return st;
  }
  UniqueFd devnull(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!io.tty) {
    absl::StatusOr<pid_t> pid =
        RuntimeOf((*c)->config())
            ->SpawnExec(cid, process, false, io.in >= 0 ? io.in : devnull.get(),
                        io.out >= 0 ? io.out : devnull.get(), io.err >= 0 ? io.err : devnull.get());
    if (!pid.ok()) return pid.status();
    absl::StatusOr<int> status = WaitProcess(*pid);
    if (!status.ok()) return status.status();
    if (WIFSIGNALED(*status)) return 128 + WTERMSIG(*status);
    return WEXITSTATUS(*status);
  }
  // With a terminal, a foreground `runc exec --tty` copies between its own stdio and the
  // container's pty, and on SIGWINCH copies its stdin's window size to it. So runc gets a pty of
  // berth's as its stdio: resizing that pty and signalling runc resizes the container's.
  int master_fd = -1, slave_fd = -1;
  winsize initial{};
  initial.ws_col = 80;
  initial.ws_row = 24;
  if (openpty(&master_fd, &slave_fd, nullptr, nullptr, &initial) != 0) return Errno("openpty");
  UniqueFd master(master_fd), slave(slave_fd);
  fcntl(master.get(), F_SETFD, FD_CLOEXEC);
  fcntl(slave.get(), F_SETFD, FD_CLOEXEC);
  absl::StatusOr<pid_t> pid =
      RuntimeOf((*c)->config())
          ->SpawnExec(cid, process, true, slave.get(), slave.get(), slave.get());
  if (!pid.ok()) return pid.status();
  slave.reset();  // runc holds the only copy: its exit ends reads with EIO
  const pid_t runc = *pid;
  const int mfd = master.get();
  absl::StatusOr<int> status;
  {
    Resizer resizer(io.resize, [mfd, runc](uint16_t w, uint16_t h) {
      winsize ws{};
      ws.ws_col = w;
      ws.ws_row = h;
      ioctl(mfd, TIOCSWINSZ, &ws);
      kill(runc, SIGWINCH);
    });
    CopyLoop(io, mfd, /*framed=*/false, /*stop_on_client_eof=*/false);
    status = WaitProcess(runc);
  }
  if (!status.ok()) return status.status();
  if (WIFSIGNALED(*status)) return 128 + WTERMSIG(*status);
  return WEXITSTATUS(*status);
}

absl::Status Engine::Attach(const std::string& id, const StreamIO& io) {
  absl::StatusOr<ContainerView> c = GetContainer(id);
  if (!c.ok()) return c.status();
  if (absl::Status st = EnsureState(**c, Operation::kAttach); !st.ok()) return st;
  // conmon runs with --full-attach: the socket is <bundle>/attach.
  const std::string path = absl::StrCat((*c)->config().bundle_dir(), "/attach");
  // Reached through /proc/self/fd/<dir>/attach so the path fits in sockaddr_un however deep
  // the state directory is.
  const std::string dir = path.substr(0, path.rfind('/'));
  UniqueFd dirfd(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dirfd.valid()) return Errno(absl::StrCat("opening ", dir));
  const std::string short_path = absl::StrCat("/proc/self/fd/", dirfd.get(), "/attach");
  UniqueFd sock(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, short_path.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Errno(absl::StrCat("connecting to conmon's attach socket ", path));
  }
  const std::string bundle = (*c)->config().bundle_dir();
  Resizer resizer(io.resize, [bundle, oci = RuntimeOf((*c)->config())](uint16_t w, uint16_t h) {
    // conmon's control message 1: "1 <height> <width>". A lost resize only leaves the old size.
    if (absl::Status st = oci->WriteControl(bundle, absl::StrCat("1 ", h, " ", w, "\n"));
        !st.ok()) {
      VLOG(1) << "resizing the terminal of " << bundle << ": " << st;
    }
  });
  // Detaching (the client closing its side) leaves the container running.
  CopyLoop(io, sock.get(), /*framed=*/true,
           /*stop_on_client_eof=*/!(*c)->config().cri().stdin_once());
  return absl::OkStatus();
}

absl::Status Engine::PortForward(const std::string& sandbox_id, int32_t port, int fd) {
  if (port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port ", port, " is out of range"));
  }
  absl::StatusOr<SandboxView> sb = GetSandbox(sandbox_id);
  if (!sb.ok()) return sb.status();
  if (absl::Status st = EnsureState(**sb, PodOperation::kPortForward); !st.ok()) return st;
  std::string netns = (*sb)->netns_path();
  if (netns.empty()) {
    const auto& nso = (*sb)->config().linux().security_context().namespace_options();
    if (nso.network() != runtime::v1::NODE) {
      absl::StatusOr<ContainerView> infra = GetContainer((*sb)->infra_container_id());
      if (!infra.ok()) return infra.status();
      netns = absl::StrCat("/proc/", (*infra)->state().pid(), "/ns/net");
    }
  }
  // The socket is made by a short-lived thread that enters the pod's netns: a socket stays in the
  // namespace it was created in, and no other berthd thread ever leaves the host's.
  absl::StatusOr<UniqueFd> conn = absl::InternalError("not connected");
  std::thread t([&] {
    if (!netns.empty()) {
      UniqueFd ns(open(netns.c_str(), O_RDONLY | O_CLOEXEC));
      if (!ns.valid() || unshare(CLONE_FS) != 0 || setns(ns.get(), CLONE_NEWNET) != 0) {
        conn = Errno(absl::StrCat("entering ", netns));
        return;
      }
    }
    UniqueFd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      conn = absl::UnavailableError(absl::StrCat("connecting to port ", port, " in pod \"",
                                                 sandbox_id, "\": ", strerror(errno)));
      return;
    }
    conn = std::move(s);
  });
  t.join();
  if (!conn.ok()) return conn.status();
  StreamIO io;
  io.in = fd;
  io.out = fd;
  CopyLoop(io, conn->get(), /*framed=*/false, /*stop_on_client_eof=*/false);
  return absl::OkStatus();
}

}  // namespace berth::engine
