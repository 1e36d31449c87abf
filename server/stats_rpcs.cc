// CRI statistics and metrics (ContainerStats, ListContainerStats, PodSandboxStats,
// ListPodSandboxStats, their Stream* variants, ListMetricDescriptors, ListPodSandboxMetrics):
// thin handlers that ask runtime/stats' collector and move the results into the response.
#include <utility>
#include <vector>

#include "runtime/stats/cadvisor_metrics.h"
#include "server/grpc_status.h"
#include "server/runtime_service.h"

namespace berth::server {
namespace {

// Answers carry each container's attributes as the collector's encoding made once per container.
constexpr auto kEncoded = engine::stats::StatsCollector::Attributes::kEncoded;

// Moves each entry of a collector's list into the batch.
template <typename Batch, typename Item>
auto MoveInto(google::protobuf::RepeatedPtrField<Item>* (Batch::*field)()) {
  return [field](Item& item, Batch* batch) -> const Item* {
    return &(*((batch->*field)()->Add()) = std::move(item));
  };
}

}  // namespace

grpc::Status RuntimeServiceImpl::ContainerStats(grpc::ServerContext*,
                                                const cri::ContainerStatsRequest* req,
                                                cri::ContainerStatsResponse* resp) {
  absl::StatusOr<cri::ContainerStats> s = stats_->ContainerStats(req->container_id());
  if (!s.ok()) return ToGrpc(s.status());
  *resp->mutable_stats() = std::move(*s);
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::ListContainerStats(grpc::ServerContext*,
                                                    const cri::ListContainerStatsRequest* req,
                                                    cri::ListContainerStatsResponse* resp) {
  std::vector<cri::ContainerStats> all = stats_->ListContainerStats(req->filter(), kEncoded);
  resp->mutable_stats()->Reserve(static_cast<int>(all.size()));
  for (cri::ContainerStats& s : all) *resp->add_stats() = std::move(s);
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::StreamContainerStats(
    grpc::ServerContext*, const cri::StreamContainerStatsRequest* req,
    grpc::ServerWriter<cri::StreamContainerStatsResponse>* writer) {
  return WriteInBatches(stats_->ListContainerStats(req->filter(), kEncoded), writer,
                        MoveInto(&cri::StreamContainerStatsResponse::mutable_container_stats));
}

grpc::Status RuntimeServiceImpl::PodSandboxStats(grpc::ServerContext*,
                                                 const cri::PodSandboxStatsRequest* req,
                                                 cri::PodSandboxStatsResponse* resp) {
  absl::StatusOr<cri::PodSandboxStats> s = stats_->PodSandboxStats(req->pod_sandbox_id());
  if (!s.ok()) return ToGrpc(s.status());
  *resp->mutable_stats() = std::move(*s);
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::ListPodSandboxStats(grpc::ServerContext*,
                                                     const cri::ListPodSandboxStatsRequest* req,
                                                     cri::ListPodSandboxStatsResponse* resp) {
  std::vector<cri::PodSandboxStats> all = stats_->ListPodSandboxStats(req->filter(), kEncoded);
  resp->mutable_stats()->Reserve(static_cast<int>(all.size()));
  for (cri::PodSandboxStats& s : all) *resp->add_stats() = std::move(s);
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::StreamPodSandboxStats(
    grpc::ServerContext*, const cri::StreamPodSandboxStatsRequest* req,
    grpc::ServerWriter<cri::StreamPodSandboxStatsResponse>* writer) {
  return WriteInBatches(stats_->ListPodSandboxStats(req->filter(), kEncoded), writer,
                        MoveInto(&cri::StreamPodSandboxStatsResponse::mutable_pod_sandbox_stats));
}

grpc::Status RuntimeServiceImpl::ListMetricDescriptors(grpc::ServerContext*,
                                                       const cri::ListMetricDescriptorsRequest*,
                                                       cri::ListMetricDescriptorsResponse* resp) {
  for (cri::MetricDescriptor& d : engine::stats::MetricDescriptors())
    *resp->add_descriptors() = std::move(d);
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::ListPodSandboxMetrics(grpc::ServerContext*,
                                                       const cri::ListPodSandboxMetricsRequest*,
                                                       cri::ListPodSandboxMetricsResponse* resp) {
  for (const engine::stats::PodSample& pod : stats_->ListPodSamples()) {
    *resp->add_pod_metrics() = engine::stats::ToPodSandboxMetrics(pod);
  }
  return grpc::Status::OK;
}

}  // namespace berth::server
