// StatsCollector: cgroup reads against cached cgroup directories, per request or from the
// background sampler's readings; the same thread sizes writable layers and forgets what belonged
// to removed containers and pods.
#include "runtime/stats/collector.h"

#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"
#include "runtime/labels.h"
#include "runtime/cgroups/paths.h"
#include "runtime/cgroups/stats.h"
#include "runtime/stats/layer_walk.h"
#include "runtime/stats/net_dev.h"

namespace berth::engine::stats {
namespace {

namespace cri = runtime::v1;
using berth::v1::Container;
using berth::v1::Sandbox;

// v1 spells "no limit" as the largest page-aligned counter value.
constexpr uint64_t kV1Unlimited = uint64_t{1} << 62;

int64_t NowNs() { return absl::ToUnixNanos(absl::Now()); }

std::string PodRateKey(const std::string& sandbox_id) { return "pod/" + sandbox_id; }
std::string NetKey(const std::string& sandbox_id) { return "net/" + sandbox_id; }

bool HasCgroup(berth::v1::ContainerStatus s) {
  return s == berth::v1::CONTAINER_STATUS_CREATED || s == berth::v1::CONTAINER_STATUS_RUNNING ||
         s == berth::v1::CONTAINER_STATUS_PAUSED;
}

// CPU and memory of one cgroup read into CRI messages.
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
    // As kubelet's eviction manager reads it: room left before the limit, 0 past it.
    if (s.memory_limit_bytes > 0) {
      mem->mutable_available_bytes()->set_value(s.memory_limit_bytes > s.working_set_bytes
                                                    ? s.memory_limit_bytes - s.working_set_bytes
                                                    : 0);
    }
  }
}

// The parent directory of a cgroup directory ("/a/b/c" -> "/a/b"); "" for top-level ones.
std::string ParentDir(const std::string& dir) {
  size_t slash = dir.rfind('/');
  if (slash == std::string::npos || slash == 0) return "";
  return dir.substr(0, slash);
}

// Sums of container figures, for pods without a cgroup of their own.
struct Totals {
  bool any_cpu = false, any_rate = false, any_memory = false, any_pids = false;
  uint64_t cpu_ns = 0, nano_cores = 0, working_set = 0, usage = 0, rss = 0, faults = 0, major = 0,
           available = 0, pids = 0;
  bool all_limited = true;
  void Add(const cri::ContainerStats& s, const ContainerExtras& x) {
    if (s.cpu().has_usage_core_nano_seconds()) {
      any_cpu = true;
      cpu_ns += s.cpu().usage_core_nano_seconds().value();
    }
    if (s.cpu().has_usage_nano_cores()) {
      any_rate = true;
      nano_cores += s.cpu().usage_nano_cores().value();
    }
    if (s.memory().has_usage_bytes()) {
      any_memory = true;
      working_set += s.memory().working_set_bytes().value();
      usage += s.memory().usage_bytes().value();
      rss += s.memory().rss_bytes().value();
      faults += s.memory().page_faults().value();
      major += s.memory().major_page_faults().value();
      if (s.memory().has_available_bytes()) {
        available += s.memory().available_bytes().value();
      } else {
        all_limited = false;
      }
    }
    if (x.processes) {
      any_pids = true;
      pids += *x.processes;
    }
  }
};

}  // namespace

StatsCollector::StatsCollector(RecordSource source, StatsOptions options)
    : source_(std::move(source)), options_(std::move(options)) {
  if (options_.mode) {
    mode_ = *options_.mode;
  } else {
    absl::StatusOr<cgroups::CgroupMode> m = cgroups::DetectCgroupMode(options_.cgroup_root);
    if (!m.ok()) LOG(WARNING) << "stats: " << m.status() << "; reading cgroups as v1";
    mode_ = m.value_or(cgroups::CgroupMode::kLegacy);
  }
  swap_ = cgroups::SwapControllerAvailable(mode_, options_.cgroup_root);
  if (options_.refresh_interval > absl::ZeroDuration()) {
    refresher_ = std::thread([this] { RefreshLoop(); });
  }
  sampler_ = std::make_unique<DemandSampler>(options_.sample_interval, kDemandIntervals,
                                             [this] { SampleNow(); });
}

