// OciRuntime: drives one container through conmon (stdio, logs, exit file) and runc (lifecycle).
#ifndef BERTH_RUNTIME_OCI_OCI_RUNTIME_H_
#define BERTH_RUNTIME_OCI_OCI_RUNTIME_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/oci/runc_state.h"

namespace berth::oci {

struct OciRuntimeOptions {
  std::string runtime_path;  // runc
  std::string conmon_path;
  std::string runc_root;  // runc --root: runc's own state (tmpfs)
  std::string exits_dir;  // conmon writes <exits_dir>/<id> with the exit code
  // conmon's --socket-dir-path; with --full-attach the attach socket is <bundle>/attach instead.
  std::string attach_dir;
  // Private (0700) scratch for exec process specs and pid files: never a world-writable /tmp.
  std::string exec_dir;
  int64_t log_size_max_bytes = -1;
  // --systemd-cgroup for runc/crun (the systemd cgroup driver): cgroupsPath is
  // "slice:prefix:name" and the runtime makes the container's scope through systemd.
  bool systemd_cgroup = false;
  // State() reads runc's state.json itself (runtime/oci/runc_state.h) when runtime_path is a
  // runc whose state it understands (asked once with --version), and runs `runc state` only
  // when that reader cannot be sure. false: always `runc state`.
  bool read_state_in_process = true;
  // Where the in-process reader finds cgroups and systemd; tests point them at fakes.
  RuncStateReaderOptions state_reader;
};

struct CreateRequest {
  std::string id;
  std::string name;
  std::string bundle;    // holds config.json; conmon's pid files and persist dir go here too
  std::string log_path;  // CRI-format log file; empty: no log
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
  pid_t pid = 0;  // the container's init process
  pid_t conmon_pid = 0;
};

struct ExecResult {
  int exit_code = -1;
  std::string stdout_data;
  std::string stderr_data;
  bool timed_out = false;
};

// What the engine needs from an OCI runtime and its per-container monitor. OciRuntime (conmon +
// runc) is the real one; runtime/oci/fake_runtime.h is a fake for tests that run without root.
class Runtime {
 public:
  virtual ~Runtime() = default;

  // Creates the container (status created) with a monitor that outlives berthd and writes the
  // exit file; returns once the runtime knows the container.
  virtual absl::StatusOr<CreateResult> Create(const CreateRequest& request) const = 0;
  virtual absl::Status Start(const std::string& id) const = 0;
  // A CRIU checkpoint, keeping established TCP connections and file locks. Unimplemented unless
  // the runtime can.
  virtual absl::Status Checkpoint(const CheckpointRequest& request) const {
    return absl::UnimplementedError("this OCI runtime cannot checkpoint containers");
  }
  // Sends a signal to the init process (all=true: to every process of the container).
  virtual absl::Status Kill(const std::string& id, int signal, bool all = false) const = 0;
  // Forgets the container; absent is fine. force also kills a live one.
  virtual absl::Status Delete(const std::string& id, bool force) const = 0;
  virtual absl::Status Resume(const std::string& id) const = 0;
  // NotFound when the runtime does not know the container.
  virtual absl::StatusOr<RuncState> State(const std::string& id) const = 0;
  // Applies linux.resources (OCI JSON) to a running container.
  virtual absl::Status Update(const std::string& id, const std::string& resources_json) const = 0;
  // Runs a process (OCI process JSON) in the container and collects its output.
  virtual absl::StatusOr<ExecResult> ExecSync(const std::string& id,
                                              const std::string& process_json,
                                              absl::Duration timeout, size_t max_output) const = 0;
  // Starts a process (OCI process JSON file) in the container with the given stdio; the caller
  // reaps the returned pid. Unimplemented unless the runtime runs real processes.
  virtual absl::StatusOr<pid_t> SpawnExec(const std::string& id,
                                          const std::string& process_json_path, bool tty,
                                          int stdin_fd, int stdout_fd, int stderr_fd) const {
    return absl::UnimplementedError("this OCI runtime cannot start interactive processes");
  }
  // The monitor marked an OOM kill of the container whose bundle this is.
  virtual bool OomKilled(const std::string& bundle) const = 0;
  // The monitor's control channel: resize and log-reopen messages.
  virtual absl::Status WriteControl(const std::string& bundle,
                                    const std::string& message) const = 0;

