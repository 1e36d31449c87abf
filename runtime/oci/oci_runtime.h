// OciRuntime: drives one container through conmon (stdio, logs, exit file) and runc (lifecycle).
#ifndef BERTH_RUNTIME_OCI_OCI_RUNTIME_H_
#define BERTH_RUNTIME_OCI_OCI_RUNTIME_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace berth::oci {

struct OciRuntimeOptions {
  std::string runtime_path;  // runc
  std::string conmon_path;
  std::string runc_root;     // runc --root: runc's own state (tmpfs)
  std::string exits_dir;     // conmon writes <exits_dir>/<id> with the exit code
  // conmon's --socket-dir-path; with --full-attach the attach socket is <bundle>/attach instead.
  std::string attach_dir;
  // Private (0700) scratch for exec process specs and pid files: never a world-writable /tmp.
  std::string exec_dir;
  int64_t log_size_max_bytes = -1;
  // --systemd-cgroup for runc/crun (the systemd cgroup driver): cgroupsPath is
  // "slice:prefix:name" and the runtime makes the container's scope through systemd.
  bool systemd_cgroup = false;
};

struct CreateRequest {
  std::string id;
  std::string name;
  std::string bundle;     // holds config.json; conmon's pid files and persist dir go here too
  std::string log_path;   // CRI-format log file; empty: no log
  bool terminal = false;
  bool open_stdin = false;
  bool stdin_once = false;
  // Set: `runc restore` from these CRIU images (conmon --restore) instead of `runc create`; the
  // container runs when Create returns. CRIU's restore.log goes to the bundle.
  std::string restore_image_path;
  std::string criu_path;  // runc --criu, for a restore
};

struct CheckpointRequest {
  std::string id;
  std::string criu_path;   // runc --criu
  std::string image_path;  // CRIU images and dump.log go here
  bool leave_running = true;
  // The caller's limit (CRI CheckpointContainerRequest.timeout); zero = berth's default.
  absl::Duration timeout = absl::ZeroDuration();
};

struct CreateResult {
  pid_t pid = 0;         // the container's init process
  pid_t conmon_pid = 0;
};

// What `runc state` says.
struct RuncState {
  std::string status;  // creating, created, running, paused, stopped
  pid_t pid = 0;
};

struct ExecResult {
  int exit_code = -1;
  std::string stdout_data;
  std::string stderr_data;
  bool timed_out = false;
};

class OciRuntime {
 public:
  explicit OciRuntime(OciRuntimeOptions options);

  // `runc create` through conmon; returns once the container exists in runc (status created).
  absl::StatusOr<CreateResult> Create(const CreateRequest& request) const;
  absl::Status Start(const std::string& id) const;
  // `runc checkpoint` through CRIU, keeping established TCP connections and file locks.
  absl::Status Checkpoint(const CheckpointRequest& request) const;
  // Sends a signal to the init process (all=true: to every process of the container).
  absl::Status Kill(const std::string& id, int signal, bool all = false) const;
  // Removes the container from runc; absent is fine. force also kills a live one.
  absl::Status Delete(const std::string& id, bool force) const;
  absl::Status Resume(const std::string& id) const;
  // NotFound when runc does not know the container.
  absl::StatusOr<RuncState> State(const std::string& id) const;
  // Applies linux.resources (OCI JSON) to a running container.
  absl::Status Update(const std::string& id, const std::string& resources_json) const;
  // Runs a process (OCI process JSON) in the container and collects its output.
  absl::StatusOr<ExecResult> ExecSync(const std::string& id, const std::string& process_json,
                                      absl::Duration timeout, size_t max_output) const;
  // Starts `runc exec` of a process JSON with the given stdio; the caller reaps the returned pid.
  absl::StatusOr<pid_t> SpawnExec(const std::string& id, const std::string& process_json_path,
                                  bool tty, int stdin_fd,
                                  int stdout_fd, int stderr_fd) const;

  // The exit file conmon writes and its content parsed; NotFound while the container runs.
  absl::StatusOr<int> ReadExitCode(const std::string& id) const;
  std::string ExitFile(const std::string& id) const;
  // conmon marks an OOM kill with a file in the persist dir.
  static bool OomKilled(const std::string& bundle);
  // conmon's control fifo: resize and log-reopen messages.
  static absl::Status WriteControl(const std::string& bundle, const std::string& message);

  const OciRuntimeOptions& options() const { return options_; }

 private:
  std::vector<std::string> Runc(std::vector<std::string> args) const;
  absl::Status RunRunc(const std::vector<std::string>& args, absl::Duration timeout) const;

  OciRuntimeOptions options_;
};

}  // namespace berth::oci

#endif  // BERTH_RUNTIME_OCI_OCI_RUNTIME_H_
