// RunPodSandbox, StopPodSandbox, RemovePodSandbox, PodSandboxStatus, ListPodSandbox, Stream*.
#include "absl/strings/match.h"
#include "nlohmann/json.hpp"
#include "runtime/labels.h"
#include "server/grpc_status.h"
#include "server/runtime_service.h"

namespace berth::server {
namespace {

bool SandboxMatches(const berth::v1::Sandbox& s, const cri::PodSandboxFilter& f) {
  if (!f.id().empty() && !absl::StartsWith(s.id(), f.id())) return false;
  if (f.has_state()) {
    bool ready = s.status() == berth::v1::SANDBOX_STATUS_READY;
    if ((f.state().state() == cri::SANDBOX_READY) != ready) return false;
  }
  return engine::MatchesLabels(s.config().labels(), f.label_selector());
}

}  // namespace

grpc::Status RuntimeServiceImpl::RunPodSandbox(grpc::ServerContext*,
                                               const cri::RunPodSandboxRequest* req,
                                               cri::RunPodSandboxResponse* resp) {
  if (!req->has_config()) return InvalidArgument("config is required");
  absl::StatusOr<std::string> id = engine_->RunPodSandbox(req->config(), req->runtime_handler());
  if (!id.ok()) return ToGrpc(id.status());
  resp->set_pod_sandbox_id(*id);
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::StopPodSandbox(grpc::ServerContext*,
                                                const cri::StopPodSandboxRequest* req,
                                                cri::StopPodSandboxResponse*) {
  if (req->pod_sandbox_id().empty()) return InvalidArgument("pod_sandbox_id is required");
  return ToGrpc(engine_->StopPodSandbox(req->pod_sandbox_id()));
}

grpc::Status RuntimeServiceImpl::RemovePodSandbox(grpc::ServerContext*,
                                                  const cri::RemovePodSandboxRequest* req,
                                                  cri::RemovePodSandboxResponse*) {
  if (req->pod_sandbox_id().empty()) return InvalidArgument("pod_sandbox_id is required");
  return ToGrpc(engine_->RemovePodSandbox(req->pod_sandbox_id()));
}

grpc::Status RuntimeServiceImpl::PodSandboxStatus(grpc::ServerContext*,
                                                  const cri::PodSandboxStatusRequest* req,
                                                  cri::PodSandboxStatusResponse* resp) {
  if (req->pod_sandbox_id().empty()) return InvalidArgument("pod_sandbox_id is required");
  // Read before the state: an event kubelet gets later for a change this answer missed then
  // carries a later timestamp, so kubelet's cache takes it (kubelet keeps the newest by time).
  const int64_t timestamp = absl::ToUnixNanos(absl::Now());
  absl::StatusOr<engine::SandboxView> s = engine_->GetSandbox(req->pod_sandbox_id());
  if (!s.ok()) return ToGrpc(s.status());
  *resp->mutable_status() = ToCriSandboxStatus(**s);
  // With evented PLEG kubelet takes the pod's containers from here alone when timestamp is set.
  for (const auto& c : engine_->ListContainersOf((*s)->id())) {
    *resp->add_containers_statuses() = ToCriContainerStatus(*c);
  }
  resp->set_timestamp(timestamp);
  if (req->verbose()) {
    int pid = 0;
    if (auto infra = engine_->GetContainer((*s)->infra_container_id()); infra.ok()) {
      pid = (*infra)->state().pid();
    }
    nlohmann::json info{{"pid", pid},
                        {"podResources", (*s)->resources().DebugString()},
                        {"netns", (*s)->netns_path()},
                        {"sandboxDir", (*s)->dir()},
                        {"runtimeHandler", (*s)->runtime_handler()},
                        {"ips", std::vector<std::string>((*s)->ips().begin(), (*s)->ips().end())},
                        {"cniResult", (*s)->cni_result()}};
    resp->mutable_info()->insert({"info", info.dump()});
  }
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::UpdatePodSandboxResources(
    grpc::ServerContext*, const cri::UpdatePodSandboxResourcesRequest* req,
    cri::UpdatePodSandboxResourcesResponse*) {
  if (req->pod_sandbox_id().empty()) return InvalidArgument("pod_sandbox_id is required");
  // kubelet has already resized the pod cgroup; berth records what it now is.
  return ToGrpc(
      engine_->UpdateSandboxResources(req->pod_sandbox_id(), req->resources(), req->overhead()));
}

grpc::Status RuntimeServiceImpl::ListPodSandbox(grpc::ServerContext*,
                                                const cri::ListPodSandboxRequest* req,
                                                cri::ListPodSandboxResponse* resp) {
  sandbox_list_cache_.Append(
      engine_->ListSandboxes(), cri::ListPodSandboxResponse::kItemsFieldNumber,
      [req](const berth::v1::Sandbox& s) {
        return s.status() != berth::v1::SANDBOX_STATUS_CREATING &&
               (!req->has_filter() || SandboxMatches(s, req->filter()));
      },
      [](const berth::v1::Sandbox& s) { return ToCriSandbox(s).SerializeAsString(); }, resp);
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::StreamPodSandboxes(
    grpc::ServerContext*, const cri::StreamPodSandboxesRequest* req,
    grpc::ServerWriter<cri::StreamPodSandboxesResponse>* writer) {
  return WriteInBatches(engine_->ListSandboxes(), writer,
                        [req](const engine::SandboxView& s,
                              cri::StreamPodSandboxesResponse* batch) -> const cri::PodSandbox* {
                          if (s->status() == berth::v1::SANDBOX_STATUS_CREATING ||
                              (req->has_filter() && !SandboxMatches(*s, req->filter()))) {
                            return nullptr;
                          }
                          return &(*batch->add_pod_sandboxes() = ToCriSandbox(*s));
                        });
}

}  // namespace berth::server
