// StopPodSandbox: every container, then the infra container and the pod's network and shm.
#include "runtime/engine_internal.h"

namespace berth::engine {

absl::Status Engine::StopPodSandbox(const std::string& id) {
  absl::Status err;
  std::string sid;
  std::shared_ptr<SandboxObj> s = FindSandboxToTearDown(id, &sid, &err);
  if (!s) return err;
  // Every app container first, in parallel (each waits for its own exit), then the infra one.
  std::vector<std::shared_ptr<ContainerObj>> ctrs = ContainersOf(sid);
  std::vector<absl::Status> results(ctrs.size());
  {
    std::vector<std::thread> threads;
    for (size_t i = 0; i < ctrs.size(); ++i) {
      threads.emplace_back([&, i] { results[i] = StopContainerObj(ctrs[i], 0); });
    }
    for (auto& t : threads) t.join();
  }
  for (const auto& r : results) {
    if (!r.ok()) return r;
  }
  absl::MutexLock l(&s->mu);
  Sandbox rec = s->rec;
  return TearDownSandbox(s.get(), &rec);
}

std::shared_ptr<Engine::SandboxObj> Engine::FindSandboxToTearDown(const std::string& id,
                                                                  std::string* sid,
                                                                  absl::Status* error) const {
  std::shared_ptr<SandboxObj> s = FindSandboxObj(id, error);
  // CRI: stop and remove are idempotent, a pod already gone is OK.
  if (!s) {
    if (absl::IsNotFound(*error)) *error = absl::OkStatus();
    return nullptr;
  }
  absl::MutexLock l(&s->mu);
  *sid = s->rec.id();
  return s;
}

std::shared_ptr<Engine::ContainerObj> Engine::InfraOf(const Sandbox& rec) const {
  absl::MutexLock l(&index_mu_);
  auto it = containers_.find(rec.infra_container_id());
  return it == containers_.end() ? nullptr : it->second;
}

// Stops the infra container and releases the pod's network and shm; the pod becomes NOTREADY.
absl::Status Engine::TearDownSandbox(SandboxObj* s, Sandbox* rec, bool was_creating) {
  was_creating = was_creating || rec->status() == berth::v1::SANDBOX_STATUS_CREATING;
  std::shared_ptr<ContainerObj> infra = InfraOf(*rec);
  bool indexed;
  {
    absl::MutexLock l(&index_mu_);
    indexed = sandbox_views_.contains(rec->id());
  }
  if (indexed && rec->status() == berth::v1::SANDBOX_STATUS_READY) {
    // NOTREADY before the infra container goes, so its STOPPED event shows the pod as kubelet
    // must now see it (and the exit is not taken for the infra container dying by itself).
    if (absl::Status st = Transition(s, PodOperation::kStop, *rec); !st.ok()) return st;
    *rec = s->rec;
  }
  // CNI DEL and stopping the infra container are independent (the netns is pinned, not held by
  // the pause process), so they run side by side.
  const bool cni_del = network_ != nullptr && !rec->netns_path().empty() &&
                       (!rec->ips().empty() || !rec->cni_result().empty() || was_creating);
  absl::Status net_status;
  std::thread cni;
  if (cni_del) {
    PodNetworkSpec net{
        rec->id(),
        rec->config().metadata().name(),
        rec->config().metadata().namespace_(),
        rec->config().metadata().uid(),
        rec->netns_path(),
        {rec->config().port_mappings().begin(), rec->config().port_mappings().end()}};
    // A pod still being made: its ADD may be running yet, left by a berthd that crashed (in a
    // live berthd the ADD was joined before an undo).
    net.interrupted = was_creating;
    cni = std::thread(
        [this, net = std::move(net), &net_status] { net_status = network_->TearDown(net); });
  }
  absl::Status infra_status;
  if (infra) infra_status = StopContainerObj(infra, 0);
  if (cni.joinable()) cni.join();
  if (!infra_status.ok()) return infra_status;
  if (cni_del) {
    if (!net_status.ok()) return net_status;
    rec->clear_ips();
    rec->clear_cni_result();
  }
  if (!rec->shm_path().empty()) {
    if (absl::Status st = host_->Unmount(rec->shm_path()); !st.ok()) return st;
  }
  // A pod in a user namespace pinned its namespaces in its directory: they go with its network.
  if (!rec->userns_path().empty()) {
    for (const std::string& pin : {rec->netns_path(), rec->userns_path()}) {
      if (pin.empty()) continue;
      if (absl::Status st = RemovePinnedNamespace(pin); !st.ok()) return st;
    }
  }
  if (!indexed) return absl::OkStatus();
  // A pod being made or removed keeps that state (the table's stop leaves those as they are).
  return Transition(s, PodOperation::kStop, *rec);
}

}  // namespace berth::engine