  // Where exit files appear (watched by the engine's ExitWatcher) and the other directories.
  const OciRuntimeOptions& options() const { return options_; }
  std::string ExitFile(const std::string& id) const;
  // The exit code the monitor wrote into the exit file; NotFound while the container runs.
  absl::StatusOr<int> ReadExitCode(const std::string& id) const;

 protected:
  explicit Runtime(OciRuntimeOptions options) : options_(std::move(options)) {}
  OciRuntimeOptions options_;
};

// conmon + runc.
class OciRuntime final : public Runtime {
 public:
  explicit OciRuntime(OciRuntimeOptions options) : Runtime(std::move(options)) {}

  absl::StatusOr<CreateResult> Create(const CreateRequest& request) const override;
  absl::Status Start(const std::string& id) const override;
  absl::Status Checkpoint(const CheckpointRequest& request) const override;
  absl::Status Kill(const std::string& id, int signal, bool all = false) const override;
  absl::Status Delete(const std::string& id, bool force) const override;
  absl::Status Resume(const std::string& id) const override;
  // runc's answer: from state.json when the in-process reader is sure, else `runc state`.
  absl::StatusOr<RuncState> State(const std::string& id) const override;
  absl::Status Update(const std::string& id, const std::string& resources_json) const override;
  absl::StatusOr<ExecResult> ExecSync(const std::string& id, const std::string& process_json,
                                      absl::Duration timeout, size_t max_output) const override;
  absl::StatusOr<pid_t> SpawnExec(const std::string& id, const std::string& process_json_path,
                                  bool tty, int stdin_fd, int stdout_fd,
                                  int stderr_fd) const override;
  // conmon marks an OOM kill with a file in the persist dir.
  bool OomKilled(const std::string& bundle) const override;
  // conmon's control fifo.
  absl::Status WriteControl(const std::string& bundle, const std::string& message) const override;

 private:
  std::vector<std::string> Runc(std::vector<std::string> args) const;
  absl::Status RunRunc(const std::vector<std::string>& args, absl::Duration timeout) const;
  absl::StatusOr<RuncState> ExecState(const std::string& id) const;
  // Whether runtime_path is a runc the in-process reader understands (asked once it could be),
  // and then the reader's options with the cgroup layout resolved.
  bool ReadsStateInProcess(RuncStateReaderOptions* reader) const;

  mutable absl::Mutex probe_mu_;
  // Set once `<runtime_path> --version` ran and exited 0: a runtime that cannot be run yet is
  // asked again on the next State().
  mutable std::optional<bool> readable_runc_ ABSL_GUARDED_BY(probe_mu_);
  mutable RuncStateReaderOptions reader_ ABSL_GUARDED_BY(probe_mu_);
};

// Stands in for a RuntimeClass handler that records name but the configuration no longer has:
// every runtime call fails with FailedPrecondition naming the handler (re-adding it to the
// configuration and restarting berthd brings its containers back); exit files still read.
class UnconfiguredRuntime final : public Runtime {
 public:
  UnconfiguredRuntime(OciRuntimeOptions options, std::string handler)
      : Runtime(std::move(options)), handler_(std::move(handler)) {}

  absl::StatusOr<CreateResult> Create(const CreateRequest&) const override { return Error(); }
  absl::Status Start(const std::string&) const override { return Error(); }
  absl::Status Checkpoint(const CheckpointRequest&) const override { return Error(); }
  absl::Status Kill(const std::string&, int, bool) const override { return Error(); }
  absl::Status Delete(const std::string&, bool) const override { return Error(); }
  absl::Status Resume(const std::string&) const override { return Error(); }
  absl::StatusOr<RuncState> State(const std::string&) const override { return Error(); }
  absl::Status Update(const std::string&, const std::string&) const override { return Error(); }
  absl::StatusOr<ExecResult> ExecSync(const std::string&, const std::string&, absl::Duration,
                                      size_t) const override {
    return Error();
  }
  absl::StatusOr<pid_t> SpawnExec(const std::string&, const std::string&, bool, int, int,
                                  int) const override {
    return Error();
  }
  bool OomKilled(const std::string&) const override { return false; }
  absl::Status WriteControl(const std::string&, const std::string&) const override {
    return Error();
  }

 private:
  absl::Status Error() const;
  std::string handler_;
};

}  // namespace berth::oci

#endif  // BERTH_RUNTIME_OCI_OCI_RUNTIME_H_
