// StatsCollector: CRI ContainerStats and PodSandboxStats from cgroup files, the pod's netns
// counters and writable-layer sizes measured in the background. A request reads only small
// cgroup and /proc files: no fork, no directory walk, no JSON parse after a container's first.
// While list calls keep coming, a background sampler reads every cgroup once per sample_interval
// and the lists answer from those readings (cAdvisor's housekeeping, CRI-O's
// stats_collection_period): each figure carries the timestamp of its reading.
#ifndef BERTH_RUNTIME_STATS_COLLECTOR_H_
#define BERTH_RUNTIME_STATS_COLLECTOR_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "proto/runtime/v1/api.pb.h"
#include "runtime/cgroups/cpu_rate.h"
#include "runtime/cgroups/mode.h"
#include "runtime/cgroups/stats.h"
#include "runtime/engine.h"
#include "runtime/stats/record_source.h"
#include "util/demand_sampler.h"

namespace berth::engine::stats {

struct StatsOptions {
  // The overlay upper directory of a container ("" when it has none); berthd asks its image
  // store (ImageStore::WritableLayerDir). Unset: writable layers report zero usage.
  std::function<std::string(const std::string& container_id)> upper_dir_of;
  // FilesystemIdentifier.mountpoint reported for writable layers: the container filesystem
  // ImageFsInfo reports (ImageStore::ContainersRoot).
  std::string layer_mountpoint;
  // How often writable layers are measured and caches of removed containers dropped.
  // Zero: never in the background (tests call RefreshNow).
  absl::Duration refresh_interval = absl::Seconds(10);
  // How often the background sampler reads every created container's and ready pod's cgroups and
  // network counters while the list calls (ListContainerStats, ListPodSandboxStats,
  // ListPodSamples) ask: it starts with the first list call and stops once none came for
  // kDemandIntervals intervals. Lists answer from a reading at most twice this old and read the
  // rest (new containers, a starved sampler) themselves; the one-object calls always read.
  // Zero: every call reads (tests call SampleNow).
  absl::Duration sample_interval = absl::Seconds(10);
  std::string cgroup_root = cgroups::kCgroupRoot;
  std::optional<cgroups::CgroupMode> mode;  // detected under cgroup_root when unset
};

// What CRI's ContainerStats has no field for, kept beside it for the cAdvisor-style metrics.
struct ContainerExtras {
  std::string image;                // as the CRI request named it
  std::string cgroup_dir;           // relative to each hierarchy's root; "" when unknown
  uint64_t memory_limit_bytes = 0;  // 0 = unlimited or unknown
  std::optional<uint64_t> processes;
};

struct PodSample {
  runtime::v1::PodSandboxStats stats;
  std::vector<ContainerExtras> containers;  // parallel to stats.linux().containers()
};

class StatsCollector {
 public:
  // How list answers carry each container's attributes (id, metadata, labels, annotations).
  // kMessage fills ContainerStats.attributes. kEncoded appends their wire encoding, made once per
  // container (a container's attributes never change), to the message's unknown fields, which
  // serialize as the same field 1: a list then copies one string per container instead of three
  // maps, and serializing it re-encodes nothing. The gRPC services answer with kEncoded; code that
  // reads attributes() in-process wants kMessage.
  enum class Attributes { kMessage, kEncoded };

  StatsCollector(RecordSource source, StatsOptions options);
  StatsCollector(Engine* engine, StatsOptions options)
      : StatsCollector(EngineRecords(engine), std::move(options)) {}
  ~StatsCollector();  // stops and joins the refresh thread
  StatsCollector(const StatsCollector&) = delete;
  StatsCollector& operator=(const StatsCollector&) = delete;

  // One container by id or unique prefix. InvalidArgument for an empty id, NotFound naming it for
  // an unknown (or infra) container.
  absl::StatusOr<runtime::v1::ContainerStats> ContainerStats(const std::string& container_id);
  // Every created container (not those only Configured) matching the filter: id and pod id are
  // prefixes, every label_selector pair must be among the labels.
  std::vector<runtime::v1::ContainerStats> ListContainerStats(
      const runtime::v1::ContainerStatsFilter& filter,
      Attributes attributes = Attributes::kMessage);

