// One epoll loop over the exit directory (conmon's exit files arrive by rename or close-write)
// and a pidfd per conmon (readable once that conmon is gone).
#include "runtime/oci/exit_watcher.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "glog/logging.h"
#include "util/fs.h"

namespace berth::oci {
namespace {

constexpr uint64_t kInotifyToken = 0;
constexpr uint64_t kWakeToken = 1;

// glibc 2.36's <sys/pidfd.h> declares pidfd_open without C linkage; the system call is plain.
int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

absl::Status AddToEpoll(int epoll, int fd, uint64_t token) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = token;
  if (epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev) != 0) return Errno("epoll_ctl ADD");
  return absl::OkStatus();
}

}  // namespace

bool IsMonitorOf(pid_t pid, const std::string& id) {
  if (pid <= 0 || id.empty()) return false;
  absl::StatusOr<std::string> cmdline = ReadFile(absl::StrCat("/proc/", pid, "/cmdline"));
  if (!cmdline.ok()) return false;
  for (absl::string_view arg : absl::StrSplit(*cmdline, '\0')) {
    if (arg == id) return true;
  }
  return false;
}

absl::StatusOr<std::unique_ptr<ExitWatcher>> ExitWatcher::Start(const std::string& dir,
                                                                Callback on_exit,
                                                                Callback on_monitor_exit) {
  if (absl::Status st = MakeDirs(dir, 0700); !st.ok()) return st;
  UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  if (!ep.valid()) return Errno("epoll_create1");
  UniqueFd in(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!in.valid()) return absl::InternalError(absl::StrCat("inotify_init1: ", strerror(errno)));
  if (inotify_add_watch(in.get(), dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
    return absl::InternalError(absl::StrCat("watching ", dir, ": ", strerror(errno)));
  }
  UniqueFd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
  if (absl::Status st = AddToEpoll(ep.get(), in.get(), kInotifyToken); !st.ok()) return st;
  if (absl::Status st = AddToEpoll(ep.get(), wake.get(), kWakeToken); !st.ok()) return st;
  return std::make_unique<ExitWatcher>(std::move(ep), std::move(in), std::move(wake),
                                       std::move(on_exit), std::move(on_monitor_exit));
}

ExitWatcher::ExitWatcher(UniqueFd epoll, UniqueFd inotify, UniqueFd wake, Callback on_exit,
                         Callback on_monitor_exit)
    : epoll_(std::move(epoll)),
      inotify_(std::move(inotify)),
      wake_(std::move(wake)),
      on_exit_(std::move(on_exit)),
      on_monitor_exit_(std::move(on_monitor_exit)) {
  thread_ = std::thread([this] { Loop(); });
}

ExitWatcher::~ExitWatcher() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  uint64_t one = 1;
  if (write(wake_.get(), &one, sizeof(one)) < 0) PLOG(WARNING) << "waking exit watcher";
  thread_.join();
}

void ExitWatcher::WatchMonitor(const std::string& id, pid_t pid) {
  UniqueFd pidfd(pid > 0 ? PidfdOpen(pid) : -1);
  const int open_errno = errno;
  absl::MutexLock l(&mu_);
  if (auto it = monitors_.find(id); it != monitors_.end()) {
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.pidfd.get(), nullptr);
    by_token_.erase(it->second.token);
    monitors_.erase(it);
  }
  if (!pidfd.valid() && open_errno != ESRCH) {
    // Out of descriptors (EMFILE) or the like: the monitor may well live. Reporting it gone would
    // have its container killed; unwatched, only its exit file tells of its end.
    LOG(ERROR) << "cannot watch the monitor (conmon) of container " << id << ", pid " << pid
               << ": pidfd_open: " << strerror(open_errno);
    return;
  }
  // Checked after the pidfd is open: if the pid still names id's monitor now, the pidfd is it.
  if (!pidfd.valid() || !IsMonitorOf(pid, id)) {
    LOG(WARNING) << "the monitor (conmon) of container " << id << ", pid " << pid << " is gone"
                 << (pidfd.valid() ? ""
                                   : absl::StrCat(" (pidfd_open: ", strerror(open_errno), ")"));
    gone_.push_back(id);
    uint64_t one = 1;
    if (write(wake_.get(), &one, sizeof(one)) < 0) PLOG(WARNING) << "waking exit watcher";
    return;
  }
  const uint64_t token = next_token_++;
  if (absl::Status st = AddToEpoll(epoll_.get(), pidfd.get(), token); !st.ok()) {
    // Without the pidfd this monitor's death goes unseen; its exit file is still watched.
    LOG(ERROR) << "watching the monitor of container " << id << ": " << st;
    return;
  }
  by_token_[token] = id;
  monitors_[id] = Monitor{token, std::move(pidfd)};
}

void ExitWatcher::ForgetMonitor(const std::string& id) {
  absl::MutexLock l(&mu_);
  auto it = monitors_.find(id);
  if (it == monitors_.end()) return;
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.pidfd.get(), nullptr);
  by_token_.erase(it->second.token);
  monitors_.erase(it);
}

size_t ExitWatcher::monitors() const {
  absl::MutexLock l(&mu_);
  return monitors_.size();
}

void ExitWatcher::MonitorExited(uint64_t token) {
  std::string id;
  {
    absl::MutexLock l(&mu_);
    auto t = by_token_.find(token);
    if (t == by_token_.end()) return;  // forgotten meanwhile
    id = t->second;
    by_token_.erase(t);
    auto it = monitors_.find(id);
    if (it != monitors_.end()) {
      epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.pidfd.get(), nullptr);
      monitors_.erase(it);
    }
  }
  if (on_monitor_exit_) on_monitor_exit_(id);
}

void ExitWatcher::Loop() {
  alignas(inotify_event) char buf[64 * 1024];
  epoll_event events[64];
  for (;;) {
    int n = epoll_wait(epoll_.get(), events, 64, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      PLOG(ERROR) << "exit watcher epoll_wait";
      return;
    }
    // Exit files first: a conmon writes its container's exit file before it exits, and the exit
    // is what a caller should see, not the monitor's death.
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 != kInotifyToken) continue;
      ssize_t len = read(inotify_.get(), buf, sizeof(buf));
      if (len <= 0) continue;
      for (char* p = buf; p < buf + len;) {
        auto* ev = reinterpret_cast<inotify_event*>(p);
        p += sizeof(inotify_event) + ev->len;
        if (ev->mask & IN_Q_OVERFLOW) {
          LOG(WARNING) << "exit watcher queue overflowed; exits are reconciled on the next sync";
          continue;
        }
        if (ev->len == 0) continue;
        std::string name(ev->name);
        // conmon writes through a temporary name and renames it into place.
        if (absl::StrContains(name, ".") || name.size() < 8) continue;
        on_exit_(name);
      }
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t token = events[i].data.u64;
      if (token == kInotifyToken) continue;
      if (token == kWakeToken) {
        uint64_t count;
        (void)!read(wake_.get(), &count, sizeof(count));
        std::deque<std::string> gone;
        {
          absl::MutexLock l(&mu_);
          if (stopping_) return;
          gone.swap(gone_);
        }
        for (const std::string& id : gone) {
          if (on_monitor_exit_) on_monitor_exit_(id);
        }
        continue;
      }
      MonitorExited(token);
    }
  }
}

}  // namespace berth::oci
