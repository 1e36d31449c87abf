// Engine: pods (sandboxes) and containers, their libpod-style state machine, persistence and
// recovery. The CRI server translates requests into these calls; nothing here knows gRPC.
#ifndef BERTH_RUNTIME_ENGINE_H_
#define BERTH_RUNTIME_ENGINE_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "proto/berth/v1/records.pb.h"
#include "proto/runtime/v1/api.pb.h"
#include "runtime/cdi/cdi.h"
#include "runtime/cgroups/paths.h"
#include "runtime/cgroups/sweep.h"
#include "runtime/checkpoint.h"
#include "runtime/criu.h"
#include "runtime/events.h"
#include "runtime/hooks.h"
#include "runtime/host_ops.h"
#include "runtime/stream_io.h"
#include "runtime/oci/exit_watcher.h"
#include "runtime/oci/oci_runtime.h"
#include "runtime/providers.h"
#include "runtime/reboot.h"
#include "runtime/state_machine.h"
#include "storage/state_db.h"

namespace berth::engine {

struct EngineOptions {
  std::string root;                   // persistent: infra rootfs
  std::string state_dir;              // volatile: bundles, exits, pod files
  std::string runtime_path = "runc";  // the default handler's runtime, "runc" (and "")
  // Further RuntimeClass handlers (RunPodSandbox.runtime_handler): name → the OCI runtime binary
  // (crun, …) that runs its pods' containers, under conmon as runc does, each with its own state
  // root <state_dir>/runtimes/<name>. Names are DNS labels other than "runc".
  std::map<std::string, std::string> runtime_handlers;
  std::string conmon_path = "conmon";
  std::string criu_path = "criu";  // a path, or a name on PATH; checked when first needed
  std::string pause_binary;        // path of berth-pause on the host
  cgroups::CgroupDriver cgroup_driver = cgroups::CgroupDriver::kCgroupfs;
  std::string default_cgroup_parent = "/berth";
  size_t exec_sync_max_output = 16 << 20;
  int64_t log_size_max_bytes = -1;
  bool seccomp_default_when_empty = true;
  // oci::OciRuntimeOptions::read_state_in_process: runc's state.json read in-process.
  bool read_state_in_process = true;
  std::vector<std::string> hooks_dirs;  // OCI hooks.d directories, later ones win
  std::vector<std::string> cdi_spec_dirs = cdi::DefaultSpecDirs();  // later ones win
  // The kills the kernel's OOM killer counted in a container's cgroup (memory.events oom_kill on
  // v2, memory.oom_control on v1), read when the container exits: a process of the container
  // other than its init was OOM-killed is OOMKilled too, as containerd reports it (its shim
  // watches memory.events); conmon's own marker misses those on cgroup v2. Empty: read from the
  // host's cgroups when the runtime is runc, none otherwise.
  std::function<absl::StatusOr<uint64_t>(const std::string& cgroups_path)> oom_kill_count;
};

using ContainerView = std::shared_ptr<const berth::v1::Container>;
using SandboxView = std::shared_ptr<const berth::v1::Sandbox>;

struct ExecSyncResult {
  int exit_code = 0;
  std::string stdout_data;
  std::string stderr_data;
  bool timed_out = false;
};

// Recovery figures from the last start, for logs and metrics.
struct RecoveryReport {
  int sandboxes = 0;
  int containers = 0;
  int exited_while_down = 0;
  int cleaned_up = 0;
  int pods_not_ready = 0;  // READY pods found without a running infra container
  // The node rebooted (or the state dir was emptied) since the last start: no container of the
  // records runs; every pod is NOTREADY with its network released.
  bool rebooted = false;
  bool clean_shutdown = false;  // the last berthd stopped cleanly
  // Records that did not parse ("container/<key>", "sandbox/<key>"): kept in the StateDB, not
  // served.
  std::vector<std::string> quarantined;
  double seconds = 0;
};

// What the engine drives below it; empty members get the real ones (conmon + runc, host mounts).
struct EngineParts {
  std::shared_ptr<oci::Runtime> oci;  // shared: a test keeps its fake across engine restarts
  // The runtimes of EngineOptions::runtime_handlers by name (a test's fakes); those missing are
  // made from their binaries.
  std::map<std::string, std::shared_ptr<oci::Runtime>> handlers;
  std::unique_ptr<HostOps> host;
};

class Engine {
  struct Key {};  // only Create constructs an engine