  // One pod by id or unique prefix, whatever its state (a stopped pod has attributes only).
  absl::StatusOr<runtime::v1::PodSandboxStats> PodSandboxStats(const std::string& pod_sandbox_id);
  // Every ready pod matching the filter (id prefix, label selector); `attributes` says how its
  // containers' attributes come.
  std::vector<runtime::v1::PodSandboxStats> ListPodSandboxStats(
      const runtime::v1::PodSandboxStatsFilter& filter,
      Attributes attributes = Attributes::kMessage);
  // Every ready pod with the figures CRI stats have no field for (ListPodSandboxMetrics).
  std::vector<PodSample> ListPodSamples();

  // Measures every writable layer and drops cached state of containers and pods that are gone,
  // now; the background thread does this every refresh_interval. Blocks on the directory walks.
  void RefreshNow();
  // Reads every created container's and ready pod's cgroups and network counters now, as the
  // sampler does each sample_interval while lists are asked for. Does nothing when
  // sample_interval is zero.
  void SampleNow();
  // Samples taken so far (SampleNow and the background sampler).
  uint64_t samples_taken() const { return samples_taken_.load(); }

  // The sampler stops after this many intervals without a list call.
  static constexpr int kDemandIntervals = 6;

  cgroups::CgroupMode mode() const { return mode_; }
  bool swap_accounting() const { return swap_; }

 private:
  // Per container, computed once from its record.
  struct CgroupRef {
    bool known = false;      // the OCI spec named a cgroup
    std::string rel_dir;     // relative to each hierarchy's root, e.g. "/berth/berth-<id>"
    std::string attributes;  // ContainerAttributes, serialized (Attributes::kEncoded)
  };
  struct LayerCache {
    uint64_t bytes = 0;
    uint64_t inodes = 0;
    int64_t measured_ns = 0;
  };
  struct ContainerSample {
    runtime::v1::ContainerStats stats;
    ContainerExtras extras;
  };
  // One reading of a cgroup directory (a container's, or "pod/<id>" for a pod's own cgroup).
  struct CgroupReading {
    int64_t taken_ns = 0;
    bool ok = false;  // false: no controller had the directory (the container is gone)
    cgroups::CgroupStats cg;
    std::optional<uint64_t> nano_cores;          // since the key's previous reading
    std::optional<runtime::v1::SwapUsage> swap;  // when swap is accounted
  };
  // One reading of a pod's network counters ("net/<id>").
  struct NetReading {
    int64_t taken_ns = 0;
    bool ok = false;
    std::vector<runtime::v1::NetworkInterfaceUsage> interfaces;
  };
  // Whether a call may answer from a sample: lists may, the one-object calls read.
  enum class Read { kNow, kSampleIfFresh };

  std::shared_ptr<const CgroupRef> RefOf(const berth::v1::Container& c);
  ContainerSample SampleOf(const berth::v1::Container& c, int64_t now_ns, Read how,
                           Attributes attributes);
  PodSample PodSampleOf(const berth::v1::Sandbox& sb, const std::vector<ContainerView>& containers,
                        int64_t now_ns, Read how, Attributes attributes);
  // PodSample for every ready sandbox matching `keep`, containers grouped in one pass.
  std::vector<PodSample> ReadyPods(const std::function<bool(const berth::v1::Sandbox&)>& keep,
                                   Read how, Attributes attributes);
  // The reading of `rel_dir` under `key`: a fresh enough sample when `how` allows, else read now
  // (and kept as the key's sample when sampling is on).
  std::shared_ptr<const CgroupReading> CgroupOf(const std::string& key, const std::string& rel_dir,
                                                Read how);
  std::shared_ptr<const NetReading> NetOf(const std::string& sandbox_id, pid_t pid, Read how);
  // Swap beside what ReadStats read: v1 needs memory.memsw.* on top, v2 memory.swap.*.
  void FillSwap(const std::string& rel_dir, const cgroups::CgroupStats& cg,
                runtime::v1::SwapUsage* swap);
  void RefreshLoop();

  RecordSource source_;
  StatsOptions options_;
  cgroups::CgroupMode mode_;
  bool swap_ = false;
  cgroups::CpuRateTracker cpu_rates_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const CgroupRef>> refs_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, LayerCache> layers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> pod_rate_keys_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<const CgroupReading>> cgroup_readings_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<const NetReading>> net_readings_
      ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> samples_taken_{0};

  absl::Mutex refresh_mu_;  // one refresh at a time (background and RefreshNow)
  absl::Notification stop_;
  std::thread refresher_;
  std::unique_ptr<DemandSampler> sampler_;  // made last, stopped first
};

}  // namespace berth::engine::stats

#endif  // BERTH_RUNTIME_STATS_COLLECTOR_H_
