// Restart recovery (libpod's refresh/syncContainer): records reconciled with runc and exit files.
#include "runtime/engine_internal.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"

namespace berth::engine {
namespace {

// Threads reconciling recovered containers: one per core, at least two (the work waits on file
// reads and, for runtimes other than runc 1.1, on a `runc state` process), at most eight.
constexpr unsigned kMaxRecoveryThreads = 8;

}  // namespace

absl::Status Engine::Recover() {
  const absl::Time start = absl::Now();
  // Idmapped volume copies stay attached only while a creation runs: any found are a crash's.
  if (absl::Status st = RemoveStagedMounts(absl::StrCat(options_.state_dir, "/idmap")); !st.ok()) {
    LOG(WARNING) << "removing idmapped mounts left by an interrupted creation: " << st;
  }
  std::vector<Sandbox> sandboxes;
  std::vector<Container> containers;
  absl::Status st =
      db_->ForEach(storage::Kind::kSandboxes, [&](absl::string_view k, absl::string_view v) {
        Sandbox s;
        // One unreadable record must not keep every other pod of the node from being served: it is
        // left in the database untouched (nothing is lost), reported, and skipped.
        if (!s.ParseFromArray(v.data(), v.size()) || s.id() != k) {
          LOG(ERROR) << "quarantined sandbox record \"" << absl::CHexEscape(k)
                     << "\": it does not parse as a pod; left in the state DB, not served";
          recovery_.quarantined.push_back(absl::StrCat("sandbox/", absl::CHexEscape(k)));
          return absl::OkStatus();
        }
        sandboxes.push_back(std::move(s));
        return absl::OkStatus();
      });
  if (!st.ok()) return st;
  st = db_->ForEach(storage::Kind::kContainers, [&](absl::string_view k, absl::string_view v) {
    Container c;
    if (!c.ParseFromArray(v.data(), v.size()) || c.config().id() != k) {
      LOG(ERROR) << "quarantined container record \"" << absl::CHexEscape(k)
                 << "\": it does not parse as a container; left in the state DB, not served";
      recovery_.quarantined.push_back(absl::StrCat("container/", absl::CHexEscape(k)));
      return absl::OkStatus();
    }
    containers.push_back(std::move(c));
    return absl::OkStatus();
  });
  if (!st.ok()) return st;

  for (auto& rec : sandboxes) {
    auto obj = std::make_shared<SandboxObj>();
    {
      absl::MutexLock l(&obj->mu);
      obj->rec = rec;
    }
    absl::MutexLock l(&index_mu_);
    sandboxes_[rec.id()] = obj;
    sandbox_views_[rec.id()] = std::make_shared<const Sandbox>(rec);
  }
  std::vector<std::shared_ptr<ContainerObj>> objs;
  objs.reserve(containers.size());
  for (auto& rec : containers) {
    auto obj = std::make_shared<ContainerObj>();
    {
      absl::MutexLock l(&obj->mu);
      obj->rec = rec;
    }
    absl::MutexLock l(&index_mu_);
    containers_[rec.config().id()] = obj;
    PublishLocked(std::make_shared<const Container>(rec));
    objs.push_back(std::move(obj));
  }
  // Each container's reconciliation reads its exit file and runc's state (a few files, or a
  // `runc state` process) and touches only that container: they run side by side, which at a
  // thousand containers is most of the restart.
  std::atomic<size_t> next = 0;
  std::atomic<int> exited = 0;
  auto reconcile = [&] {
    for (size_t i; (i = next++) < objs.size();) {
      const std::shared_ptr<ContainerObj>& obj = objs[i];
      absl::MutexLock l(&obj->mu);
      if (Reconcile(obj.get())) ++exited;
      if (IsLive(obj->rec.state().status())) WatchMonitor(obj->rec);
    }
  };
  {
    std::vector<std::thread> threads;
    const size_t n = std::min<size_t>(
        std::max(2u, std::min(std::thread::hardware_concurrency(), kMaxRecoveryThreads)),
        objs.size());
    for (size_t t = 1; t < n; ++t) threads.emplace_back(reconcile);
    reconcile();
    for (auto& t : threads) t.join();
  }
  recovery_.containers += static_cast<int>(objs.size());
  recovery_.exited_while_down += exited;
  // Finish what was interrupted: removals, and creations that never completed.
  for (auto& rec : containers) {
    std::shared_ptr<ContainerObj> obj;
    {
      absl::MutexLock l(&index_mu_);
      obj = containers_[rec.config().id()];
    }
    absl::MutexLock l(&obj->mu);
    auto status = obj->rec.state().status();
    // A Configured record is a creation that never finished; Removing, a removal.
    if (status == berth::v1::CONTAINER_STATUS_REMOVING ||
        status == berth::v1::CONTAINER_STATUS_CONFIGURED) {
      LOG(INFO) << "finishing interrupted work on container " << rec.config().id();
      if (absl::Status s = CleanupContainer(obj); !s.ok()) {
        LOG(ERROR) << "cleaning up container " << rec.config().id() << ": " << s;
      } else {
        ++recovery_.cleaned_up;
      }
    }
  }
  for (auto& rec : sandboxes) {
    ++recovery_.sandboxes;
    if (rec.status() == berth::v1::SANDBOX_STATUS_CREATING ||
        rec.status() == berth::v1::SANDBOX_STATUS_REMOVING) {
      LOG(INFO) << "finishing interrupted work on pod " << rec.id();
      if (absl::Status s = RemovePodSandbox(rec.id()); !s.ok()) {
        LOG(ERROR) << "cleaning up pod " << rec.id() << ": " << s;
      } else {
        ++recovery_.cleaned_up;
      }
    }
  }
  if (boot_.rebooted) ReleasePodsAfterReboot();
  // A pod whose infra container is gone (it died while berthd was down, or the node rebooted)
  // cannot run containers: kubelet must see it NOTREADY to recreate it.
  for (auto& rec : sandboxes) {
    std::shared_ptr<SandboxObj> obj;
    bool infra_running = false;
    {
      absl::MutexLock l(&index_mu_);
      auto it = sandboxes_.find(rec.id());
      if (it == sandboxes_.end()) continue;
      obj = it->second;
      auto infra = container_views_.find(rec.infra_container_id());
      infra_running = infra != container_views_.end() &&
                      infra->second->state().status() == berth::v1::CONTAINER_STATUS_RUNNING;
    }
    absl::MutexLock l(&obj->mu);
    if (obj->rec.status() != berth::v1::SANDBOX_STATUS_READY || infra_running) continue;
    LOG(WARNING) << "pod " << rec.id() << " (" << rec.name()
                 << ") lost its infra container while berthd was down: it is NOTREADY";
    if (absl::Status st = Transition(obj.get(), PodOperation::kStop, obj->rec); !st.ok()) {
      LOG(ERROR) << "saving pod " << rec.id() << ": " << st;
    }
    ++recovery_.pods_not_ready;
  }
  // Rebuild the name table from what survived.
  {
    absl::MutexLock nl(&names_mu_);
    absl::MutexLock l(&index_mu_);
    for (const auto& [id, view] : sandbox_views_) {
      auto r = std::make_shared<Reservation>();
      r->id = id;
      r->request = Deterministic(view->config());
      r->done.Notify();
      sandbox_names_[view->name()] = r;
    }
    for (const auto& [id, view] : container_views_) {
      if (view->config().infra()) continue;
      auto r = std::make_shared<Reservation>();
      r->id = id;
      r->request = Deterministic(view->config().cri());
      r->done.Notify();
      container_names_[view->config().name()] = r;
    }
  }
  recovery_.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  LOG(INFO) << "recovered " << recovery_.sandboxes << " pods and " << recovery_.containers
            << " containers (" << recovery_.exited_while_down << " exited while berthd was down, "
            << recovery_.cleaned_up << " cleaned up, " << recovery_.quarantined.size()
            << " unreadable records quarantined) in " << recovery_.seconds << "s";
  return absl::OkStatus();
}

bool Engine::Reconcile(ContainerObj* c) {
  const std::string id = c->rec.config().id();
  const auto status = c->rec.state().status();
  if (boot_.rebooted) return ExitedWithTheBoot(c);  // runc's state and the processes are gone
  // A container awaiting its restore is unknown to runc by design: nothing to reconcile.
  if (!IsLive(status) || AwaitingRestore(c->rec)) return false;
  // libpod's syncContainer: the exit file is the truth for a container that ended while berthd
  // was away; runc's view covers the rest.
  if (absl::StatusOr<int> code = oci_->ReadExitCode(id); code.ok()) {
    MarkExited(c, *code);
    return true;
  }
  absl::StatusOr<oci::RuncState> rs = RuntimeOf(c->rec.config())->State(id);
  if (!rs.ok() && !absl::IsNotFound(rs.status())) {
    // runc itself fails (missing, broken): nothing is learnt, the record stays as it is.
    LOG(ERROR) << "container " << id << ": runc cannot tell its state: " << rs.status();
    return false;
  }
  if (!rs.ok() || rs->status == oci::RuncStatus::kStopped) {
    LOG(WARNING) << "container " << id << " is gone without an exit file; marking it exited";
    // containerd's unknown exit: code 255, reason "Unknown".
    MarkExited(c, 255, /*emit=*/true, "Unknown",
               "the container ended while berthd was down and its exit code was lost");
    if (!rs.ok() && absl::IsNotFound(rs.status())) {
      // runc has forgotten it (its state went with a reboot or a `runc delete`).
      LogIfFailed(Transition(c, Operation::kCleanup), id);
    }
    return true;
  }
  // It runs: follow what runc says (someone may have paused or resumed it meanwhile).
  if (status == berth::v1::CONTAINER_STATUS_CREATED && rs->status != oci::RuncStatus::kCreated) {
    LogIfFailed(Transition(c, Operation::kStart), id);
  }
  if (rs->status == oci::RuncStatus::kPaused &&
      c->rec.state().status() == berth::v1::CONTAINER_STATUS_RUNNING) {
    LogIfFailed(Transition(c, Operation::kPause), id);
  } else if (rs->status == oci::RuncStatus::kRunning &&
             c->rec.state().status() == berth::v1::CONTAINER_STATUS_PAUSED) {
    LogIfFailed(Transition(c, Operation::kResume), id);
  }
  return false;
}

}  // namespace berth::engine