StatsCollector::~StatsCollector() {
  stop_.Notify();
  sampler_.reset();
  if (refresher_.joinable()) refresher_.join();
}

void StatsCollector::RefreshLoop() {
  // Background upkeep must never compete with requests for a core: SCHED_IDLE runs this thread
  // only when nothing else wants the CPU (per thread on Linux; lowering needs no privilege).
  struct sched_param idle {};
  if (sched_setscheduler(0, SCHED_IDLE, &idle) != 0) {
    LOG(WARNING) << "stats: cannot run the refresh thread at idle priority: " << strerror(errno);
  }
  do {
    RefreshNow();
  } while (!stop_.WaitForNotificationWithTimeout(options_.refresh_interval));
}

void StatsCollector::SampleNow() {
  if (!sampler_->enabled()) return;
  for (const ContainerView& c : source_.list_containers()) {
    if (stop_.HasBeenNotified()) return;
    if (!HasCgroup(c->state().status())) continue;
    std::shared_ptr<const CgroupRef> ref = RefOf(*c);
    if (ref->known) CgroupOf(c->config().id(), ref->rel_dir, Read::kNow);
  }
  for (const SandboxView& sb : source_.list_sandboxes()) {
    if (stop_.HasBeenNotified()) return;
    if (sb->status() != berth::v1::SANDBOX_STATUS_READY) continue;
    absl::StatusOr<ContainerView> infra = source_.get_container(sb->infra_container_id());
    if (!infra.ok()) continue;
    std::shared_ptr<const CgroupRef> ref = RefOf(**infra);
    bool running = (*infra)->state().status() == berth::v1::CONTAINER_STATUS_RUNNING;
    // What PodSampleOf reads: the pod's own cgroup, or else the infra container's.
    std::string pod_dir = !sb->cgroup_parent().empty() && ref->known ? ParentDir(ref->rel_dir) : "";
    if (!pod_dir.empty()) {
      CgroupOf(PodRateKey(sb->id()), pod_dir, Read::kNow);
    } else if (running && ref->known) {
      CgroupOf((*infra)->config().id(), ref->rel_dir, Read::kNow);
    }
    if (running && !sb->netns_path().empty() && (*infra)->state().pid() > 0) {
      NetOf(sb->id(), (*infra)->state().pid(), Read::kNow);
    }
  }
  samples_taken_.fetch_add(1);
}

std::shared_ptr<const StatsCollector::CgroupReading> StatsCollector::CgroupOf(
    const std::string& key, const std::string& rel_dir, Read how) {
  const bool sampling = sampler_->enabled();
  if (sampling && how == Read::kSampleIfFresh) {
    absl::MutexLock l(&mu_);
    auto it = cgroup_readings_.find(key);
    if (it != cgroup_readings_.end() && sampler_->Fresh(it->second->taken_ns)) return it->second;
  }
  auto r = std::make_shared<CgroupReading>();
  r->taken_ns = NowNs();
  absl::StatusOr<cgroups::CgroupStats> cg =
      cgroups::ReadStats(rel_dir, mode_, options_.cgroup_root);
  if (cg.ok()) {
    r->ok = true;
    r->cg = *cg;
    if (cg->has_cpu) r->nano_cores = cpu_rates_.Update(key, cg->cpu_usage_ns, cg->timestamp_ns);
    if (swap_ && cg->has_memory) {
      cri::SwapUsage swap;
      FillSwap(rel_dir, *cg, &swap);
      if (swap.has_swap_usage_bytes()) r->swap = std::move(swap);
    }
  } else {
    VLOG(1) << "stats: \"" << key << "\": " << cg.status();
  }
  if (sampling) {
    absl::MutexLock l(&mu_);
    std::shared_ptr<const CgroupReading>& kept = cgroup_readings_[key];
    if (kept == nullptr || kept->taken_ns <= r->taken_ns) kept = r;
  }
  return r;
}

