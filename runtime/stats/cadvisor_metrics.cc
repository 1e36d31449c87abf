// The descriptor table and the conversion from a PodSample to CRI Metric messages.
#include "runtime/stats/cadvisor_metrics.h"

#include <initializer_list>
#include <string>

namespace berth::engine::stats {
namespace {

namespace cri = runtime::v1;

// cAdvisor's label order is irrelevant to kubelet; values follow keys one to one.
const std::initializer_list<const char*> kBaseKeys = {"container", "id",        "image",
                                                      "name",      "namespace", "pod"};

struct Desc {
  const char* name;
  const char* help;
  std::initializer_list<const char*> extra_keys;
};

const Desc kDescs[] = {
    {"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", {"cpu"}},
    {"container_memory_working_set_bytes", "Current working set in bytes.", {}},
    {"container_memory_usage_bytes",
     "Current memory usage in bytes, including all memory regardless of when it was accessed.",
     {}},
    {"container_memory_rss", "Size of RSS in bytes.", {}},
    {"container_memory_swap", "Container swap usage in bytes.", {}},
    {"container_memory_failures_total",
     "Cumulative count of memory allocation failures.",
     {"failure_type", "scope"}},
    {"container_spec_memory_limit_bytes", "Memory limit for the container.", {}},
    {"container_processes", "Number of processes running inside the container.", {}},
    {"container_fs_usage_bytes",
     "Number of bytes that are consumed by the container on this filesystem.",
     {"device"}},
    {"container_fs_inodes_used",
     "Number of inodes the container's writable layer uses.",
     {"device"}},
    {"container_network_receive_bytes_total", "Cumulative count of bytes received.", {"interface"}},
    {"container_network_transmit_bytes_total",
     "Cumulative count of bytes transmitted.",
     {"interface"}},
    {"container_network_receive_errors_total",
     "Cumulative count of errors encountered while receiving.",
     {"interface"}},
    {"container_network_transmit_errors_total",
     "Cumulative count of errors encountered while transmitting.",
     {"interface"}},
};

// Appends one metric: base label values in kBaseKeys order, then `extra`.
void Add(google::protobuf::RepeatedPtrField<cri::Metric>* out, const char* name,
         cri::MetricType type, const std::vector<std::string>& base,
         std::initializer_list<std::string> extra, uint64_t value, int64_t timestamp = 0) {
  cri::Metric* m = out->Add();
  m->set_name(name);
  m->set_timestamp(timestamp);
  m->set_metric_type(type);
  for (const auto& v : base) m->add_label_values(v);
  for (const auto& v : extra) m->add_label_values(v);
  m->mutable_value()->set_value(value);
}

}  // namespace

std::vector<cri::MetricDescriptor> MetricDescriptors() {
  std::vector<cri::MetricDescriptor> out;
  for (const Desc& d : kDescs) {
    cri::MetricDescriptor& md = out.emplace_back();
    md.set_name(d.name);
    md.set_help(d.help);
    for (const char* k : kBaseKeys) md.add_label_keys(k);
    for (const char* k : d.extra_keys) md.add_label_keys(k);
  }
  return out;
}

cri::PodSandboxMetrics ToPodSandboxMetrics(const PodSample& pod) {
  cri::PodSandboxMetrics out;
  const cri::PodSandboxStats& ps = pod.stats;
  out.set_pod_sandbox_id(ps.attributes().id());
  const std::string& pod_name = ps.attributes().metadata().name();
  const std::string& ns = ps.attributes().metadata().namespace_();

  // Pod-level network counters belong to the pod's sandbox, as cAdvisor reports them on "POD".
  const std::vector<std::string> pod_base = {
      "POD", ps.attributes().id(), "", ps.attributes().id(), ns, pod_name};
  if (ps.linux().has_network()) {
    for (const cri::NetworkInterfaceUsage& i : ps.linux().network().interfaces()) {
      Add(out.mutable_metrics(), "container_network_receive_bytes_total", cri::COUNTER, pod_base,
          {i.name()}, i.rx_bytes().value());
      Add(out.mutable_metrics(), "container_network_transmit_bytes_total", cri::COUNTER, pod_base,
          {i.name()}, i.tx_bytes().value());
      Add(out.mutable_metrics(), "container_network_receive_errors_total", cri::COUNTER, pod_base,
          {i.name()}, i.rx_errors().value());
      Add(out.mutable_metrics(), "container_network_transmit_errors_total", cri::COUNTER, pod_base,
          {i.name()}, i.tx_errors().value());
    }
  }

  for (int i = 0; i < ps.linux().containers_size(); ++i) {
    const cri::ContainerStats& cs = ps.linux().containers(i);
    static const ContainerExtras kNone;
    const ContainerExtras& x =
        i < static_cast<int>(pod.containers.size()) ? pod.containers[i] : kNone;
    cri::ContainerMetrics* cm = out.add_container_metrics();
    cm->set_container_id(cs.attributes().id());
    auto* m = cm->mutable_metrics();
    const std::vector<std::string> base = {
        cs.attributes().metadata().name(),
        x.cgroup_dir.empty() ? cs.attributes().id() : x.cgroup_dir,
        x.image,
        cs.attributes().id(),
        ns,
        pod_name};
    if (cs.cpu().has_usage_core_nano_seconds()) {
      Add(m, "container_cpu_usage_seconds_total", cri::COUNTER, base, {"total"},
          cs.cpu().usage_core_nano_seconds().value() / 1'000'000'000);
    }
    if (cs.memory().has_usage_bytes()) {
      const cri::MemoryUsage& mem = cs.memory();
      Add(m, "container_memory_working_set_bytes", cri::GAUGE, base, {},
          mem.working_set_bytes().value());
      Add(m, "container_memory_usage_bytes", cri::GAUGE, base, {}, mem.usage_bytes().value());
      Add(m, "container_memory_rss", cri::GAUGE, base, {}, mem.rss_bytes().value());
      // The cgroup counters are hierarchical (v1 total_*, v2 memory.stat).
      Add(m, "container_memory_failures_total", cri::COUNTER, base, {"pgfault", "hierarchy"},
          mem.page_faults().value());
      Add(m, "container_memory_failures_total", cri::COUNTER, base, {"pgmajfault", "hierarchy"},
          mem.major_page_faults().value());
      Add(m, "container_spec_memory_limit_bytes", cri::GAUGE, base, {}, x.memory_limit_bytes);
    }
    if (cs.swap().has_swap_usage_bytes()) {
      Add(m, "container_memory_swap", cri::GAUGE, base, {}, cs.swap().swap_usage_bytes().value());
    }
    if (x.processes) Add(m, "container_processes", cri::GAUGE, base, {}, *x.processes);
    const cri::FilesystemUsage& fs = cs.writable_layer();
    if (fs.has_used_bytes()) {
      Add(m, "container_fs_usage_bytes", cri::GAUGE, base, {fs.fs_id().mountpoint()},
          fs.used_bytes().value(), fs.timestamp());
      Add(m, "container_fs_inodes_used", cri::GAUGE, base, {fs.fs_id().mountpoint()},
          fs.inodes_used().value(), fs.timestamp());
    }
  }
  return out;
}

}  // namespace berth::engine::stats
