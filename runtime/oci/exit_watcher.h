// ExitWatcher: learns container exits from conmon's exit files (inotify) and the death of each
// conmon itself (a pidfd per monitor), in one epoll loop; never by polling runc.
#ifndef BERTH_RUNTIME_OCI_EXIT_WATCHER_H_
#define BERTH_RUNTIME_OCI_EXIT_WATCHER_H_

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "util/fd.h"

namespace berth::oci {

// Whether process `pid` is the monitor of container `id`: one of its arguments is the id, as
// conmon's `-c <id>` is. A pid read from a pid file may since belong to another process.
bool IsMonitorOf(pid_t pid, const std::string& id);

class ExitWatcher {
 public:
  using Callback = std::function<void(const std::string& container_id)>;

  // Watches `dir` (created if missing) and calls `on_exit` from a background thread for every
  // exit file that appears. Files already present are not reported: recovery reads them.
  // `on_monitor_exit` (may be null) is called, from the same thread, once for each watched
  // monitor that is gone.
  static absl::StatusOr<std::unique_ptr<ExitWatcher>> Start(const std::string& dir,
                                                            Callback on_exit,
                                                            Callback on_monitor_exit = nullptr);
  ExitWatcher(UniqueFd epoll, UniqueFd inotify, UniqueFd wake, Callback on_exit,
              Callback on_monitor_exit);
  ~ExitWatcher();
  ExitWatcher(const ExitWatcher&) = delete;
  ExitWatcher& operator=(const ExitWatcher&) = delete;

  // Reports on_monitor_exit(id) once process `pid`, the monitor of container `id`, has exited.
  // A monitor already gone (or a pid that is no longer `id`'s monitor) is reported too, from the
  // watcher's thread, never from inside this call: callers hold the container's lock. Watching
  // an id again replaces its earlier monitor. A pidfd that cannot be had for another reason (out
  // of descriptors) leaves the monitor unwatched, reported nowhere but the log.
  void WatchMonitor(const std::string& id, pid_t pid);
  // Stops watching the monitor of `id` (the container is being removed); nothing is reported.
  void ForgetMonitor(const std::string& id);
  size_t monitors() const;

 private:
  struct Monitor {
    uint64_t token = 0;
    UniqueFd pidfd;
  };
  void Loop();
  void MonitorExited(uint64_t token);

  UniqueFd epoll_;
  UniqueFd inotify_;
  UniqueFd wake_;  // eventfd: the loop stops, or has queued reports to deliver
  Callback on_exit_;
  Callback on_monitor_exit_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_token_ ABSL_GUARDED_BY(mu_) = 2;  // 0 and 1 are the inotify fd and the eventfd
  absl::flat_hash_map<std::string, Monitor> monitors_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::string> by_token_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> gone_ ABSL_GUARDED_BY(mu_);  // monitors found dead when watched

  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace berth::oci

#endif  // BERTH_RUNTIME_OCI_EXIT_WATCHER_H_