std::shared_ptr<const StatsCollector::NetReading> StatsCollector::NetOf(
    const std::string& sandbox_id, pid_t pid, Read how) {
  const bool sampling = sampler_->enabled();
  const std::string key = NetKey(sandbox_id);
  if (sampling && how == Read::kSampleIfFresh) {
    absl::MutexLock l(&mu_);
    auto it = net_readings_.find(key);
    if (it != net_readings_.end() && sampler_->Fresh(it->second->taken_ns)) return it->second;
  }
  auto r = std::make_shared<NetReading>();
  r->taken_ns = NowNs();
  absl::StatusOr<std::vector<cri::NetworkInterfaceUsage>> ifaces = ReadNetDev(pid);
  if (ifaces.ok()) {
    r->ok = true;
    r->interfaces = std::move(*ifaces);
  } else {
    VLOG(1) << "stats: pod \"" << sandbox_id << "\": " << ifaces.status();
  }
  if (sampling) {
    absl::MutexLock l(&mu_);
    std::shared_ptr<const NetReading>& kept = net_readings_[key];
    if (kept == nullptr || kept->taken_ns <= r->taken_ns) kept = r;
  }
  return r;
}

void StatsCollector::RefreshNow() {
  absl::MutexLock serial(&refresh_mu_);
  std::vector<ContainerView> containers = source_.list_containers();
  std::vector<SandboxView> sandboxes = source_.list_sandboxes();
  absl::flat_hash_set<std::string> live;
  for (const auto& s : sandboxes) {
    live.insert(s->infra_container_id());
    live.insert(PodRateKey(s->id()));
    live.insert(NetKey(s->id()));
  }
  // Walk without the lock: a big layer takes a while and requests must not wait for it.
  absl::flat_hash_map<std::string, LayerCache> fresh;
  for (const auto& c : containers) {
    const std::string& id = c->config().id();
    live.insert(id);
    if (stop_.HasBeenNotified()) continue;
    // Parse new containers' specs here rather than in the first stats request that sees them.
    RefOf(*c);
    if (!options_.upper_dir_of) continue;
    std::string dir = options_.upper_dir_of(id);
    if (dir.empty()) continue;
    absl::StatusOr<TreeUsage> u = MeasureTree(dir);
    if (!u.ok()) {
      VLOG(1) << "stats: container \"" << id << "\": " << u.status();
      continue;
    }
    fresh[id] = LayerCache{u->bytes, u->inodes, NowNs()};
  }
  std::vector<std::string> forget;
  {
    absl::MutexLock l(&mu_);
    if (options_.upper_dir_of) layers_ = std::move(fresh);
    for (auto it = refs_.begin(); it != refs_.end();) {
      if (live.contains(it->first)) {
        ++it;
        continue;
      }
      forget.push_back(it->first);
      refs_.erase(it++);
    }
    absl::erase_if(cgroup_readings_, [&live](const auto& kv) { return !live.contains(kv.first); });
    absl::erase_if(net_readings_, [&live](const auto& kv) { return !live.contains(kv.first); });
    for (auto it = pod_rate_keys_.begin(); it != pod_rate_keys_.end();) {
      if (live.contains(*it)) {
        ++it;
        continue;
      }
      forget.push_back(*it);
      pod_rate_keys_.erase(it++);
    }
  }
  for (const auto& id : forget) cpu_rates_.Forget(id);
}

std::shared_ptr<const StatsCollector::CgroupRef> StatsCollector::RefOf(const Container& c) {
  const std::string& id = c.config().id();
  {
    absl::MutexLock l(&mu_);
    auto it = refs_.find(id);
    if (it != refs_.end()) return it->second;
  }
  auto ref = std::make_shared<CgroupRef>();
  {
    cri::ContainerAttributes a;
    a.set_id(id);
    *a.mutable_metadata() = c.config().cri().metadata();
    *a.mutable_labels() = c.config().cri().labels();
    *a.mutable_annotations() = c.config().cri().annotations();
    ref->attributes = a.SerializeAsString();
  }
  nlohmann::json spec = nlohmann::json::parse(c.config().oci_spec(), nullptr, false);
  if (!spec.is_discarded() && spec.is_object() && spec.contains("linux") &&
      spec["linux"].is_object()) {
    const nlohmann::json& linux = spec["linux"];
    auto p = linux.find("cgroupsPath");
    if (p != linux.end() && p->is_string()) {
      absl::StatusOr<std::string> rel = cgroups::CgroupRelativeDir(p->get<std::string>());
      if (rel.ok()) {
        ref->known = true;
        ref->rel_dir = *rel;
      } else {
        LOG(WARNING) << "stats: container \"" << id << "\": " << rel.status();
      }
    }
  }
  absl::MutexLock l(&mu_);
  auto [it, inserted] = refs_.try_emplace(id, std::move(ref));
  return it->second;
}

