// CRI statistics and metrics calls as free functions over a StatsCollector, so the runtime
// service's overrides are one line each: ContainerStats, ListContainerStats, PodSandboxStats,
// ListPodSandboxStats, their Stream* variants, ListMetricDescriptors, ListPodSandboxMetrics.
#ifndef BERTH_SERVER_STATS_RPCS_H_
#define BERTH_SERVER_STATS_RPCS_H_

#include "grpcpp/support/status.h"
#include "grpcpp/support/sync_stream.h"
#include "proto/runtime/v1/api.pb.h"
#include "runtime/stats/collector.h"

namespace berth::server {

using runtime::stats::StatsCollector;

// Empty id: INVALID_ARGUMENT naming the field; unknown id: NOT_FOUND naming the id.
grpc::Status HandleContainerStats(StatsCollector& stats, const ::runtime::v1::ContainerStatsRequest* req,
                                  ::runtime::v1::ContainerStatsResponse* resp);
grpc::Status HandleListContainerStats(StatsCollector& stats,
                                      const ::runtime::v1::ListContainerStatsRequest* req,
                                      ::runtime::v1::ListContainerStatsResponse* resp);
grpc::Status HandlePodSandboxStats(StatsCollector& stats, const ::runtime::v1::PodSandboxStatsRequest* req,
                                   ::runtime::v1::PodSandboxStatsResponse* resp);
grpc::Status HandleListPodSandboxStats(StatsCollector& stats,
                                       const ::runtime::v1::ListPodSandboxStatsRequest* req,
                                       ::runtime::v1::ListPodSandboxStatsResponse* resp);

// Streams write the same items in batches of kStatsStreamBatch; CANCELLED when the client goes.
// grpc::ServerWriter<T>* converts to these.
inline constexpr int kStatsStreamBatch = 100;
grpc::Status HandleStreamContainerStats(
    StatsCollector& stats, const ::runtime::v1::StreamContainerStatsRequest* req,
    grpc::ServerWriterInterface<::runtime::v1::StreamContainerStatsResponse>* writer);
grpc::Status HandleStreamPodSandboxStats(
    StatsCollector& stats, const ::runtime::v1::StreamPodSandboxStatsRequest* req,
    grpc::ServerWriterInterface<::runtime::v1::StreamPodSandboxStatsResponse>* writer);

// cAdvisor-named metrics (see runtime/stats/cadvisor_metrics.h) for every ready pod.
grpc::Status HandleListMetricDescriptors(const ::runtime::v1::ListMetricDescriptorsRequest* req,
                                         ::runtime::v1::ListMetricDescriptorsResponse* resp);
grpc::Status HandleListPodSandboxMetrics(StatsCollector& stats,
                                         const ::runtime::v1::ListPodSandboxMetricsRequest* req,
                                         ::runtime::v1::ListPodSandboxMetricsResponse* resp);

}  // namespace berth::server

#endif  // BERTH_SERVER_STATS_RPCS_H_
