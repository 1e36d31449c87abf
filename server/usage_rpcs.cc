// ContainerStats, ListContainerStats, PodSandboxStats, ListPodSandboxStats and their streams,
// served by runtime/stats through the handlers in stats_rpcs.h.
#include "server/grpc_status.h"
#include "server/runtime_service.h"
#include "server/stats_rpcs.h"

namespace berth::server {

grpc::Status RuntimeServiceImpl::ContainerStats(grpc::ServerContext*, const cri::ContainerStatsRequest* req,
                                                cri::ContainerStatsResponse* resp) {
  return HandleContainerStats(*stats_, req, resp);
}

grpc::Status RuntimeServiceImpl::ListContainerStats(grpc::ServerContext*,
                                                    const cri::ListContainerStatsRequest* req,
                                                    cri::ListContainerStatsResponse* resp) {
  return HandleListContainerStats(*stats_, req, resp);
}

grpc::Status RuntimeServiceImpl::StreamContainerStats(
    grpc::ServerContext*, const cri::StreamContainerStatsRequest* req,
    grpc::ServerWriter<cri::StreamContainerStatsResponse>* writer) {
  return HandleStreamContainerStats(*stats_, req, writer);
}

grpc::Status RuntimeServiceImpl::PodSandboxStats(grpc::ServerContext*,
                                                 const cri::PodSandboxStatsRequest* req,
                                                 cri::PodSandboxStatsResponse* resp) {
  return HandlePodSandboxStats(*stats_, req, resp);
}

grpc::Status RuntimeServiceImpl::ListPodSandboxStats(grpc::ServerContext*,
                                                     const cri::ListPodSandboxStatsRequest* req,
                                                     cri::ListPodSandboxStatsResponse* resp) {
  return HandleListPodSandboxStats(*stats_, req, resp);
}

grpc::Status RuntimeServiceImpl::StreamPodSandboxStats(
    grpc::ServerContext*, const cri::StreamPodSandboxStatsRequest* req,
    grpc::ServerWriter<cri::StreamPodSandboxStatsResponse>* writer) {
  return HandleStreamPodSandboxStats(*stats_, req, writer);
}

grpc::Status RuntimeServiceImpl::ListMetricDescriptors(grpc::ServerContext*,
                                                       const cri::ListMetricDescriptorsRequest* req,
                                                       cri::ListMetricDescriptorsResponse* resp) {
  return HandleListMetricDescriptors(req, resp);
}

grpc::Status RuntimeServiceImpl::ListPodSandboxMetrics(grpc::ServerContext*,
                                                       const cri::ListPodSandboxMetricsRequest* req,
                                                       cri::ListPodSandboxMetricsResponse* resp) {
  return HandleListPodSandboxMetrics(*stats_, req, resp);
}

}  // namespace berth::server