void StatsCollector::FillSwap(const std::string& rel_dir, const cgroups::CgroupStats& cg,
                              cri::SwapUsage* swap) {
  auto read = [&](const char* controller, const char* file) {
    return cgroups::ReadCgroupUint(rel_dir, controller, file, options_.cgroup_root);
  };
  std::optional<uint64_t> used, limit;
  if (mode_ == cgroups::CgroupMode::kUnified) {
    used = read("", "memory.swap.current");
    if (used) limit = read("", "memory.swap.max");  // "max" stays nullopt
  } else {
    // v1 counts memory plus swap; swap alone is the difference from what ReadStats just read.
    std::optional<uint64_t> memsw = read("memory", "memory.memsw.usage_in_bytes");
    if (memsw) {
      used = *memsw > cg.memory_usage_bytes ? *memsw - cg.memory_usage_bytes : 0;
      std::optional<uint64_t> memsw_limit = read("memory", "memory.memsw.limit_in_bytes");
      if (memsw_limit && *memsw_limit < kV1Unlimited && cg.memory_limit_bytes > 0) {
        limit = *memsw_limit > cg.memory_limit_bytes ? *memsw_limit - cg.memory_limit_bytes : 0;
      }
    }
  }
  if (!used) return;
  swap->set_timestamp(cg.timestamp_ns);
  swap->mutable_swap_usage_bytes()->set_value(*used);
  if (limit) swap->mutable_swap_available_bytes()->set_value(*limit > *used ? *limit - *used : 0);
}

StatsCollector::ContainerSample StatsCollector::SampleOf(const Container& c, int64_t now_ns,
                                                         Read how, Attributes attributes) {
  ContainerSample out;
  const std::string& id = c.config().id();
  cri::ContainerStats& s = out.stats;
  std::shared_ptr<const CgroupRef> ref = RefOf(c);
  if (attributes == Attributes::kEncoded) {
    s.GetReflection()->MutableUnknownFields(&s)->AddLengthDelimited(
        cri::ContainerStats::kAttributesFieldNumber, ref->attributes);
  } else {
    cri::ContainerAttributes* attrs = s.mutable_attributes();
    attrs->set_id(id);
    *attrs->mutable_metadata() = c.config().cri().metadata();
    *attrs->mutable_labels() = c.config().cri().labels();
    *attrs->mutable_annotations() = c.config().cri().annotations();
  }
  out.extras.image = c.config().image_name();
  s.mutable_cpu()->set_timestamp(now_ns);
  s.mutable_memory()->set_timestamp(now_ns);

  if (ref->known) out.extras.cgroup_dir = ref->rel_dir;
  if (HasCgroup(c.state().status()) && ref->known) {
    std::shared_ptr<const CgroupReading> r = CgroupOf(id, ref->rel_dir, how);
    if (r->ok) {
      FillCpuMemory(r->cg, r->nano_cores, s.mutable_cpu(), s.mutable_memory());
      out.extras.memory_limit_bytes = r->cg.memory_limit_bytes;
      if (r->cg.has_pids) out.extras.processes = r->cg.pids_current;
      if (r->swap) *s.mutable_swap() = *r->swap;
    }
  } else {
    cpu_rates_.Forget(id);  // a restarted container starts a new rate series
  }

  LayerCache layer;
  {
    absl::MutexLock l(&mu_);
    auto it = layers_.find(id);
    if (it != layers_.end()) layer = it->second;
  }
  cri::FilesystemUsage* fs = s.mutable_writable_layer();
  fs->set_timestamp(layer.measured_ns != 0 ? layer.measured_ns : now_ns);
  fs->mutable_fs_id()->set_mountpoint(options_.layer_mountpoint);
  fs->mutable_used_bytes()->set_value(layer.bytes);
  fs->mutable_inodes_used()->set_value(layer.inodes);
  return out;
}

