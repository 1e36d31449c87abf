// The CRI RuntimeService: thin handlers that check the request names what it must, call the engine
// and convert. One .cc file per group of calls (runtime_info.cc, sandbox_rpcs.cc,
// container_rpcs.cc, streaming_rpcs.cc, stats_rpcs.cc, checkpoint_rpcs.cc, events_rpcs.cc).
#ifndef BERTH_SERVER_RUNTIME_SERVICE_H_
#define BERTH_SERVER_RUNTIME_SERVICE_H_

#include <functional>
#include <string>

#include "proto/runtime/v1/api.grpc.pb.h"
#include "runtime/engine.h"
#include "runtime/stats/collector.h"
#include "server/config.h"
#include "server/list_cache.h"
#include "server/streaming/server.h"

namespace berth::server {

namespace cri = runtime::v1;

class RuntimeServiceImpl final : public cri::RuntimeService::Service {
 public:
  // Every optional part may be absent; calls that need it answer FAILED_PRECONDITION.
  RuntimeServiceImpl(const Config& config, engine::Engine* engine, streaming::Server* streaming,
                     engine::stats::StatsCollector* stats);

  // Version and runtime status (runtime_info.cc).
  grpc::Status Version(grpc::ServerContext*, const cri::VersionRequest*,
                       cri::VersionResponse*) override;
  grpc::Status Status(grpc::ServerContext*, const cri::StatusRequest*,
                      cri::StatusResponse*) override;
  grpc::Status UpdateRuntimeConfig(grpc::ServerContext*, const cri::UpdateRuntimeConfigRequest*,
                                   cri::UpdateRuntimeConfigResponse*) override;
  grpc::Status RuntimeConfig(grpc::ServerContext*, const cri::RuntimeConfigRequest*,
                             cri::RuntimeConfigResponse*) override;

  // Pods (sandbox_rpcs.cc).
  grpc::Status RunPodSandbox(grpc::ServerContext*, const cri::RunPodSandboxRequest*,
                             cri::RunPodSandboxResponse*) override;
  grpc::Status StopPodSandbox(grpc::ServerContext*, const cri::StopPodSandboxRequest*,
                              cri::StopPodSandboxResponse*) override;
  grpc::Status RemovePodSandbox(grpc::ServerContext*, const cri::RemovePodSandboxRequest*,
                                cri::RemovePodSandboxResponse*) override;
  grpc::Status PodSandboxStatus(grpc::ServerContext*, const cri::PodSandboxStatusRequest*,
                                cri::PodSandboxStatusResponse*) override;
  grpc::Status ListPodSandbox(grpc::ServerContext*, const cri::ListPodSandboxRequest*,
                              cri::ListPodSandboxResponse*) override;
  grpc::Status UpdatePodSandboxResources(grpc::ServerContext*,
                                         const cri::UpdatePodSandboxResourcesRequest*,
                                         cri::UpdatePodSandboxResourcesResponse*) override;
  grpc::Status StreamPodSandboxes(grpc::ServerContext*, const cri::StreamPodSandboxesRequest*,
                                  grpc::ServerWriter<cri::StreamPodSandboxesResponse>*) override;

  // Containers (container_rpcs.cc).
  grpc::Status CreateContainer(grpc::ServerContext*, const cri::CreateContainerRequest*,
                               cri::CreateContainerResponse*) override;
  grpc::Status StartContainer(grpc::ServerContext*, const cri::StartContainerRequest*,
                              cri::StartContainerResponse*) override;
  grpc::Status StopContainer(grpc::ServerContext*, const cri::StopContainerRequest*,
                             cri::StopContainerResponse*) override;
  grpc::Status RemoveContainer(grpc::ServerContext*, const cri::RemoveContainerRequest*,
                               cri::RemoveContainerResponse*) override;
  grpc::Status ListContainers(grpc::ServerContext*, const cri::ListContainersRequest*,
                              cri::ListContainersResponse*) override;
  grpc::Status StreamContainers(grpc::ServerContext*, const cri::StreamContainersRequest*,
                                grpc::ServerWriter<cri::StreamContainersResponse>*) override;
  grpc::Status ContainerStatus(grpc::ServerContext*, const cri::ContainerStatusRequest*,
                               cri::ContainerStatusResponse*) override;
  grpc::Status UpdateContainerResources(grpc::ServerContext*,
                                        const cri::UpdateContainerResourcesRequest*,
                                        cri::UpdateContainerResourcesResponse*) override;
  grpc::Status ReopenContainerLog(grpc::ServerContext*, const cri::ReopenContainerLogRequest*,
                                  cri::ReopenContainerLogResponse*) override;
  grpc::Status ExecSync(grpc::ServerContext*, const cri::ExecSyncRequest*,
                        cri::ExecSyncResponse*) override;

