// UsageCollector: CRI container and pod statistics from cgroup files and /proc, with
// writable-layer sizes refreshed in the background so no request walks a directory.
#ifndef BERTH_RUNTIME_USAGE_H_
#define BERTH_RUNTIME_USAGE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "proto/runtime/v1/api.pb.h"
#include "runtime/cgroups/cpu_rate.h"
#include "runtime/cgroups/mode.h"
#include "runtime/engine.h"

namespace berth::runtime {

struct LayerUsage {
  uint64_t bytes = 0;
  uint64_t inodes = 0;
};

struct UsageOptions {
  // Bytes and inodes of a container's writable layer; called from the background thread only.
  std::function<absl::StatusOr<LayerUsage>(const std::string& container_id)> writable_layer;
  std::string layer_mountpoint;  // the filesystem holding writable layers
  absl::Duration refresh = absl::Seconds(10);
};

class UsageCollector {
 public:
  UsageCollector(Engine* engine, UsageOptions options);
  ~UsageCollector();
  UsageCollector(const UsageCollector&) = delete;
  UsageCollector& operator=(const UsageCollector&) = delete;

  ::runtime::v1::ContainerStats ContainerStats(const berth::v1::Container& c);
  ::runtime::v1::PodSandboxStats PodStats(const berth::v1::Sandbox& s);

 private:
  void RefreshLoop();
  std::string CgroupsPathOf(const berth::v1::Container& c);

  Engine* engine_;
  UsageOptions options_;
  cgroups::CgroupMode mode_;
  cgroups::CpuRateTracker cpu_rates_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::string> cgroup_paths_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, LayerUsage> layers_ ABSL_GUARDED_BY(mu_);
  absl::Notification stop_;
  std::thread refresher_;
};

// Interfaces of a network namespace from /proc/<pid>/net/dev text.
std::vector<::runtime::v1::NetworkInterfaceUsage> ParseNetDev(const std::string& text);

}  // namespace berth::runtime

#endif  // BERTH_RUNTIME_USAGE_H_
