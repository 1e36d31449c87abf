// ExitWatcher: learns container exits from conmon's exit files with inotify, never by polling runc.
#ifndef BERTH_RUNTIME_OCI_EXIT_WATCHER_H_
#define BERTH_RUNTIME_OCI_EXIT_WATCHER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "util/fd.h"

namespace berth::oci {

class ExitWatcher {
 public:
  using Callback = std::function<void(const std::string& container_id)>;

  // Watches `dir` (created if missing) and calls `on_exit` from a background thread for every
  // exit file that appears. Files already present are not reported: recovery reads them.
  static absl::StatusOr<std::unique_ptr<ExitWatcher>> Start(const std::string& dir,
                                                            Callback on_exit);
  ExitWatcher(UniqueFd inotify, UniqueFd wake, Callback cb);
  ~ExitWatcher();
  ExitWatcher(const ExitWatcher&) = delete;
  ExitWatcher& operator=(const ExitWatcher&) = delete;

 private:
  void Loop();

  UniqueFd inotify_;
  UniqueFd wake_;  // eventfd that stops the loop
  Callback on_exit_;
  std::thread thread_;
};

}  // namespace berth::oci

#endif  // BERTH_RUNTIME_OCI_EXIT_WATCHER_H_
