// RemovePodSandbox: the pod's containers, infra container, netns, directory and record.
#include "runtime/engine_internal.h"

namespace berth::engine {

absl::Status Engine::RemovePodSandbox(const std::string& id) {
  absl::Status err;
  std::string sid;
  std::shared_ptr<SandboxObj> s = FindSandboxToTearDown(id, &sid, &err);
  if (!s) return err;
  for (const auto& c : ContainersOf(sid)) {
    if (absl::Status st = RemoveContainerObj(c, /*force=*/true); !st.ok()) return st;
  }
  absl::MutexLock l(&s->mu);
  // A pod a crash left half made: its ADD may have reserved an IP no record names.
  const bool was_creating = s->rec.status() == berth::v1::SANDBOX_STATUS_CREATING;
  if (s->rec.status() != berth::v1::SANDBOX_STATUS_REMOVING) {
    if (absl::Status st = Transition(s.get(), PodOperation::kRemove, s->rec); !st.ok()) return st;
  }
  Sandbox rec = s->rec;
  if (absl::Status st = TearDownSandbox(s.get(), &rec, was_creating); !st.ok()) return st;
  if (std::shared_ptr<ContainerObj> infra = InfraOf(rec)) {
    absl::MutexLock cl(&infra->mu);
    if (absl::Status st = CleanupContainer(infra); !st.ok()) return st;
  }
  if (network_ != nullptr && !rec.netns_path().empty()) {
    if (absl::Status st = network_->RemoveNetns(rec.netns_path()); !st.ok()) return st;
  }
  if (absl::Status st = AfterStep(RemoveAll(rec.dir()), "pod-dir", "remove"); !st.ok()) return st;
  storage::Batch b;
  b.Delete(storage::Kind::kSandboxes, sid);
  if (absl::Status st = db_->Commit(std::move(b)); !st.ok()) return st;
  {
    absl::MutexLock il(&index_mu_);
    sandboxes_.erase(sid);
    sandbox_views_.erase(sid);
  }
  absl::MutexLock nl(&names_mu_);
  auto it = sandbox_names_.find(rec.name());
  if (it != sandbox_names_.end() && it->second->id == sid) sandbox_names_.erase(it);
  return absl::OkStatus();
}

}  // namespace berth::engine