 public:
  // Loads every record from the StateDB, reconciles it with runc and exit files, and starts
  // watching exits. image and network may be null (no images / host networking only).
  static absl::StatusOr<std::unique_ptr<Engine>> Create(EngineOptions options, storage::StateDB* db,
                                                        ImageProvider* images,
                                                        NetworkProvider* network,
                                                        EngineParts parts = {});
  Engine(Key, EngineOptions options, storage::StateDB* db, ImageProvider* images,
         NetworkProvider* network, EngineParts parts);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Pods.
  absl::StatusOr<std::string> RunPodSandbox(const runtime::v1::PodSandboxConfig& config,
                                            const std::string& runtime_handler);
  absl::Status StopPodSandbox(const std::string& id);    // idempotent
  absl::Status RemovePodSandbox(const std::string& id);  // idempotent
  absl::StatusOr<SandboxView> GetSandbox(const std::string& id_or_prefix) const;
  // Records the pod-level resources kubelet has applied to the pod cgroup.
  absl::Status UpdateSandboxResources(const std::string& id,
                                      const runtime::v1::LinuxContainerResources& resources,
                                      const runtime::v1::LinuxContainerResources& overhead);
  std::vector<SandboxView> ListSandboxes() const;

  // Containers (never the infra containers). A config.image.image that is an absolute path names
  // a checkpoint archive: the container is made from it and StartContainer restores it.
  absl::StatusOr<std::string> CreateContainer(const std::string& sandbox_id,
                                              const runtime::v1::ContainerConfig& config);
  absl::Status StartContainer(const std::string& id);
  // Stop signal, then SIGKILL after timeout_seconds, then waits for the exit file.
  absl::Status StopContainer(const std::string& id, int64_t timeout_seconds);
  // force: stop a running container first; otherwise a running container is FailedPrecondition.
  absl::Status RemoveContainer(const std::string& id, bool force);
  absl::StatusOr<ContainerView> GetContainer(const std::string& id_or_prefix) const;
  std::vector<ContainerView> ListContainers() const;
  // The app containers of one pod (what PodSandboxStatus reports for kubelet's evented PLEG).
  std::vector<ContainerView> ListContainersOf(const std::string& sandbox_id) const;
  absl::StatusOr<ExecSyncResult> ExecSync(const std::string& id,
                                          const std::vector<std::string>& cmd,
                                          int64_t timeout_seconds);
  absl::Status UpdateContainerResources(const std::string& id,
                                        const runtime::v1::LinuxContainerResources& resources);
  absl::Status ReopenContainerLog(const std::string& id);
  // CRIU checkpoint of a running container (left running) into a tar archive at `location`
  // (layout in runtime/checkpoint.h). FailedPrecondition when CRIU is missing or unusable.
  // timeout_seconds bounds CRIU's dump (CRI's timeout field); zero = berth's default.
  absl::Status CheckpointContainer(const std::string& id, const std::string& location,
                                   int64_t timeout_seconds = 0);

  // Interactive sessions for the streaming server (engine_streams.cc); each blocks until the
  // session ends. Exec returns the command's exit code.
  absl::StatusOr<int> Exec(const std::string& id, const std::vector<std::string>& cmd,
                           const StreamIO& io);
  absl::Status Attach(const std::string& id, const StreamIO& io);
  // Connects to 127.0.0.1:port inside the pod's network namespace and copies both ways to fd.
  absl::Status PortForward(const std::string& sandbox_id, int32_t port, int fd);