absl::StatusOr<cri::ContainerStats> StatsCollector::ContainerStats(
    const std::string& container_id) {
  if (container_id.empty()) return absl::InvalidArgumentError("container_id is required");
  absl::StatusOr<ContainerView> c = source_.get_container(container_id);
  if (!c.ok()) return c.status();
  // Infra containers are berth's business, not CRI containers.
  if ((*c)->config().infra()) {
    return absl::NotFoundError(absl::StrCat("container \"", container_id, "\" not found"));
  }
  return std::move(SampleOf(**c, NowNs(), Read::kNow, Attributes::kMessage).stats);
}

std::vector<cri::ContainerStats> StatsCollector::ListContainerStats(
    const cri::ContainerStatsFilter& f, Attributes attributes) {
  sampler_->Demand();
  std::vector<cri::ContainerStats> out;
  const int64_t now = NowNs();
  for (const ContainerView& c : source_.list_containers()) {
    if (c->state().status() == berth::v1::CONTAINER_STATUS_CONFIGURED) continue;
    if (!f.id().empty() && !absl::StartsWith(c->config().id(), f.id())) continue;
    if (!f.pod_sandbox_id().empty() &&
        !absl::StartsWith(c->config().sandbox_id(), f.pod_sandbox_id())) {
      continue;
    }
    if (!MatchesLabels(c->config().cri().labels(), f.label_selector())) continue;
    out.push_back(std::move(SampleOf(*c, now, Read::kSampleIfFresh, attributes).stats));
  }
  return out;
}

PodSample StatsCollector::PodSampleOf(const Sandbox& sb,
                                      const std::vector<ContainerView>& containers, int64_t now_ns,
                                      Read how, Attributes attributes) {
  PodSample out;
  cri::PodSandboxAttributes* attrs = out.stats.mutable_attributes();
  attrs->set_id(sb.id());
  *attrs->mutable_metadata() = sb.config().metadata();
  *attrs->mutable_labels() = sb.config().labels();
  *attrs->mutable_annotations() = sb.config().annotations();
  cri::LinuxPodSandboxStats* linux = out.stats.mutable_linux();

  Totals totals;
  for (const ContainerView& c : containers) {
    ContainerSample cs = SampleOf(*c, now_ns, how, attributes);
    totals.Add(cs.stats, cs.extras);
    *linux->add_containers() = std::move(cs.stats);
    out.containers.push_back(std::move(cs.extras));
  }

  absl::StatusOr<ContainerView> infra = source_.get_container(sb.infra_container_id());
  bool infra_running =
      infra.ok() && (*infra)->state().status() == berth::v1::CONTAINER_STATUS_RUNNING;
  cri::CpuUsage* cpu = linux->mutable_cpu();
  cri::MemoryUsage* mem = linux->mutable_memory();
  cri::ProcessUsage* proc = linux->mutable_process();
  cpu->set_timestamp(now_ns);
  mem->set_timestamp(now_ns);
  proc->set_timestamp(now_ns);

  // The pod cgroup (kubelet's cgroup_parent) holds every container of the pod: read it whole. A
  // pod without one shares berth's default parent with other pods, so sum its containers.
  bool have_pod_cgroup = false;
  if (!sb.cgroup_parent().empty() && infra.ok()) {
    std::shared_ptr<const CgroupRef> ref = RefOf(**infra);
    std::string pod_dir = ref->known ? ParentDir(ref->rel_dir) : "";
    if (!pod_dir.empty()) {
      std::string key = PodRateKey(sb.id());
      {
        absl::MutexLock l(&mu_);
        pod_rate_keys_.insert(key);
      }
      std::shared_ptr<const CgroupReading> r = CgroupOf(key, pod_dir, how);
      if (r->ok) {
        have_pod_cgroup = true;
        FillCpuMemory(r->cg, r->nano_cores, cpu, mem);
        if (r->cg.has_pids) {
          proc->set_timestamp(r->cg.timestamp_ns);
          proc->mutable_process_count()->set_value(r->cg.pids_current);
        }
      }
    }
  }
  if (!have_pod_cgroup) {
    if (infra_running) {
      ContainerSample is = SampleOf(**infra, now_ns, how, attributes);
      totals.Add(is.stats, is.extras);
    }
    if (totals.any_cpu) cpu->mutable_usage_core_nano_seconds()->set_value(totals.cpu_ns);
    if (totals.any_rate) cpu->mutable_usage_nano_cores()->set_value(totals.nano_cores);
    if (totals.any_memory) {
      mem->mutable_working_set_bytes()->set_value(totals.working_set);
      mem->mutable_usage_bytes()->set_value(totals.usage);
      mem->mutable_rss_bytes()->set_value(totals.rss);
      mem->mutable_page_faults()->set_value(totals.faults);
      mem->mutable_major_page_faults()->set_value(totals.major);
      if (totals.all_limited) mem->mutable_available_bytes()->set_value(totals.available);
    }
    if (totals.any_pids) proc->mutable_process_count()->set_value(totals.pids);
  }

  // The infra (pause) process lives in the pod's netns for the pod's whole life.
  if (infra_running && !sb.netns_path().empty() && (*infra)->state().pid() > 0) {
    std::shared_ptr<const NetReading> net = NetOf(sb.id(), (*infra)->state().pid(), how);
    if (net->ok) *linux->mutable_network() = ToNetworkUsage(net->interfaces, net->taken_ns);
  }
  return out;
}

