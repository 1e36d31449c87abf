// Turns cumulative CPU usage samples into CRI's usage_nano_cores, per container.
#ifndef BERTH_RUNTIME_CGROUPS_CPU_RATE_H_
#define BERTH_RUNTIME_CGROUPS_CPU_RATE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace berth::cgroups {

// Thread-safe. Remembers the last sample of each id; callers Forget ids they remove.
class CpuRateTracker {
 public:
  // The average CPU use since the previous sample of `id`, in billionths of a core (1e9 = one
  // core busy). nullopt on the first sample, and when the counter went backwards (a new cgroup
  // under the same id), which restarts the series. A sample no later than the previous one
  // returns the previous rate, so two stats calls in the same instant agree.
  std::optional<uint64_t> Update(absl::string_view id, uint64_t usage_ns, int64_t timestamp_ns);
  void Forget(absl::string_view id);
  size_t size() const;

 private:
  struct Sample {
    uint64_t usage_ns = 0;
    int64_t timestamp_ns = 0;
    std::optional<uint64_t> rate;
  };
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Sample> last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::cgroups

#endif  // BERTH_RUNTIME_CGROUPS_CPU_RATE_H_