  EventBus& events() { return events_; }
  RecoveryReport recovery() const { return recovery_; }
  int CountContainers(berth::v1::ContainerStatus status) const;
  int CountSandboxes(berth::v1::SandboxStatus status) const;
  bool network_enabled() const { return network_ != nullptr; }
  // Host features (host_probes.cc), each probed when first asked and kept for the engine's life.
  // Status.runtime_handlers: the default ("runc", and "" for a pod that names none), then every
  // configured handler.
  std::vector<std::string> RuntimeHandlerNames() const;
  absl::Status UserNamespacesUsable() ABSL_LOCKS_EXCLUDED(probes_mu_);
  bool RecursiveReadOnlyMounts() ABSL_LOCKS_EXCLUDED(probes_mu_);
  // CRIU for checkpoint and restore.
  CriuProbe& criu() { return criu_; }
  absl::Status NetworkReady() const;

 private:
  struct ContainerObj {
    absl::Mutex mu;  // serialises lifecycle operations on one container
    absl::CondVar changed;
    berth::v1::Container rec ABSL_GUARDED_BY(mu);
  };
  struct SandboxObj {
    absl::Mutex mu;
    berth::v1::Sandbox rec ABSL_GUARDED_BY(mu);
  };
  // A name held by a creation still in progress; a retry with the same name waits for it.
  struct Reservation {
    std::string request;  // serialized request, to tell a retry from a different request
    absl::Notification done;
    std::string id;
    absl::Status status;
  };

  absl::Status Init();
  absl::Status Recover();
  // One recovered container against its exit file and runc (libpod's syncContainer); true when
  // it ended while berthd was down. Recovery runs it on several threads, one container each.
  bool Reconcile(ContainerObj* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu);
  void OnExit(const std::string& id);
  void Emit(const berth::v1::Container& c, EventType type);

