// RemoveContainer and the teardown of everything a container holds.
#include "runtime/engine_internal.h"

namespace berth::engine {

absl::Status Engine::RemoveContainer(const std::string& id, bool force) {
  absl::Status err;
  std::shared_ptr<ContainerObj> c = FindContainerObj(id, &err);
  if (!c) return absl::IsNotFound(err) ? absl::OkStatus() : err;
  {
    absl::MutexLock l(&c->mu);
    if (c->rec.config().infra()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "container \"", id, "\" is the infra container of its pod: remove the pod instead"));
    }
  }
  return RemoveContainerObj(c, force);
}

absl::Status Engine::RemoveContainerObj(const std::shared_ptr<ContainerObj>& c, bool force) {
  if (force) {
    // CRI: a running container is removed forcibly (killed first).
    if (absl::Status st = StopContainerObj(c, 0); !st.ok()) return st;
  }
  absl::MutexLock l(&c->mu);
  if (c->rec.state().status() != berth::v1::CONTAINER_STATUS_REMOVING) {
    // Saved (fsynced) before anything goes, so a crash midway is finished by recovery.
    if (absl::Status st = Transition(c.get(), Operation::kRemove); !st.ok()) return st;
  }
  return CleanupContainer(c);
}

absl::Status Engine::CleanupContainer(const std::shared_ptr<ContainerObj>& c) {
  const Container rec = c->rec;
  const auto& cc = rec.config();
  if (rec.state().status() != berth::v1::CONTAINER_STATUS_REMOVING) {
    // An undo or a finished removal's retry: marked only in memory and the page cache, as a
    // crash before the record is deleted leaves it for recovery to finish either way.
    if (absl::Status st =
            Transition(c.get(), Operation::kRemove, c->rec, {.durable = false, .emit = false});
        !st.ok()) {
      return st;
    }
  }
  if (absl::Status st = RuntimeOf(cc)->Delete(cc.id(), /*force=*/true);
      !st.ok() && !OutliveFailedRuntimeDelete(rec, st)) {
    return st;
  }
  ReleaseRuntimeLeftovers(cc);
  if (cc.overlay_rootfs() && images_ != nullptr) {
    if (absl::Status st = images_->UnmountRootfs(cc.id()); !st.ok()) return st;
    if (absl::Status st = images_->RemoveContainerStorage(cc.id()); !st.ok()) return st;
  }
  if (absl::Status st = AfterStep(RemoveAll(cc.bundle_dir()), "bundle", "remove"); !st.ok()) {
    return st;
  }
  unlink(oci_->ExitFile(cc.id()).c_str());
  if (absl::Status st = db_->Delete(storage::Kind::kContainers, cc.id()); !st.ok()) return st;
  {
    absl::MutexLock l(&index_mu_);
    ForgetLocked(cc);
  }
  // Holders of the object see it Removing (Transition set that); waiters wake.
  c->changed.SignalAll();
  if (rec.state().status() != berth::v1::CONTAINER_STATUS_CONFIGURED)
    Emit(c->rec, EventType::kDeleted);
  if (!cc.infra()) {
    absl::MutexLock nl(&names_mu_);
    auto it = container_names_.find(cc.name());
    if (it != container_names_.end() && it->second->id == cc.id()) container_names_.erase(it);
  }
  return absl::OkStatus();
}

}  // namespace berth::engine
