#include "storage/images/fs_usage_cache.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace berth::images {
namespace {

// Measurements that count their walks; the container one fails while `fail` is set.
struct Walks {
  std::atomic<int> image{0}, containers{0};
  std::atomic<bool> fail{false};
  FsUsageCache::Measure Image() {
    return [this]() -> absl::StatusOr<FsUsage> {
      return FsUsage{{static_cast<uint64_t>(++image) * 100, 7}, "/images"};
    };
  }
  FsUsageCache::Measure Containers() {
    return [this]() -> absl::StatusOr<FsUsage> {
      ++containers;
      if (fail) return absl::PermissionDeniedError("open /containers: permission denied");
      return FsUsage{{4096, 3}, "/containers"};
    };
  }
};

TEST(FsUsageCacheTest, ZeroIntervalWalksInEveryCall) {
  Walks w;
  FsUsageCache cache(w.Image(), w.Containers(), absl::ZeroDuration());
  absl::StatusOr<FsInfo> a = cache.Get();
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<FsInfo> b = cache.Get();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(w.image.load(), 2);
  EXPECT_EQ(a->image.usage.bytes, 100u);
  EXPECT_EQ(b->image.usage.bytes, 200u);
  EXPECT_EQ(b->containers.mountpoint, "/containers");
  EXPECT_EQ(b->containers.usage.inodes, 3u);
  EXPECT_GE(b->taken_ns, a->taken_ns);
}

TEST(FsUsageCacheTest, CallsAnswerFromTheLatestWalkWhileItIsFresh) {
  Walks w;
  FsUsageCache cache(w.Image(), w.Containers(), absl::Hours(1));  // never ticks in the test
  absl::StatusOr<FsInfo> first = cache.Get();
  ASSERT_TRUE(first.ok()) << first.status();
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<FsInfo> again = cache.Get();
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->image.usage.bytes, first->image.usage.bytes);
    EXPECT_EQ(again->taken_ns, first->taken_ns) << "the walk's own time, not the call's";
  }
  EXPECT_EQ(w.image.load(), 1);
  EXPECT_EQ(w.containers.load(), 1);
}

TEST(FsUsageCacheTest, AFailedWalkIsReturnedAndNothingIsKept) {
  Walks w;
  w.fail = true;
  FsUsageCache cache(w.Image(), w.Containers(), absl::Hours(1));
  absl::StatusOr<FsInfo> got = cache.Get();
  EXPECT_TRUE(absl::IsPermissionDenied(got.status())) << got.status();
  EXPECT_NE(got.status().message().find("/containers"), std::string::npos);
  w.fail = false;
  got = cache.Get();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(w.containers.load(), 2) << "the failure was not kept as an answer";
}

// Asked for, the walks go on in the background; the callers get them without walking.
TEST(FsUsageCacheTest, CallsKeepTheBackgroundWalksGoing) {
  Walks w;
  FsUsageCache cache(w.Image(), w.Containers(), absl::Milliseconds(20));
  ASSERT_TRUE(cache.Get().ok());
  for (int i = 0; i < 1000 && w.image.load() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(w.image.load(), 3);
  absl::StatusOr<FsInfo> got = cache.Get();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_GE(got->image.usage.bytes, 200u) << "a background walk's figures";
}

}  // namespace
}  // namespace berth::images
