// Pod lookups, what a pod gives its containers' specs, and UpdatePodSandboxResources.
#include "runtime/engine_internal.h"

namespace berth::engine {

absl::Status Engine::UpdateSandboxResources(const std::string& id,
                                            const cri::LinuxContainerResources& resources,
                                            const cri::LinuxContainerResources& overhead) {
  absl::Status err;
  std::shared_ptr<SandboxObj> s = FindSandboxObj(id, &err);
  if (!s) return err;
  absl::MutexLock l(&s->mu);
  Sandbox rec = s->rec;
  if (absl::Status st = EnsureState(rec, PodOperation::kUpdate); !st.ok()) return st;
  *rec.mutable_resources() = resources;
  *rec.mutable_overhead() = overhead;
  return Update(s.get(), std::move(rec));
}

PodContext PodContextOf(const Sandbox& rec) {
  const auto& nso = rec.config().linux().security_context().namespace_options();
  PodContext pod;
  pod.pod = &rec.config();
  pod.sandbox_id = rec.id();
  pod.sandbox_dir = rec.dir();
  pod.shm_path = rec.shm_path();
  pod.netns_path = rec.netns_path();
  pod.host_network = nso.network() == cri::NODE;
  pod.host_pid = nso.pid() == cri::NODE;
  pod.host_ipc = nso.ipc() == cri::NODE;
  pod.userns_path = rec.userns_path();
  pod.uid_mappings.assign(rec.uid_mappings().begin(), rec.uid_mappings().end());
  pod.gid_mappings.assign(rec.gid_mappings().begin(), rec.gid_mappings().end());
  return pod;
}

absl::StatusOr<SandboxView> Engine::GetSandbox(const std::string& id_or_prefix) const {
  absl::Status err;
  absl::MutexLock l(&index_mu_);
  SandboxView v =
      FindByIdOrPrefix(sandbox_views_, id_or_prefix, "pod sandbox", "pod_sandbox_id", &err);
  if (!v) return err;
  return v;
}

std::vector<SandboxView> Engine::ListSandboxes() const {
  absl::MutexLock l(&index_mu_);
  std::vector<SandboxView> out;
  out.reserve(sandbox_views_.size());
  for (const auto& [id, v] : sandbox_views_) out.push_back(v);
  return out;
}

}  // namespace berth::engine