  // Streaming URLs (streaming_rpcs.cc).
  grpc::Status Exec(grpc::ServerContext*, const cri::ExecRequest*, cri::ExecResponse*) override;
  grpc::Status Attach(grpc::ServerContext*, const cri::AttachRequest*,
                      cri::AttachResponse*) override;
  grpc::Status PortForward(grpc::ServerContext*, const cri::PortForwardRequest*,
                           cri::PortForwardResponse*) override;

  // Statistics (stats_rpcs.cc).
  grpc::Status ContainerStats(grpc::ServerContext*, const cri::ContainerStatsRequest*,
                              cri::ContainerStatsResponse*) override;
  grpc::Status ListContainerStats(grpc::ServerContext*, const cri::ListContainerStatsRequest*,
                                  cri::ListContainerStatsResponse*) override;
  grpc::Status StreamContainerStats(
      grpc::ServerContext*, const cri::StreamContainerStatsRequest*,
      grpc::ServerWriter<cri::StreamContainerStatsResponse>*) override;
  grpc::Status PodSandboxStats(grpc::ServerContext*, const cri::PodSandboxStatsRequest*,
                               cri::PodSandboxStatsResponse*) override;
  grpc::Status ListPodSandboxStats(grpc::ServerContext*, const cri::ListPodSandboxStatsRequest*,
                                   cri::ListPodSandboxStatsResponse*) override;
  grpc::Status StreamPodSandboxStats(
      grpc::ServerContext*, const cri::StreamPodSandboxStatsRequest*,
      grpc::ServerWriter<cri::StreamPodSandboxStatsResponse>*) override;

  // Runtime metrics (stats_rpcs.cc) and checkpoints (checkpoint_rpcs.cc).
  grpc::Status ListMetricDescriptors(grpc::ServerContext*, const cri::ListMetricDescriptorsRequest*,
                                     cri::ListMetricDescriptorsResponse*) override;
  grpc::Status ListPodSandboxMetrics(grpc::ServerContext*, const cri::ListPodSandboxMetricsRequest*,
                                     cri::ListPodSandboxMetricsResponse*) override;
  grpc::Status CheckpointContainer(grpc::ServerContext*, const cri::CheckpointContainerRequest*,
                                   cri::CheckpointContainerResponse*) override;

  // Events (events_rpcs.cc).
  grpc::Status GetContainerEvents(grpc::ServerContext*, const cri::GetEventsRequest*,
                                  grpc::ServerWriter<cri::ContainerEventResponse>*) override;

 private:
  const Config& config_;
  engine::Engine* engine_;
  streaming::Server* streaming_;
  engine::stats::StatsCollector* stats_;
  EncodedListCache<berth::v1::Container> container_list_cache_;
  EncodedListCache<berth::v1::Sandbox> sandbox_list_cache_;
};

// Conversions from berth's records to CRI messages (runtime_convert.cc).
cri::PodSandbox ToCriSandbox(const berth::v1::Sandbox& s);
cri::PodSandboxStatus ToCriSandboxStatus(const berth::v1::Sandbox& s);
cri::Container ToCriContainer(const berth::v1::Container& c);
cri::ContainerStatus ToCriContainerStatus(const berth::v1::Container& c);
cri::ContainerState ToCriState(berth::v1::ContainerStatus s);

}  // namespace berth::server

#endif  // BERTH_SERVER_RUNTIME_SERVICE_H_
