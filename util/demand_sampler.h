// DemandSampler: a background thread that takes a sample (reads cgroups, measures directories)
// every interval while someone keeps asking for what it samples, and sleeps otherwise. Callers
// answer from the latest sample when it is fresh enough (cAdvisor's housekeeping, containerd's
// snapshot usage syncer), so that a periodic caller such as kubelet never waits for the reads.
#ifndef BERTH_UTIL_DEMAND_SAMPLER_H_
#define BERTH_UTIL_DEMAND_SAMPLER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace berth {

class DemandSampler {
 public:
  // Samples every `interval` at SCHED_IDLE (never competing with requests for a core) while
  // Demand() was called within the last `idle_intervals` intervals. A zero interval starts no
  // thread: Fresh() is then always false and callers read for themselves.
  DemandSampler(absl::Duration interval, int idle_intervals, std::function<void()> sample);
  ~DemandSampler();  // stops and joins the thread
  DemandSampler(const DemandSampler&) = delete;
  DemandSampler& operator=(const DemandSampler&) = delete;

  // Someone asked for what is sampled: keeps (or starts) the sampling.
  void Demand() { last_demand_ns_.store(absl::ToUnixNanos(absl::Now())); }
  // Whether a sample taken at `taken_ns` (Unix ns) may still be served: at most two intervals
  // old, so that one late tick (a loaded machine) does not send every caller to the files.
  bool Fresh(int64_t taken_ns) const;
  bool enabled() const { return interval_ > absl::ZeroDuration(); }
  // Set when the sampler is to stop: a long sample checks it between items.
  bool stopping() const { return stop_.HasBeenNotified(); }
  uint64_t samples_taken() const { return samples_.load(); }

 private:
  void Loop();

  const absl::Duration interval_;
  const int idle_intervals_;
  const std::function<void()> sample_;
  std::atomic<int64_t> last_demand_ns_{0};
  std::atomic<uint64_t> samples_{0};
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace berth

#endif  // BERTH_UTIL_DEMAND_SAMPLER_H_
