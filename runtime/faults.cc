// Faults underneath the engine (issue #17): a node reboot seen at start, a conmon that dies, and
// the cgroups runc leaves behind. The engine's files call these at the points named in engine.h.
#include <atomic>

#include "runtime/cgroups/mode.h"
#include "runtime/cgroups/oom.h"
#include "runtime/cgroups/sweep.h"
#include "runtime/engine_internal.h"
#include "runtime/reboot.h"

namespace berth::engine {
namespace {

// What containerd reports when it cannot know how a container ended (its unknownExitCode and
// unknownExitReason); kubelet shows them as they are.
constexpr int kUnknownExitCode = 255;
constexpr char kUnknownExitReason[] = "Unknown";

// How long a removal waits for what is left in a container's cgroup to die before it leaves the
// cgroup to the janitor.
constexpr absl::Duration kCgroupKillWait = absl::Seconds(2);
// CNI DELs run side by side after a reboot; plugins take locks (host-local) and CPU.
constexpr int kParallelReleases = 8;

}  // namespace

absl::Status Engine::CheckBootAtStart() {
  absl::StatusOr<BootCheck> boot = CheckBoot({options_.root, options_.state_dir});
  if (!boot.ok()) return boot.status();
  boot_ = *boot;
  recovery_.rebooted = boot_.rebooted;
  recovery_.clean_shutdown = boot_.clean_shutdown;
  // The cgroups are runc's: with a runtime of another kind (a test's fake) there are none.
  owns_cgroups_ = dynamic_cast<oci::OciRuntime*>(oci_.get()) != nullptr;
  if (owns_cgroups_ && !options_.oom_kill_count) {
    const cgroups::CgroupMode mode =
        cgroups::DetectCgroupMode().value_or(cgroups::CgroupMode::kLegacy);
    options_.oom_kill_count = [mode](const std::string& cgroups_path) {
      return cgroups::ReadOomKillCount(cgroups_path, mode);
    };
  }
  LOG(INFO) << (boot_.clean_shutdown
                    ? "starting after a clean stop of berthd"
                    : "starting after berthd crashed or was killed (or a first start)")
            << (boot_.rebooted ? absl::StrCat("; ", boot_.reason) : std::string());
  return absl::OkStatus();
}

absl::Status Engine::FinishStart() {
  if (boot_.rebooted && (recovery_.sandboxes > 0 || recovery_.containers > 0)) {
    LOG(WARNING) << "recovered after the node rebooted: " << recovery_.pods_not_ready
                 << " pods NOTREADY with their networks released, " << recovery_.exited_while_down
                 << " containers EXITED (exit code unknown)";
  }
  if (absl::Status st = RecordBoot({options_.root, options_.state_dir}, boot_.boot_id); !st.ok()) {
    return st;
  }
  if (owns_cgroups_) {
    cgroups::CgroupJanitor::Options o;
    o.sweep.owned = [this](const std::string& id) {
      absl::MutexLock l(&index_mu_);
      return containers_.contains(id);
    };
    cgroup_janitor_ = std::make_unique<cgroups::CgroupJanitor>(std::move(o));
  }
  return absl::OkStatus();
}

void Engine::StopFaultHandling() {
  cgroup_janitor_.reset();
  exit_watcher_.reset();
  // After the last record: the next start knows this stop lost nothing.
  if (absl::Status st = RecordCleanShutdown({options_.root, options_.state_dir}); !st.ok()) {
    LOG(WARNING) << "recording a clean stop: " << st;
  }
}

bool Engine::ExitedWithTheBoot(ContainerObj* c) {
  if (!IsLive(c->rec.state().status())) return false;
  const std::string id = c->rec.config().id();
  // A state dir that is no tmpfs keeps its exit files over a reboot: still the truth.
  if (absl::StatusOr<int> code = oci_->ReadExitCode(id); code.ok()) {
    MarkExited(c, *code);
  } else {
    MarkExited(c, kUnknownExitCode, /*emit=*/true, kUnknownExitReason,
               "the node rebooted (or berth's state dir was emptied) while the container ran: "
               "its exit code is unknown");
  }
  // runc's state went with the boot.
  LogIfFailed(Transition(c, Operation::kCleanup), id);
  return true;
}

void Engine::ReleasePodsAfterReboot() {
  std::vector<std::shared_ptr<SandboxObj>> pods;
  {
    absl::MutexLock l(&index_mu_);
    for (const auto& [id, s] : sandboxes_) pods.push_back(s);
  }
  std::atomic<size_t> next = 0;
  std::atomic<int> released = 0;
  auto work = [&] {
    for (size_t i; (i = next++) < pods.size();) {
      SandboxObj* s = pods[i].get();
      absl::MutexLock l(&s->mu);
      const auto status = s->rec.status();
      if (status != berth::v1::SANDBOX_STATUS_READY &&
          status != berth::v1::SANDBOX_STATUS_NOT_READY) {
        continue;  // being made or removed: recovery finished those already
      }
      // Its infra container is gone with the boot: NOTREADY, and CNI DEL from the cached result
      // so the IPAM reservations (kept on disk) are free again.
      Sandbox rec = s->rec;
      if (absl::Status st = TearDownSandbox(s, &rec); !st.ok()) {
        LOG(ERROR) << "releasing pod " << rec.id() << " (" << rec.name()
                   << ") after the reboot: " << st << "; its removal retries";
        continue;
      }
      ++released;
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 0; t < std::min<size_t>(kParallelReleases, pods.size()); ++t)
    threads.emplace_back(work);
  for (auto& t : threads) t.join();
  recovery_.pods_not_ready += released;
}

void Engine::WatchMonitor(const Container& rec) {
  // No monitor to watch: a container awaiting its restore, or a runtime without conmon.
  if (exit_watcher_ == nullptr || rec.state().conmon_pid() <= 0) return;
  exit_watcher_->WatchMonitor(rec.config().id(), rec.state().conmon_pid());
}

void Engine::OnMonitorExit(const std::string& id) {
  std::shared_ptr<ContainerObj> c;
  {
    absl::MutexLock l(&index_mu_);
    auto it = containers_.find(id);
    if (it == containers_.end()) return;
    c = it->second;
  }
  Container exited;
  {
    absl::MutexLock l(&c->mu);
    if (!MonitorLost(c.get()) || !c->rec.config().infra()) return;
    exited = c->rec;
  }
  InfraExited(exited);
}

bool Engine::MonitorLost(ContainerObj* c) {
  if (!Allowed(c->rec.state().status(), Operation::kExit)) return false;  // already recorded
  const std::string id = c->rec.config().id();
  const bool infra = c->rec.config().infra();
  // conmon writes the exit file before it exits: then this is an ordinary exit whose inotify
  // event has not been handled yet.
  if (absl::StatusOr<int> code = oci_->ReadExitCode(id); code.ok()) {
    MarkExited(c, *code, /*emit=*/!infra);
    return true;
  }
  const std::shared_ptr<oci::Runtime> runtime = RuntimeOf(c->rec.config());
  absl::StatusOr<oci::RuncState> rs = runtime->State(id);
  std::string message;
  bool runtime_forgot = false;
  if (rs.ok() && rs->status != oci::RuncStatus::kStopped) {
    // Alive with nobody to collect its output, its exit code or to serve attach: it goes, as
    // containerd's shim cleanup deletes a container whose shim died.
    LOG(WARNING) << "the conmon of container " << id << " is gone while the container is "
                 << oci::RuncStatusName(rs->status) << ": killing it";
    absl::Status st = runtime->Delete(id, /*force=*/true);
    if (!st.ok()) LOG(ERROR) << "killing container " << id << " after its conmon died: " << st;
    runtime_forgot = st.ok();
    message =
        "its conmon died while it ran, so berth killed it (nothing would have collected its "
        "output or exit code)";
  } else if (rs.ok() || absl::IsNotFound(rs.status())) {
    LOG(WARNING) << "the conmon of container " << id << " is gone and so is the container";
    runtime_forgot = !rs.ok();
    message = "its conmon died (killed?) and the container ended too: its exit code is unknown";
  } else {
    // runc itself fails: the container cannot be reached through a dead monitor either way.
    LOG(ERROR) << "the conmon of container " << id
               << " is gone and runc cannot tell its state: " << rs.status();
    message = absl::StrCat("its conmon died and runc cannot tell its state (",
                           rs.status().message(), "): its exit code is unknown");
  }
  MarkExited(c, kUnknownExitCode, /*emit=*/!infra, kUnknownExitReason, message);
  if (runtime_forgot) LogIfFailed(Transition(c, Operation::kCleanup), id);
  return true;
}

bool Engine::OutliveFailedRuntimeDelete(const Container& before, const absl::Status& error) {
  // Only the undo of a creation runc never reported done (Configured): runc cleans up after its
  // own failed create, so there is most likely nothing to delete. A removal of a container runc
  // did create keeps failing instead, naming runc, so kubelet retries it.
  if (before.state().status() != berth::v1::CONTAINER_STATUS_CONFIGURED ||
      cgroup_janitor_ == nullptr) {
    return false;
  }
  const std::string id = before.config().id();
  LOG(WARNING) << "undoing the creation of container " << id << ": " << error
               << "; removing it without runc and retrying `runc delete` in the background";
  std::shared_ptr<oci::Runtime> runtime = RuntimeOf(before.config());
  cgroup_janitor_->RetryTask(absl::StrCat("runc delete ", id),
                             [runtime, id] { return runtime->Delete(id, /*force=*/true).ok(); });
  return true;
}

namespace {

// linux.cgroupsPath of the container's OCI spec; empty when it has none.
std::string SpecCgroupsPath(const berth::v1::ContainerConfig& cc) {
  json spec = json::parse(cc.oci_spec(), nullptr, false);
  if (!spec.is_object() || !spec.contains("linux") || !spec["linux"].is_object()) return "";
  const json& path = spec["linux"].value("cgroupsPath", json());
  return path.is_string() ? path.get<std::string>() : "";
}

}  // namespace

bool Engine::CgroupCountedOomKill(const berth::v1::ContainerConfig& cc) const {
  if (!options_.oom_kill_count) return false;
  const std::string path = SpecCgroupsPath(cc);
  if (path.empty()) return false;
  absl::StatusOr<uint64_t> kills = options_.oom_kill_count(path);
  // Gone already (systemd removes an emptied scope): conmon's marker is all there is.
  if (!kills.ok()) {
    VLOG(1) << "container " << cc.id() << ": " << kills.status();
    return false;
  }
  return *kills > 0;
}

void Engine::ReleaseRuntimeLeftovers(const berth::v1::ContainerConfig& cc) {
  if (exit_watcher_ != nullptr) exit_watcher_->ForgetMonitor(cc.id());
  if (!owns_cgroups_) return;
  const std::string cgroups_path = SpecCgroupsPath(cc);
  if (cgroups_path.empty()) return;
  // runc removes the cgroup itself, but gives up after a few tries while killed processes are
  // still exiting (a busy node, a bulk removal), and knows nothing of a container whose state
  // went with a reboot or an emptied state dir.
  bool found = false;
  absl::Status st =
      cgroups::RemoveContainerCgroup(cgroups_path, kCgroupKillWait, cgroups::kCgroupRoot, &found);
  if (st.ok()) {
    if (found) LOG(INFO) << "container " << cc.id() << ": removed the cgroup runc left behind";
    return;
  }
  LOG(WARNING) << "container " << cc.id() << ": " << st << "; retried in the background";
  if (cgroup_janitor_ != nullptr) cgroup_janitor_->Retry(cgroups_path);
}

}  // namespace berth::engine
