// Statistics: cgroup reads per container (no fork, no directory walk), pod network counters
// from the infra process's /proc/<pid>/net/dev, writable layers sized in the background.
#include "runtime/usage.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"
#include "runtime/cgroups/stats.h"
#include "util/fs.h"

namespace berth::runtime {
namespace {

namespace cri = ::runtime::v1;

void FillCpuMemory(const cgroups::CgroupStats& s, std::optional<uint64_t> nano_cores,
                   cri::CpuUsage* cpu, cri::MemoryUsage* mem) {
  if (s.has_cpu) {
    cpu->set_timestamp(s.timestamp_ns);
    cpu->mutable_usage_core_nano_seconds()->set_value(s.cpu_usage_ns);
    if (nano_cores) cpu->mutable_usage_nano_cores()->set_value(*nano_cores);
  }
  if (s.has_memory) {
    mem->set_timestamp(s.timestamp_ns);
    mem->mutable_working_set_bytes()->set_value(s.working_set_bytes);
    mem->mutable_usage_bytes()->set_value(s.memory_usage_bytes);
    mem->mutable_rss_bytes()->set_value(s.rss_bytes);
    mem->mutable_page_faults()->set_value(s.page_faults);
    mem->mutable_major_page_faults()->set_value(s.major_page_faults);
    if (s.memory_limit_bytes > 0) {
      mem->mutable_available_bytes()->set_value(
          s.memory_limit_bytes > s.working_set_bytes ? s.memory_limit_bytes - s.working_set_bytes : 0);
    }
  }
}

int64_t NowNs() { return absl::ToUnixNanos(absl::Now()); }

}  // namespace

std::vector<cri::NetworkInterfaceUsage> ParseNetDev(const std::string& text) {
  std::vector<cri::NetworkInterfaceUsage> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    std::string name(absl::StripAsciiWhitespace(line.substr(0, colon)));
    std::vector<absl::string_view> f =
        absl::StrSplit(line.substr(colon + 1), ' ', absl::SkipEmpty());
    if (f.size() < 16 || name == "lo") continue;
    uint64_t rx_bytes, rx_errs, tx_bytes, tx_errs;
    if (!absl::SimpleAtoi(f[0], &rx_bytes) || !absl::SimpleAtoi(f[2], &rx_errs) ||
        !absl::SimpleAtoi(f[8], &tx_bytes) || !absl::SimpleAtoi(f[10], &tx_errs)) {
      continue;
    }
    cri::NetworkInterfaceUsage u;
    u.set_name(name);
    u.mutable_rx_bytes()->set_value(rx_bytes);
    u.mutable_rx_errors()->set_value(rx_errs);
    u.mutable_tx_bytes()->set_value(tx_bytes);
    u.mutable_tx_errors()->set_value(tx_errs);
    out.push_back(std::move(u));
  }
  return out;
}

UsageCollector::UsageCollector(Engine* engine, UsageOptions options)
    : engine_(engine),
      options_(std::move(options)),
      mode_(cgroups::DetectCgroupMode().value_or(cgroups::CgroupMode::kLegacy)) {
  refresher_ = std::thread([this] { RefreshLoop(); });
}

UsageCollector::~UsageCollector() {
  stop_.Notify();
  refresher_.join();
}

void UsageCollector::RefreshLoop() {
  do {
    if (!options_.writable_layer) continue;
    absl::flat_hash_map<std::string, LayerUsage> fresh;
    for (const ContainerView& c : engine_->ListContainers()) {
      absl::StatusOr<LayerUsage> u = options_.writable_layer(c->config().id());
      if (u.ok()) fresh[c->config().id()] = *u;
    }
    absl::MutexLock l(&mu_);
    layers_ = std::move(fresh);
  } while (!stop_.WaitForNotificationWithTimeout(options_.refresh));
}

std::string UsageCollector::CgroupsPathOf(const berth::v1::Container& c) {
  {
    absl::MutexLock l(&mu_);
    auto it = cgroup_paths_.find(c.config().id());
    if (it != cgroup_paths_.end()) return it->second;
  }
  nlohmann::json spec = nlohmann::json::parse(c.config().oci_spec(), nullptr, false);
  std::string path;
  if (!spec.is_discarded() && spec.contains("linux")) path = spec["linux"].value("cgroupsPath", "");
  absl::MutexLock l(&mu_);
  cgroup_paths_[c.config().id()] = path;
  return path;
}