absl::StatusOr<cri::PodSandboxStats> StatsCollector::PodSandboxStats(
    const std::string& pod_sandbox_id) {
  if (pod_sandbox_id.empty()) return absl::InvalidArgumentError("pod_sandbox_id is required");
  absl::StatusOr<SandboxView> sb = source_.get_sandbox(pod_sandbox_id);
  if (!sb.ok()) return sb.status();
  std::vector<ContainerView> mine;
  for (ContainerView& c : source_.list_containers()) {
    if (c->config().sandbox_id() == (*sb)->id() &&
        c->state().status() != berth::v1::CONTAINER_STATUS_CONFIGURED) {
      mine.push_back(std::move(c));
    }
  }
  return std::move(PodSampleOf(**sb, mine, NowNs(), Read::kNow, Attributes::kMessage).stats);
}

std::vector<PodSample> StatsCollector::ReadyPods(const std::function<bool(const Sandbox&)>& keep,
                                                 Read how, Attributes attributes) {
  std::vector<SandboxView> sandboxes = source_.list_sandboxes();
  absl::flat_hash_map<std::string, std::vector<ContainerView>> by_pod;
  for (const SandboxView& s : sandboxes) {
    if (s->status() == berth::v1::SANDBOX_STATUS_READY && keep(*s)) by_pod[s->id()];
  }
  std::vector<PodSample> out;
  if (by_pod.empty()) return out;
  for (ContainerView& c : source_.list_containers()) {
    if (c->state().status() == berth::v1::CONTAINER_STATUS_CONFIGURED) continue;
    auto it = by_pod.find(c->config().sandbox_id());
    if (it != by_pod.end()) it->second.push_back(std::move(c));
  }
  const int64_t now = NowNs();
  for (const SandboxView& s : sandboxes) {
    auto it = by_pod.find(s->id());
    if (it != by_pod.end()) out.push_back(PodSampleOf(*s, it->second, now, how, attributes));
  }
  return out;
}

std::vector<cri::PodSandboxStats> StatsCollector::ListPodSandboxStats(
    const cri::PodSandboxStatsFilter& f, Attributes attributes) {
  sampler_->Demand();
  std::vector<PodSample> pods = ReadyPods(
      [&f](const Sandbox& s) {
        return (f.id().empty() || absl::StartsWith(s.id(), f.id())) &&
               MatchesLabels(s.config().labels(), f.label_selector());
      },
      Read::kSampleIfFresh, attributes);
  std::vector<cri::PodSandboxStats> out;
  out.reserve(pods.size());
  for (PodSample& p : pods) out.push_back(std::move(p.stats));
  return out;
}

std::vector<PodSample> StatsCollector::ListPodSamples() {
  sampler_->Demand();
  return ReadyPods([](const Sandbox&) { return true; }, Read::kSampleIfFresh, Attributes::kMessage);
}

}  // namespace berth::engine::stats
