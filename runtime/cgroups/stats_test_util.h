// Checks shared by the cgroup v1 (stats_test) and v2 (cgroup_v2_test) readers' tests.
#ifndef BERTH_RUNTIME_CGROUPS_STATS_TEST_UTIL_H_
#define BERTH_RUNTIME_CGROUPS_STATS_TEST_UTIL_H_

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <thread>

#include "gtest/gtest.h"
#include "runtime/cgroups/cpu_rate.h"
#include "absl/status/statusor.h"
#include "runtime/cgroups/stats.h"
#include "test/util/busy_child.h"

namespace berth::cgroups {

// Two readings of a busy cgroup give a CPU rate; the first reading alone gives none.
inline void ExpectCpuRate(const CgroupStats& first, const CgroupStats& later) {
  CpuRateTracker rate;
  EXPECT_FALSE(rate.Update("c", first.cpu_usage_ns, first.timestamp_ns).has_value());
  std::optional<uint64_t> nano_cores = rate.Update("c", later.cpu_usage_ns, later.timestamp_ns);
  ASSERT_TRUE(nano_cores.has_value());
  EXPECT_GT(*nano_cores, 0u);
}

// What a BusyChild touches.
inline constexpr size_t kBusyTouch = size_t{8} << 20;

// Moves a BusyChild into an unlimited cgroup through `add` and reads the cgroup with `read`:
// the first reading shows CPU, memory and exactly one pid; `later` is read until the child's CPU
// time has grown and its touched memory is charged (the deadline only bounds a hang: nothing
// here asserts a duration), and checked for that.
inline void ReadBusyChild(const std::function<bool(pid_t)>& add,
                          const std::function<absl::StatusOr<CgroupStats>()>& read,
                          CgroupStats* first_out, CgroupStats* later_out) {
  test::BusyChild child(kBusyTouch);
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(add(child.pid()));
  child.Go();
  absl::StatusOr<CgroupStats> first = read();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->has_cpu);
  EXPECT_TRUE(first->has_memory);
  EXPECT_TRUE(first->has_pids);
  EXPECT_EQ(first->pids_current, 1u);
  EXPECT_EQ(first->memory_limit_bytes, 0u);  // unlimited
  absl::StatusOr<CgroupStats> later;
  for (int i = 0; i < 1500; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    later = read();
    ASSERT_TRUE(later.ok()) << later.status();
    if (later->cpu_usage_ns > first->cpu_usage_ns && later->rss_bytes >= kBusyTouch) break;
  }
  EXPECT_GT(later->cpu_usage_ns, first->cpu_usage_ns);
  EXPECT_GE(later->rss_bytes, kBusyTouch);
  EXPECT_GE(later->memory_usage_bytes, later->working_set_bytes);
  EXPECT_GE(later->working_set_bytes, kBusyTouch);
  EXPECT_GT(later->page_faults, 0u);
  *first_out = *first;
  *later_out = *later;
}

}  // namespace berth::cgroups

#endif  // BERTH_RUNTIME_CGROUPS_STATS_TEST_UTIL_H_
