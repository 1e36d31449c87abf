// inotify loop over the exit directory: conmon's exit files arrive by rename or close-write.
#include "runtime/oci/exit_watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "util/fs.h"

namespace berth::oci {

absl::StatusOr<std::unique_ptr<ExitWatcher>> ExitWatcher::Start(const std::string& dir,
                                                                Callback on_exit) {
  if (absl::Status st = MakeDirs(dir, 0700); !st.ok()) return st;
  UniqueFd in(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!in.valid()) return absl::InternalError(absl::StrCat("inotify_init1: ", strerror(errno)));
  if (inotify_add_watch(in.get(), dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
    return absl::InternalError(absl::StrCat("watching ", dir, ": ", strerror(errno)));
  }
  UniqueFd wake(eventfd(0, EFD_CLOEXEC));
  if (!wake.valid()) return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
  return std::make_unique<ExitWatcher>(std::move(in), std::move(wake), std::move(on_exit));
}

ExitWatcher::ExitWatcher(UniqueFd inotify, UniqueFd wake, Callback cb)
    : inotify_(std::move(inotify)), wake_(std::move(wake)), on_exit_(std::move(cb)) {
  thread_ = std::thread([this] { Loop(); });
}

ExitWatcher::~ExitWatcher() {
  uint64_t one = 1;
  if (write(wake_.get(), &one, sizeof(one)) < 0) PLOG(WARNING) << "waking exit watcher";
  thread_.join();
}

void ExitWatcher::Loop() {
  alignas(inotify_event) char buf[64 * 1024];
  for (;;) {
    pollfd fds[2] = {{inotify_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    int rc = poll(fds, 2, -1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) {
      PLOG(ERROR) << "exit watcher poll";
      return;
    }
    if (fds[1].revents) return;
    ssize_t n = read(inotify_.get(), buf, sizeof(buf));
    if (n <= 0) continue;
    for (char* p = buf; p < buf + n;) {
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
}

}  // namespace berth::oci