  struct TransitionOptions {
    bool durable = true;  // false: the record only matters while the machine stays up (no fsync)
    bool emit = true;     // false: the caller publishes the event itself (the infra container's
                          // STOPPED goes out after its pod's new state)
  };
  // The one writer of a container's status. Checks `op` against the state machine from the
  // current state (FailedPrecondition naming both states otherwise), takes `next` (the record as
  // the caller wants it; its status must still be the current one), sets the status `op` leads
  // to and when it changed, saves it, publishes the view and the operation's CRI event.
  absl::Status Transition(ContainerObj* c, Operation op, berth::v1::Container next,
                          TransitionOptions options) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu);
  absl::Status Transition(ContainerObj* c, Operation op, berth::v1::Container next)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu) {
    return Transition(c, op, std::move(next), TransitionOptions{});
  }
  absl::Status Transition(ContainerObj* c, Operation op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu) {
    return Transition(c, op, c->rec, TransitionOptions{});
  }
  // The same for a pod; pod transitions publish no event of their own (CRI events are the
  // containers', and each carries its pod as of the event).
  absl::Status Transition(SandboxObj* s, PodOperation op, berth::v1::Sandbox next)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu);
  // Saves a change that leaves the status as it is (resources, IPs, paths); Internal if `next`
  // carries another status.
  absl::Status Update(ContainerObj* c, berth::v1::Container next, bool durable = true)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu);
  absl::Status Update(SandboxObj* s, berth::v1::Sandbox next) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu);
  // The process ended with exit_code: Transition(kExit) with the finish time, OOM and reason
  // (empty: Completed, Error or OOMKilled from the code and the cgroup) and message.
  void MarkExited(ContainerObj* c, int exit_code, bool emit = true, const std::string& reason = "",
                  const std::string& message = "") ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu);
  // A pod's infra container exited by itself: the pod becomes NOTREADY, then the event goes out.
  void InfraExited(const berth::v1::Container& infra) ABSL_LOCKS_EXCLUDED(index_mu_);
  // Writes a record and publishes its view; only Transition and Update call these.
  absl::Status SaveContainer(ContainerObj* c, const berth::v1::Container& rec, bool durable)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu);
  absl::Status SaveSandbox(SandboxObj* s, const berth::v1::Sandbox& rec)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu);
  std::shared_ptr<ContainerObj> FindContainerObj(const std::string& id_or_prefix,
                                                 absl::Status* error) const;
  std::shared_ptr<SandboxObj> FindSandboxObj(const std::string& id_or_prefix,
                                             absl::Status* error) const;

  // Name reservation (names.cc). A new reservation the caller must Release when its creation
  // ends; or null with *existing_id set when an identical request already made the object (a
  // retry, possibly after waiting for a concurrent one); or AlreadyExists for a different request
  // holding the name.
  absl::StatusOr<std::shared_ptr<Reservation>> Reserve(
      absl::flat_hash_map<std::string, std::shared_ptr<Reservation>>* table,
      const std::string& name, const std::string& request, std::string* existing_id);
  void Release(absl::flat_hash_map<std::string, std::shared_ptr<Reservation>>* table,
               const std::string& name, const std::shared_ptr<Reservation>& r,
               const absl::StatusOr<std::string>& result);

  absl::StatusOr<std::string> DoRunPodSandbox(const runtime::v1::PodSandboxConfig& config,
                                              const std::string& runtime_handler,
                                              const std::string& name);
  // restore: the checkpoint archive the container is made from, or null.
  absl::StatusOr<std::string> DoCreateContainer(const std::string& sandbox_id,
                                                const runtime::v1::ContainerConfig& config,
                                                const std::string& name,
                                                const CheckpointArchive* restore = nullptr);
  // Creates (runc create via conmon) and, for infra, starts a container from a record that is
  // already Configured and saved.
  absl::Status CreateInRuntime(ContainerObj* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu);
  // `runc restore` through conmon of a container awaiting its restore; Running when it returns.
  absl::Status RestoreInRuntime(ContainerObj* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu);
  absl::Status StopContainerObj(const std::shared_ptr<ContainerObj>& c, int64_t timeout_seconds);
  absl::Status RemoveContainerObj(const std::shared_ptr<ContainerObj>& c, bool force);
  // Tears down everything a container holds (runc, rootfs, bundle) and forgets it.
  absl::Status CleanupContainer(const std::shared_ptr<ContainerObj>& c)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu);
  // `was_creating`: the pod was still being made (its record may know nothing of a CNI ADD that
  // ran, or still runs, so the DEL is not skipped), though its removal has begun.
  absl::Status TearDownSandbox(SandboxObj* s, berth::v1::Sandbox* rec, bool was_creating = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu);
  // The pod a stop or removal works on and its full id; null (with *error OK when it is unknown,
  // as those calls are idempotent) otherwise.
  std::shared_ptr<SandboxObj> FindSandboxToTearDown(const std::string& id, std::string* sid,
                                                    absl::Status* error) const;
  std::shared_ptr<ContainerObj> InfraOf(const berth::v1::Sandbox& rec) const
      ABSL_LOCKS_EXCLUDED(index_mu_);
  std::vector<std::shared_ptr<ContainerObj>> ContainersOf(const std::string& sandbox_id) const;
  std::vector<ContainerView> AppContainerViewsLocked(const std::string& sandbox_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mu_);
  absl::StatusOr<std::string> CgroupsPath(const std::string& parent, const std::string& id) const;
  std::string BundleDir(const std::string& id) const;
  std::string SandboxDir(const std::string& id) const;
  std::string InfraRootfs() const;

  EngineOptions options_;
  storage::StateDB* db_;
  ImageProvider* images_;
  NetworkProvider* network_;
  // The runtime that runs a container: its pod's handler's (an UnconfiguredRuntime for a handler
  // no longer configured), the default one for "" and "runc".
  std::shared_ptr<oci::Runtime> RuntimeOf(const berth::v1::ContainerConfig& cc) const
      ABSL_LOCKS_EXCLUDED(unconfigured_mu_);

  std::shared_ptr<oci::Runtime> oci_;  // the default handler's
  // The other handlers' runtimes by name, fixed at construction.
  std::map<std::string, std::shared_ptr<oci::Runtime>> handlers_;
  mutable absl::Mutex unconfigured_mu_;
  mutable std::map<std::string, std::shared_ptr<oci::Runtime>> unconfigured_
      ABSL_GUARDED_BY(unconfigured_mu_);
  std::unique_ptr<HostOps> host_;
  int oom_floor_ = -1000;
  RecoveryReport recovery_;
  EventBus events_;
  std::vector<Hook> hooks_;  // loaded once at start
  CriuProbe criu_;
  cdi::Registry cdi_;  // CDI spec files, re-read when they change
  absl::Mutex probes_mu_;
  std::optional<absl::Status> userns_usable_ ABSL_GUARDED_BY(probes_mu_);
  std::optional<bool> rro_usable_ ABSL_GUARDED_BY(probes_mu_);

  mutable absl::Mutex index_mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<ContainerObj>> containers_
      ABSL_GUARDED_BY(index_mu_);
  absl::flat_hash_map<std::string, ContainerView> container_views_ ABSL_GUARDED_BY(index_mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<SandboxObj>> sandboxes_
      ABSL_GUARDED_BY(index_mu_);
  absl::flat_hash_map<std::string, SandboxView> sandbox_views_ ABSL_GUARDED_BY(index_mu_);
  // The app containers of each pod (ids), so a pod's event and status do not scan the node.
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> pod_containers_
      ABSL_GUARDED_BY(index_mu_);
  // Publishes a container's view (and its place in pod_containers_).
  void PublishLocked(ContainerView view) ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mu_);
  void ForgetLocked(const berth::v1::ContainerConfig& config)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mu_);

  absl::Mutex names_mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Reservation>> container_names_
      ABSL_GUARDED_BY(names_mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<Reservation>> sandbox_names_
      ABSL_GUARDED_BY(names_mu_);

  // Faults below the engine (faults.cc). CheckBootAtStart, before Recover: the boot and
  // clean-shutdown markers (boot_). FinishStart, after it: this boot's marker and the cgroup
  // janitor. StopFaultHandling, in ~Engine: the janitor and the exit watcher stop, then the
  // clean-stop marker is written.
  absl::Status CheckBootAtStart();
  absl::Status FinishStart();
  void StopFaultHandling();
  // Recovery after a reboot: a live container is EXITED with the unknown exit code (255, as
  // containerd), and every pod NOTREADY with its network released (CNI DEL from the cached
  // result, so IPAM reservations kept on disk are freed).
  bool ExitedWithTheBoot(ContainerObj* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu);
  void ReleasePodsAfterReboot() ABSL_LOCKS_EXCLUDED(index_mu_);
  // A container's conmon is watched (a pidfd in the exit watcher) from its creation, restore or
  // recovery on. Its death is reconciled with the exit file, then runc: a container still running
  // is killed; it is EXITED with the unknown exit code and a message naming conmon.
  void WatchMonitor(const berth::v1::Container& rec);
  void OnMonitorExit(const std::string& id) ABSL_LOCKS_EXCLUDED(index_mu_);
  // True when it recorded the exit (an infra container's pod is then the caller's to update).
  bool MonitorLost(ContainerObj* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu);
  // Once runc has forgotten a container (CleanupContainer): its monitor's watch goes, and the
  // cgroup runc left (killed processes still exiting, or runc's state lost) is removed.
  void ReleaseRuntimeLeftovers(const berth::v1::ContainerConfig& cc);
  // Whether the kernel counted an OOM kill in the container's cgroup (options_.oom_kill_count).
  bool CgroupCountedOomKill(const berth::v1::ContainerConfig& cc) const;
  // CleanupContainer's `runc delete` failed (runc missing or broken): whether the cleanup may go
  // on anyway, the delete being retried in the background. `before` is the record as it was.
  bool OutliveFailedRuntimeDelete(const berth::v1::Container& before, const absl::Status& error);

  BootCheck boot_;
  bool owns_cgroups_ = false;  // the runtime is runc: its cgroups are swept and removed
  std::unique_ptr<cgroups::CgroupJanitor> cgroup_janitor_;
  std::unique_ptr<oci::ExitWatcher> exit_watcher_;  // last: stops before the maps go
};

// CRI-style names, unique per pod attempt.
std::string SandboxName(const runtime::v1::PodSandboxMetadata& m);
std::string ContainerName(const runtime::v1::ContainerMetadata& m,
                          const runtime::v1::PodSandboxMetadata& pod);

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_ENGINE_H_
