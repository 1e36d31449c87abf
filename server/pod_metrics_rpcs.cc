// ListMetricDescriptors and ListPodSandboxMetrics: cAdvisor-named metrics kubelet can take from
// the runtime, built from the same statistics as ListPodSandboxStats.
#include "server/grpc_status.h"
#include "server/runtime_service.h"

namespace berth::server {
namespace {

struct Descriptor {
  const char* name;
  const char* help;
  cri::MetricType type;
};

// label_keys for every container metric are the same as cAdvisor's common ones.
constexpr Descriptor kContainerMetrics[] = {
    {"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", cri::COUNTER},
    {"container_memory_working_set_bytes", "Current working set in bytes.", cri::GAUGE},
    {"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", cri::GAUGE},
    {"container_memory_rss", "Size of RSS in bytes.", cri::GAUGE},
    {"container_memory_failures_total", "Cumulative count of memory allocation failures (page faults).", cri::COUNTER},
    {"container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", cri::GAUGE},
    {"container_fs_inodes_total", "Number of inodes used by the container's writable layer.", cri::GAUGE},
};
constexpr Descriptor kPodMetrics[] = {
    {"container_network_receive_bytes_total", "Cumulative count of bytes received.", cri::COUNTER},
    {"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", cri::COUNTER},
    {"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", cri::COUNTER},
    {"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", cri::COUNTER},
};
const std::vector<std::string> kContainerLabels = {"container", "pod", "namespace"};
const std::vector<std::string> kNetworkLabels = {"pod", "namespace", "interface"};

cri::Metric MakeMetric(const char* name, int64_t ts, cri::MetricType type,
                       std::vector<std::string> labels, uint64_t value) {
  cri::Metric m;
  m.set_name(name);
  m.set_timestamp(ts);
  m.set_metric_type(type);
  for (auto& l : labels) m.add_label_values(std::move(l));
  m.mutable_value()->set_value(value);
  return m;
}

}  // namespace

grpc::Status RuntimeServiceImpl::ListMetricDescriptors(grpc::ServerContext*,
                                                       const cri::ListMetricDescriptorsRequest*,
                                                       cri::ListMetricDescriptorsResponse* resp) {
  for (const auto& d : kContainerMetrics) {
    auto* out = resp->add_descriptors();
    out->set_name(d.name);
    out->set_help(d.help);
    for (const auto& l : kContainerLabels) out->add_label_keys(l);
  }
  for (const auto& d : kPodMetrics) {
    auto* out = resp->add_descriptors();
    out->set_name(d.name);
    out->set_help(d.help);
    for (const auto& l : kNetworkLabels) out->add_label_keys(l);
  }
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::ListPodSandboxMetrics(grpc::ServerContext*,
                                                       const cri::ListPodSandboxMetricsRequest*,
                                                       cri::ListPodSandboxMetricsResponse* resp) {
  for (const auto& sb : engine_->ListSandboxes()) {
    if (sb->status() != berth::v1::SANDBOX_STATUS_READY) continue;
    cri::PodSandboxStats stats = usage_->PodStats(*sb);
    const std::string& pod = sb->config().metadata().name();
    const std::string& ns = sb->config().metadata().namespace_();
    auto* pm = resp->add_pod_metrics();
    pm->set_pod_sandbox_id(sb->id());
    const auto& net = stats.linux().network();
    for (const auto& iface : net.interfaces()) {
      std::vector<std::string> labels = {pod, ns, iface.name()};
      *pm->add_metrics() = MakeMetric(kPodMetrics[0].name, net.timestamp(), cri::COUNTER, labels, iface.rx_bytes().value());
      *pm->add_metrics() = MakeMetric(kPodMetrics[1].name, net.timestamp(), cri::COUNTER, labels, iface.tx_bytes().value());
      *pm->add_metrics() = MakeMetric(kPodMetrics[2].name, net.timestamp(), cri::COUNTER, labels, iface.rx_errors().value());
      *pm->add_metrics() = MakeMetric(kPodMetrics[3].name, net.timestamp(), cri::COUNTER, labels, iface.tx_errors().value());
    }
    for (const auto& cs : stats.linux().containers()) {
      auto* cm = pm->add_container_metrics();
      cm->set_container_id(cs.attributes().id());
      std::vector<std::string> labels = {cs.attributes().metadata().name(), pod, ns};
      const int64_t cts = cs.cpu().timestamp(), mts = cs.memory().timestamp(), fts = cs.writable_layer().timestamp();
      // Seconds in a uint64: kubelet reads cpu time in whole seconds from this metric.
      *cm->add_metrics() = MakeMetric(kContainerMetrics[0].name, cts, cri::COUNTER, labels,
                                      cs.cpu().usage_core_nano_seconds().value() / 1'000'000'000);
      *cm->add_metrics() = MakeMetric(kContainerMetrics[1].name, mts, cri::GAUGE, labels, cs.memory().working_set_bytes().value());
      *cm->add_metrics() = MakeMetric(kContainerMetrics[2].name, mts, cri::GAUGE, labels, cs.memory().usage_bytes().value());
      *cm->add_metrics() = MakeMetric(kContainerMetrics[3].name, mts, cri::GAUGE, labels, cs.memory().rss_bytes().value());
      *cm->add_metrics() = MakeMetric(kContainerMetrics[4].name, mts, cri::COUNTER, labels, cs.memory().page_faults().value());
      *cm->add_metrics() = MakeMetric(kContainerMetrics[5].name, fts, cri::GAUGE, labels, cs.writable_layer().used_bytes().value());
      *cm->add_metrics() = MakeMetric(kContainerMetrics[6].name, fts, cri::GAUGE, labels, cs.writable_layer().inodes_used().value());
    }
  }
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::CheckpointContainer(grpc::ServerContext*,
                                                     const cri::CheckpointContainerRequest* req,
                                                     cri::CheckpointContainerResponse*) {
  if (req->container_id().empty()) return InvalidArgument("container_id is required");
  if (req->location().empty() || req->location()[0] != '/') {
    return InvalidArgument("location must be an absolute path for the checkpoint archive");
  }
  return ToGrpc(engine_->CheckpointContainer(req->container_id(), req->location()));
}

}  // namespace berth::server
