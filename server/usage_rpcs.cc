// ContainerStats, ListContainerStats, PodSandboxStats, ListPodSandboxStats and their streams.
#include "absl/strings/match.h"
#include "server/grpc_status.h"
#include "server/runtime_service.h"

namespace berth::server {
namespace {

bool StatsMatch(const berth::v1::Container& c, const cri::ContainerStatsFilter& f) {
  if (!f.id().empty() && !absl::StartsWith(c.config().id(), f.id())) return false;
  if (!f.pod_sandbox_id().empty() && !absl::StartsWith(c.config().sandbox_id(), f.pod_sandbox_id())) {
    return false;
  }
  return MatchesLabels(c.config().cri().labels(), f.label_selector());
}

bool PodStatsMatch(const berth::v1::Sandbox& s, const cri::PodSandboxStatsFilter& f) {
  if (!f.id().empty() && !absl::StartsWith(s.id(), f.id())) return false;
  return MatchesLabels(s.config().labels(), f.label_selector());
}

constexpr int kBatch = 200;

}  // namespace

grpc::Status RuntimeServiceImpl::ContainerStats(grpc::ServerContext*, const cri::ContainerStatsRequest* req,
                                                cri::ContainerStatsResponse* resp) {
  if (req->container_id().empty()) return InvalidArgument("container_id is required");
  absl::StatusOr<runtime::ContainerView> c = engine_->GetContainer(req->container_id());
  if (!c.ok()) return ToGrpc(c.status());
  *resp->mutable_stats() = usage_->ContainerStats(**c);
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::ListContainerStats(grpc::ServerContext*,
                                                    const cri::ListContainerStatsRequest* req,
                                                    cri::ListContainerStatsResponse* resp) {
  for (const auto& c : engine_->ListContainers()) {
    if (c->state().status() == berth::v1::CONTAINER_STATUS_CONFIGURED) continue;
    if (req->has_filter() && !StatsMatch(*c, req->filter())) continue;
    *resp->add_stats() = usage_->ContainerStats(*c);
  }
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::StreamContainerStats(
    grpc::ServerContext*, const cri::StreamContainerStatsRequest* req,
    grpc::ServerWriter<cri::StreamContainerStatsResponse>* writer) {
  cri::StreamContainerStatsResponse batch;
  for (const auto& c : engine_->ListContainers()) {
    if (c->state().status() == berth::v1::CONTAINER_STATUS_CONFIGURED) continue;
    if (req->has_filter() && !StatsMatch(*c, req->filter())) continue;
    *batch.add_container_stats() = usage_->ContainerStats(*c);
    if (batch.container_stats_size() == kBatch) {
      if (!writer->Write(batch)) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
      batch.Clear();
    }
  }
  if (batch.container_stats_size() > 0) writer->Write(batch);
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::PodSandboxStats(grpc::ServerContext*,
                                                 const cri::PodSandboxStatsRequest* req,
                                                 cri::PodSandboxStatsResponse* resp) {
  if (req->pod_sandbox_id().empty()) return InvalidArgument("pod_sandbox_id is required");
  absl::StatusOr<runtime::SandboxView> s = engine_->GetSandbox(req->pod_sandbox_id());
  if (!s.ok()) return ToGrpc(s.status());
  *resp->mutable_stats() = usage_->PodStats(**s);
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::ListPodSandboxStats(grpc::ServerContext*,
                                                     const cri::ListPodSandboxStatsRequest* req,
                                                     cri::ListPodSandboxStatsResponse* resp) {
  for (const auto& s : engine_->ListSandboxes()) {
    if (s->status() != berth::v1::SANDBOX_STATUS_READY) continue;
    if (req->has_filter() && !PodStatsMatch(*s, req->filter())) continue;
    *resp->add_stats() = usage_->PodStats(*s);
  }
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::StreamPodSandboxStats(
    grpc::ServerContext*, const cri::StreamPodSandboxStatsRequest* req,
    grpc::ServerWriter<cri::StreamPodSandboxStatsResponse>* writer) {
  cri::StreamPodSandboxStatsResponse batch;
  for (const auto& s : engine_->ListSandboxes()) {
    if (s->status() != berth::v1::SANDBOX_STATUS_READY) continue;
    if (req->has_filter() && !PodStatsMatch(*s, req->filter())) continue;
    *batch.add_pod_sandbox_stats() = usage_->PodStats(*s);
    if (batch.pod_sandbox_stats_size() == kBatch) {
      if (!writer->Write(batch)) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
      batch.Clear();
    }
  }
  if (batch.pod_sandbox_stats_size() > 0) writer->Write(batch);
  return grpc::Status::OK;
}

}  // namespace berth::server
