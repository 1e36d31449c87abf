// Thin handlers: validate, ask the collector, move the results into the response.
#include "server/stats_rpcs.h"

#include <string>
#include <utility>

#include "runtime/stats/cadvisor_metrics.h"

namespace berth::server {
namespace {

namespace cri = ::runtime::v1;

grpc::Status ToStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

template <typename Item, typename Response>
grpc::Status WriteBatches(std::vector<Item> items, grpc::ServerWriterInterface<Response>* writer,
                          google::protobuf::RepeatedPtrField<Item>* (Response::*field)()) {
  Response batch;
  for (Item& item : items) {
    *(batch.*field)()->Add() = std::move(item);
    if ((batch.*field)()->size() == kStatsStreamBatch) {
      if (!writer->Write(batch)) return grpc::Status(grpc::StatusCode::CANCELLED, "stats stream: client went away");
      batch.Clear();
    }
  }
  if ((batch.*field)()->size() > 0 && !writer->Write(batch)) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "stats stream: client went away");
  }
  return grpc::Status::OK;
}

}  // namespace

grpc::Status HandleContainerStats(StatsCollector& stats, const cri::ContainerStatsRequest* req,
                                  cri::ContainerStatsResponse* resp) {
  absl::StatusOr<cri::ContainerStats> s = stats.ContainerStats(req->container_id());
  if (!s.ok()) return ToStatus(s.status());
  *resp->mutable_stats() = std::move(*s);
  return grpc::Status::OK;
}

grpc::Status HandleListContainerStats(StatsCollector& stats, const cri::ListContainerStatsRequest* req,
                                      cri::ListContainerStatsResponse* resp) {
  std::vector<cri::ContainerStats> all = stats.ListContainerStats(req->filter());
  resp->mutable_stats()->Reserve(static_cast<int>(all.size()));
  for (cri::ContainerStats& s : all) *resp->add_stats() = std::move(s);
  return grpc::Status::OK;
}

grpc::Status HandlePodSandboxStats(StatsCollector& stats, const cri::PodSandboxStatsRequest* req,
                                   cri::PodSandboxStatsResponse* resp) {
  absl::StatusOr<cri::PodSandboxStats> s = stats.PodSandboxStats(req->pod_sandbox_id());
  if (!s.ok()) return ToStatus(s.status());
  *resp->mutable_stats() = std::move(*s);
  return grpc::Status::OK;
}

grpc::Status HandleListPodSandboxStats(StatsCollector& stats, const cri::ListPodSandboxStatsRequest* req,
                                       cri::ListPodSandboxStatsResponse* resp) {
  std::vector<cri::PodSandboxStats> all = stats.ListPodSandboxStats(req->filter());
  resp->mutable_stats()->Reserve(static_cast<int>(all.size()));
  for (cri::PodSandboxStats& s : all) *resp->add_stats() = std::move(s);
  return grpc::Status::OK;
}

grpc::Status HandleStreamContainerStats(StatsCollector& stats, const cri::StreamContainerStatsRequest* req,
                                        grpc::ServerWriterInterface<cri::StreamContainerStatsResponse>* writer) {
  return WriteBatches(stats.ListContainerStats(req->filter()), writer,
                      &cri::StreamContainerStatsResponse::mutable_container_stats);
}

grpc::Status HandleStreamPodSandboxStats(StatsCollector& stats, const cri::StreamPodSandboxStatsRequest* req,
                                         grpc::ServerWriterInterface<cri::StreamPodSandboxStatsResponse>* writer) {
  return WriteBatches(stats.ListPodSandboxStats(req->filter()), writer,
                      &cri::StreamPodSandboxStatsResponse::mutable_pod_sandbox_stats);
}

grpc::Status HandleListMetricDescriptors(const cri::ListMetricDescriptorsRequest*,
                                         cri::ListMetricDescriptorsResponse* resp) {
  for (cri::MetricDescriptor& d : runtime::stats::MetricDescriptors()) *resp->add_descriptors() = std::move(d);
  return grpc::Status::OK;
}

grpc::Status HandleListPodSandboxMetrics(StatsCollector& stats, const cri::ListPodSandboxMetricsRequest*,
                                         cri::ListPodSandboxMetricsResponse* resp) {
  for (const runtime::stats::PodSample& pod : stats.ListPodSamples()) {
    *resp->add_pod_metrics() = runtime::stats::ToPodSandboxMetrics(pod);
  }
  return grpc::Status::OK;
}

}  // namespace berth::server
