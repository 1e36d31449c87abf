// CRI ListMetricDescriptors / ListPodSandboxMetrics content: cAdvisor-named metrics kubelet
// re-exports on /metrics/cadvisor when it takes pod metrics from the runtime.
#ifndef BERTH_RUNTIME_STATS_CADVISOR_METRICS_H_
#define BERTH_RUNTIME_STATS_CADVISOR_METRICS_H_

#include <vector>

#include "proto/runtime/v1/api.pb.h"
#include "runtime/stats/collector.h"

namespace berth::engine::stats {

// Every metric ToPodSandboxMetrics can emit, with its label keys. Kubelet reads these once and
// drops any metric whose name is not among them, or whose label values do not match the keys.
// Container metrics carry {container, id, image, name, namespace, pod} like cAdvisor's
// (id = the cgroup directory, name = the container id); network metrics add "interface".
std::vector<runtime::v1::MetricDescriptor> MetricDescriptors();

// The metrics of one pod sample. Values are CRI's UInt64: cpu seconds are whole seconds.
// Timestamps are 0 for figures read on demand and the measuring time for writable-layer sizes,
// which are cached (kubelet's convention).
runtime::v1::PodSandboxMetrics ToPodSandboxMetrics(const PodSample& pod);

}  // namespace berth::engine::stats

#endif  // BERTH_RUNTIME_STATS_CADVISOR_METRICS_H_
