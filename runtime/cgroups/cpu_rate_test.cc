// CpuRateTracker arithmetic and its per-container series.
#include "runtime/cgroups/cpu_rate.h"

#include "gtest/gtest.h"

namespace berth::cgroups {
namespace {

constexpr int64_t kSec = 1'000'000'000;

TEST(CpuRateTrackerTest, FirstSampleHasNoRate) {
  CpuRateTracker t;
  EXPECT_FALSE(t.Update("a", 5 * kSec, 100 * kSec).has_value());
}

TEST(CpuRateTrackerTest, RateIsUsageOverElapsedTimeInNanoCores) {
  CpuRateTracker t;
  t.Update("a", 0, 100 * kSec);
  // 1.5 s of CPU in 2 s: 0.75 cores.
  EXPECT_EQ(t.Update("a", 1'500'000'000, 102 * kSec), 750'000'000u);
  // Two cores busy for 10 s: 2e9, large values do not overflow.
  EXPECT_EQ(t.Update("a", 1'500'000'000 + 20 * kSec, 112 * kSec), 2'000'000'000u);
}

TEST(CpuRateTrackerTest, SameInstantRepeatsLastRate) {
  CpuRateTracker t;
  t.Update("a", 0, 10 * kSec);
  EXPECT_EQ(t.Update("a", kSec, 11 * kSec), 1'000'000'000u);
  EXPECT_EQ(t.Update("a", kSec, 11 * kSec), 1'000'000'000u);
}

TEST(CpuRateTrackerTest, CounterGoingBackwardsRestartsTheSeries) {
  CpuRateTracker t;
  t.Update("a", 10 * kSec, 10 * kSec);
  EXPECT_FALSE(t.Update("a", 1, 11 * kSec).has_value());
  EXPECT_EQ(t.Update("a", 1 + kSec / 2, 12 * kSec), 500'000'000u);
}

TEST(CpuRateTrackerTest, ContainersAreTrackedSeparatelyAndForgotten) {
  CpuRateTracker t;
  t.Update("a", 0, 0);
  t.Update("b", 0, 0);
  EXPECT_EQ(t.Update("a", kSec, kSec), 1'000'000'000u);
  EXPECT_EQ(t.Update("b", kSec / 4, kSec), 250'000'000u);
  EXPECT_EQ(t.size(), 2u);
  t.Forget("a");
  EXPECT_EQ(t.size(), 1u);
  EXPECT_FALSE(t.Update("a", 2 * kSec, 2 * kSec).has_value());
}

}  // namespace
}  // namespace berth::cgroups
