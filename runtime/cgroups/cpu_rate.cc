// CpuRateTracker: delta usage over delta time, per container id.
#include "runtime/cgroups/cpu_rate.h"

namespace berth::cgroups {

std::optional<uint64_t> CpuRateTracker::Update(absl::string_view id, uint64_t usage_ns,
                                               int64_t timestamp_ns) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = last_.try_emplace(id);
  Sample& last = it->second;
  if (inserted || usage_ns < last.usage_ns) {
    last = Sample{usage_ns, timestamp_ns, std::nullopt};
    return std::nullopt;
  }
  if (timestamp_ns <= last.timestamp_ns) return last.rate;
  // 128-bit intermediate: usage deltas in ns times 1e9 overflow 64 bits after ~18 s of one core.
  unsigned __int128 delta_usage = usage_ns - last.usage_ns;
  uint64_t delta_time = static_cast<uint64_t>(timestamp_ns - last.timestamp_ns);
  uint64_t rate = static_cast<uint64_t>(delta_usage * 1'000'000'000u / delta_time);
  last = Sample{usage_ns, timestamp_ns, rate};
  return rate;
}

void CpuRateTracker::Forget(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  last_.erase(id);
}

size_t CpuRateTracker::size() const {
  absl::MutexLock lock(&mu_);
  return last_.size();
}

}  // namespace berth::cgroups