cri::ContainerStats UsageCollector::ContainerStats(const berth::v1::Container& c) {
  cri::ContainerStats out;
  auto* attrs = out.mutable_attributes();
  attrs->set_id(c.config().id());
  *attrs->mutable_metadata() = c.config().cri().metadata();
  *attrs->mutable_labels() = c.config().cri().labels();
  *attrs->mutable_annotations() = c.config().cri().annotations();
  const int64_t now = NowNs();
  out.mutable_cpu()->set_timestamp(now);
  out.mutable_memory()->set_timestamp(now);
  auto s = c.state().status();
  if (s == berth::v1::CONTAINER_STATUS_RUNNING || s == berth::v1::CONTAINER_STATUS_PAUSED ||
      s == berth::v1::CONTAINER_STATUS_CREATED) {
    absl::StatusOr<cgroups::CgroupStats> cg = cgroups::ReadStats(CgroupsPathOf(c), mode_);
    if (cg.ok()) {
      std::optional<uint64_t> rate =
          cg->has_cpu ? cpu_rates_.Update(c.config().id(), cg->cpu_usage_ns, cg->timestamp_ns)
                      : std::nullopt;
      FillCpuMemory(*cg, rate, out.mutable_cpu(), out.mutable_memory());
    }
  } else {
    cpu_rates_.Forget(c.config().id());
  }
  auto* fs = out.mutable_writable_layer();
  fs->set_timestamp(now);
  fs->mutable_fs_id()->set_mountpoint(options_.layer_mountpoint);
  LayerUsage layer;
  {
    absl::MutexLock l(&mu_);
    auto it = layers_.find(c.config().id());
    if (it != layers_.end()) layer = it->second;
  }
  fs->mutable_used_bytes()->set_value(layer.bytes);
  fs->mutable_inodes_used()->set_value(layer.inodes);
  return out;
}

cri::PodSandboxStats UsageCollector::PodStats(const berth::v1::Sandbox& sb) {
  cri::PodSandboxStats out;
  auto* attrs = out.mutable_attributes();
  attrs->set_id(sb.id());
  *attrs->mutable_metadata() = sb.config().metadata();
  *attrs->mutable_labels() = sb.config().labels();
  *attrs->mutable_annotations() = sb.config().annotations();
  auto* linux = out.mutable_linux();
  const int64_t now = NowNs();
  // The pod's numbers are the sum over its containers, infra included.
  uint64_t cpu_ns = 0, nano_cores = 0, ws = 0, usage = 0, rss = 0, faults = 0, major = 0, pids = 0;
  bool any_rate = false;
  for (const ContainerView& c : engine_->ListContainers()) {
    if (c->config().sandbox_id() != sb.id()) continue;
    cri::ContainerStats cs = ContainerStats(*c);
    cpu_ns += cs.cpu().usage_core_nano_seconds().value();
    if (cs.cpu().has_usage_nano_cores()) {
      nano_cores += cs.cpu().usage_nano_cores().value();
      any_rate = true;
    }
    ws += cs.memory().working_set_bytes().value();
    usage += cs.memory().usage_bytes().value();
    rss += cs.memory().rss_bytes().value();
    faults += cs.memory().page_faults().value();
    major += cs.memory().major_page_faults().value();
    *linux->add_containers() = std::move(cs);
  }
  if (absl::StatusOr<ContainerView> infra = engine_->GetContainer(sb.infra_container_id()); infra.ok()) {
    absl::StatusOr<cgroups::CgroupStats> cg = cgroups::ReadStats(CgroupsPathOf(**infra), mode_);
    if (cg.ok()) {
      cpu_ns += cg->cpu_usage_ns;
      ws += cg->working_set_bytes;
      usage += cg->memory_usage_bytes;
      rss += cg->rss_bytes;
      pids += cg->pids_current;
    }
    pid_t pid = (*infra)->state().pid();
    if (pid > 0 && !sb.netns_path().empty()) {
      std::string dev = ReadFile(absl::StrCat("/proc/", pid, "/net/dev")).value_or("");
      auto* net = linux->mutable_network();
      net->set_timestamp(now);
      for (auto& iface : ParseNetDev(dev)) {
        if (iface.name() == "eth0") *net->mutable_default_interface() = iface;
        *net->add_interfaces() = std::move(iface);
      }
    }
  }
  auto* cpu = linux->mutable_cpu();
  cpu->set_timestamp(now);
  cpu->mutable_usage_core_nano_seconds()->set_value(cpu_ns);
  if (any_rate) cpu->mutable_usage_nano_cores()->set_value(nano_cores);
  auto* mem = linux->mutable_memory();
  mem->set_timestamp(now);
  mem->mutable_working_set_bytes()->set_value(ws);
  mem->mutable_usage_bytes()->set_value(usage);
  mem->mutable_rss_bytes()->set_value(rss);
  mem->mutable_page_faults()->set_value(faults);
  mem->mutable_major_page_faults()->set_value(major);
  auto* proc = linux->mutable_process();
  proc->set_timestamp(now);
  proc->mutable_process_count()->set_value(pids);
  return out;
}

}  // namespace berth::runtime
