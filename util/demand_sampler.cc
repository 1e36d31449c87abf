#include "util/demand_sampler.h"

#include <sched.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "glog/logging.h"

namespace berth {

DemandSampler::DemandSampler(absl::Duration interval, int idle_intervals,
                             std::function<void()> sample)
    : interval_(interval), idle_intervals_(idle_intervals), sample_(std::move(sample)) {
  if (enabled()) thread_ = std::thread([this] { Loop(); });
}

DemandSampler::~DemandSampler() {
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

bool DemandSampler::Fresh(int64_t taken_ns) const {
  if (!enabled()) return false;
  return absl::ToUnixNanos(absl::Now()) - taken_ns <= absl::ToInt64Nanoseconds(2 * interval_);
}

void DemandSampler::Loop() {
  // Per thread on Linux; lowering one's own policy needs no privilege.
  struct sched_param idle {};
  if (sched_setscheduler(0, SCHED_IDLE, &idle) != 0) {
    LOG(WARNING) << "cannot run a background sampler at idle priority: " << strerror(errno);
  }
  while (!stop_.WaitForNotificationWithTimeout(interval_)) {
    const int64_t since = absl::ToUnixNanos(absl::Now()) - last_demand_ns_.load();
    if (since > absl::ToInt64Nanoseconds(idle_intervals_ * interval_)) continue;  // nobody asks
    sample_();
    samples_.fetch_add(1);
  }
}

}  // namespace berth
