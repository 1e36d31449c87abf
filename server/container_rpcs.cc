// CreateContainer, Start/Stop/Remove, ContainerStatus, ListContainers, updates and ExecSync.
#include "absl/strings/match.h"
#include "nlohmann/json.hpp"
#include "runtime/labels.h"
#include "server/grpc_status.h"
#include "server/runtime_service.h"

namespace berth::server {
namespace {

bool ContainerMatches(const berth::v1::Container& c, const cri::ContainerFilter& f) {
  if (!f.id().empty() && !absl::StartsWith(c.config().id(), f.id())) return false;
  if (!f.pod_sandbox_id().empty() &&
      !absl::StartsWith(c.config().sandbox_id(), f.pod_sandbox_id())) {
    return false;
  }
  if (f.has_state() && ToCriState(c.state().status()) != f.state().state()) return false;
  return engine::MatchesLabels(c.config().cri().labels(), f.label_selector());
}

bool Listable(const berth::v1::Container& c) {
  // A container appears once runc knows it, and until it is gone.
  return c.state().status() != berth::v1::CONTAINER_STATUS_CONFIGURED;
}

}  // namespace

grpc::Status RuntimeServiceImpl::CreateContainer(grpc::ServerContext*,
                                                 const cri::CreateContainerRequest* req,
                                                 cri::CreateContainerResponse* resp) {
  if (req->pod_sandbox_id().empty()) return InvalidArgument("pod_sandbox_id is required");
  if (!req->has_config()) return InvalidArgument("config is required");
  absl::StatusOr<std::string> id = engine_->CreateContainer(req->pod_sandbox_id(), req->config());
  if (!id.ok()) return ToGrpc(id.status());
  resp->set_container_id(*id);
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::StartContainer(grpc::ServerContext*,
                                                const cri::StartContainerRequest* req,
                                                cri::StartContainerResponse*) {
  if (req->container_id().empty()) return InvalidArgument("container_id is required");
  return ToGrpc(engine_->StartContainer(req->container_id()));
}

grpc::Status RuntimeServiceImpl::StopContainer(grpc::ServerContext*,
                                               const cri::StopContainerRequest* req,
                                               cri::StopContainerResponse*) {
  if (req->container_id().empty()) return InvalidArgument("container_id is required");
  return ToGrpc(engine_->StopContainer(req->container_id(), req->timeout()));
}

grpc::Status RuntimeServiceImpl::RemoveContainer(grpc::ServerContext*,
                                                 const cri::RemoveContainerRequest* req,
                                                 cri::RemoveContainerResponse*) {
  if (req->container_id().empty()) return InvalidArgument("container_id is required");
  // CRI: a running container is forcibly removed; removing an absent one succeeds.
  return ToGrpc(engine_->RemoveContainer(req->container_id(), /*force=*/true));
}

grpc::Status RuntimeServiceImpl::ListContainers(grpc::ServerContext*,
                                                const cri::ListContainersRequest* req,
                                                cri::ListContainersResponse* resp) {
  container_list_cache_.Append(
      engine_->ListContainers(), cri::ListContainersResponse::kContainersFieldNumber,
      [req](const berth::v1::Container& c) {
        return Listable(c) && (!req->has_filter() || ContainerMatches(c, req->filter()));
      },
      [](const berth::v1::Container& c) { return ToCriContainer(c).SerializeAsString(); }, resp);
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::StreamContainers(
    grpc::ServerContext*, const cri::StreamContainersRequest* req,
    grpc::ServerWriter<cri::StreamContainersResponse>* writer) {
  return WriteInBatches(
      engine_->ListContainers(), writer,
      [req](const engine::ContainerView& c,
            cri::StreamContainersResponse* batch) -> const cri::Container* {
        if (!Listable(*c) || (req->has_filter() && !ContainerMatches(*c, req->filter()))) {
          return nullptr;
        }
        return &(*batch->add_containers() = ToCriContainer(*c));
      });
}

grpc::Status RuntimeServiceImpl::ContainerStatus(grpc::ServerContext*,
                                                 const cri::ContainerStatusRequest* req,
                                                 cri::ContainerStatusResponse* resp) {
  if (req->container_id().empty()) return InvalidArgument("container_id is required");
  absl::StatusOr<engine::ContainerView> c = engine_->GetContainer(req->container_id());
  if (!c.ok()) return ToGrpc(c.status());
  *resp->mutable_status() = ToCriContainerStatus(**c);
  if (req->verbose()) {
    nlohmann::json spec = nlohmann::json::parse((*c)->config().oci_spec(), nullptr, false);
    nlohmann::json info{{"pid", (*c)->state().pid()},
                        {"conmonPid", (*c)->state().conmon_pid()},
                        {"sandboxID", (*c)->config().sandbox_id()},
                        {"bundle", (*c)->config().bundle_dir()},
                        {"rootfs", (*c)->config().rootfs()},
                        {"runtimeSpec", spec.is_discarded() ? nlohmann::json() : spec}};
    resp->mutable_info()->insert({"info", info.dump()});
  }
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::UpdateContainerResources(
    grpc::ServerContext*, const cri::UpdateContainerResourcesRequest* req,
    cri::UpdateContainerResourcesResponse*) {
  if (req->container_id().empty()) return InvalidArgument("container_id is required");
  return ToGrpc(engine_->UpdateContainerResources(req->container_id(), req->linux()));
}

grpc::Status RuntimeServiceImpl::ReopenContainerLog(grpc::ServerContext*,
                                                    const cri::ReopenContainerLogRequest* req,
                                                    cri::ReopenContainerLogResponse*) {
  if (req->container_id().empty()) return InvalidArgument("container_id is required");
  return ToGrpc(engine_->ReopenContainerLog(req->container_id()));
}

grpc::Status RuntimeServiceImpl::ExecSync(grpc::ServerContext*, const cri::ExecSyncRequest* req,
                                          cri::ExecSyncResponse* resp) {
  if (req->container_id().empty()) return InvalidArgument("container_id is required");
  // An empty cmd is the engine's INVALID_ARGUMENT ("cmd is required"), as for streamed exec.
  absl::StatusOr<engine::ExecSyncResult> r = engine_->ExecSync(
      req->container_id(), {req->cmd().begin(), req->cmd().end()}, req->timeout());
  if (!r.ok()) return ToGrpc(r.status());
  if (r->timed_out) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        absl::StrCat("command timed out after ", req->timeout(), "s"));
  }
  resp->set_stdout(std::move(r->stdout_data));
  resp->set_stderr(std::move(r->stderr_data));
  resp->set_exit_code(r->exit_code);
  return grpc::Status::OK;
}

}  // namespace berth::server
