// FakeRuntime: an oci::Runtime with no processes, for engine tests that run without root. It
// keeps runc's view of each container in memory and, like conmon, writes an exit file into the
// exits directory when a container's "process" ends, so the engine's real ExitWatcher sees it;
// like conmon it creates the container's log file (and again on a reopen), and like CRIU a
// checkpoint leaves image files. Tests script what happens: a process that ignores SIGTERM, a
// failing start, an exit by itself.
#ifndef BERTH_RUNTIME_OCI_FAKE_RUNTIME_H_
#define BERTH_RUNTIME_OCI_FAKE_RUNTIME_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "runtime/oci/oci_runtime.h"

namespace berth::oci {

class FakeRuntime final : public Runtime {
 public:
  explicit FakeRuntime(OciRuntimeOptions options);

  // What each call did, in order ("create <id>", "start <id>", "kill <id> 15", ...).
  std::vector<std::string> calls() const;
  // Scripted behaviour.
  void FailNext(const std::string& call, absl::Status error);  // call: "create", "start", ...
  // Forgets every FailNext not used yet.
  void ClearFailures();
  void IgnoreSignal(const std::string& id, int signal);
  // The container's process ends by itself with `code` (conmon writes the exit file).
  void Exit(const std::string& id, int code, bool oom = false);
  // runc forgets everything (its state dir is a tmpfs): a reboot, or a `runc delete`.
  void ForgetAll();
  // runc's status of id, kUnknown when runc does not know it.
  RuncStatus StatusOf(const std::string& id) const;

  // No interactive processes: the base class's Unimplemented answers.

  absl::StatusOr<CreateResult> Create(const CreateRequest& request) const override;
  absl::Status Start(const std::string& id) const override;
  // Of a running container, leaving it running: files in request.image_path stand for CRIU's.
  absl::Status Checkpoint(const CheckpointRequest& request) const override;
  absl::Status Kill(const std::string& id, int signal, bool all = false) const override;
  absl::Status Delete(const std::string& id, bool force) const override;
  absl::Status Resume(const std::string& id) const override;
  absl::StatusOr<RuncState> State(const std::string& id) const override;
  absl::Status Update(const std::string& id, const std::string& resources_json) const override;
  absl::StatusOr<ExecResult> ExecSync(const std::string& id, const std::string& process_json,
                                      absl::Duration timeout, size_t max_output) const override;
  bool OomKilled(const std::string& bundle) const override;
  absl::Status WriteControl(const std::string& bundle, const std::string& message) const override;

 private:
  struct Ctr {
    RuncStatus status = RuncStatus::kUnknown;
    std::string bundle;
    std::string log_path;
    pid_t pid = 0;
    std::set<int> ignored;
  };
  absl::Status Fail(const std::string& call) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Record(std::string call) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExitLocked(const std::string& id, int code) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  mutable std::map<std::string, Ctr> ctrs_ ABSL_GUARDED_BY(mu_);
  mutable std::map<std::string, absl::Status> fail_next_ ABSL_GUARDED_BY(mu_);
  mutable std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
  mutable std::set<std::string> oom_bundles_ ABSL_GUARDED_BY(mu_);
  mutable pid_t next_pid_ ABSL_GUARDED_BY(mu_) = 4000000;  // above any real pid_max
};

}  // namespace berth::oci

#endif  // BERTH_RUNTIME_OCI_FAKE_RUNTIME_H_
