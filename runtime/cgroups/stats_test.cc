// Stats and OOM readers against real v1 cgroups that the test creates, fills and removes.
#include "runtime/cgroups/stats.h"
#include "runtime/cgroups/stats_test_util.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "test/util/busy_child.h"
#include "runtime/cgroups/cgroup_file.h"
#include "runtime/cgroups/cpu_rate.h"
#include "runtime/cgroups/mode.h"
#include "runtime/cgroups/oom.h"

namespace berth::cgroups {
namespace {

constexpr const char* kControllers[] = {"cpu", "cpuacct", "memory", "pids"};

// /sys/fs/cgroup/{cpu,cpuacct,memory,pids}/berth-test-<random>, removed on destruction after
// killing anything still inside.
class TestCgroup {
 public:
  TestCgroup() {
    std::random_device rd;
    name_ = absl::StrCat("berth-test-", absl::Hex(rd(), absl::kZeroPad8));
    for (const char* c : kControllers) {
      std::string dir = absl::StrCat(kCgroupRoot, "/", c, "/", name_);
      if (mkdir(dir.c_str(), 0755) != 0) {
        error_ = absl::StrCat("mkdir ", dir, ": ", strerror(errno));
        return;
      }
      dirs_.push_back(dir);
    }
  }
  ~TestCgroup() {
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
      for (int attempt = 0; attempt < 500; ++attempt) {
        KillMembers(*it);
        if (rmdir(it->c_str()) == 0 || errno == ENOENT) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }
  TestCgroup(const TestCgroup&) = delete;
  TestCgroup& operator=(const TestCgroup&) = delete;

  const std::string& error() const { return error_; }
  std::string path() const { return "/" + name_; }

  bool Write(const char* controller, const char* file, const std::string& value) {
    std::ofstream out(absl::StrCat(kCgroupRoot, "/", controller, "/", name_, "/", file));
    out << value;
    out.flush();
    return out.good();
  }
  bool Add(pid_t pid) {
    for (const char* c : kControllers) {
      if (!Write(c, "cgroup.procs", std::to_string(pid))) return false;
    }
    return true;
  }

 private:
  static void KillMembers(const std::string& dir) {
    std::ifstream in(dir + "/cgroup.procs");
    pid_t pid;
    while (in >> pid) kill(pid, SIGKILL);
  }
  std::string name_;
  std::string error_;
  std::vector<std::string> dirs_;
};

using test::BusyChild;

class CgroupStatsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to create cgroups";
    absl::StatusOr<CgroupMode> mode = DetectCgroupMode();
    ASSERT_TRUE(mode.ok()) << mode.status();
    if (*mode == CgroupMode::kUnified) GTEST_SKIP() << "this test drives v1 hierarchies";
    mode_ = *mode;
  }
  CgroupMode mode_ = CgroupMode::kLegacy;
};

TEST_F(CgroupStatsTest, BusyChildShowsGrowingCpuMemoryAndOnePid) {
  TestCgroup cg;
  ASSERT_EQ(cg.error(), "");
  CgroupStats first, later;
  ReadBusyChild([&](pid_t pid) { return cg.Add(pid); }, [&] { return ReadStats(cg.path(), mode_); },
                &first, &later);
  if (HasFatalFailure()) return;
  EXPECT_GT(later.timestamp_ns, first.timestamp_ns);

  ExpectCpuRate(first, later);
}

TEST_F(CgroupStatsTest, MemoryLimitIsReported) {
  TestCgroup cg;
  ASSERT_EQ(cg.error(), "");
  ASSERT_TRUE(cg.Write("memory", "memory.limit_in_bytes", std::to_string(64 << 20)));
  absl::StatusOr<CgroupStats> s = ReadStats(cg.path(), mode_);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->memory_limit_bytes, uint64_t{64} << 20);
  EXPECT_EQ(s->pids_current, 0u);
}

TEST_F(CgroupStatsTest, OomKillIsCounted) {
  TestCgroup cg;
  ASSERT_EQ(cg.error(), "");
  constexpr int64_t kLimit = 16 << 20;
  ASSERT_TRUE(cg.Write("memory", "memory.limit_in_bytes", std::to_string(kLimit)));
  // Without swap accounting the child could swap instead of being killed.
  if (SwapControllerAvailable(mode_)) {
    ASSERT_TRUE(cg.Write("memory", "memory.memsw.limit_in_bytes", std::to_string(kLimit)));
  }
  absl::StatusOr<uint64_t> before = ReadOomKillCount(cg.path(), mode_);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(*before, 0u);

  ASSERT_EQ(test::RunIntoOomKill([&](pid_t pid) { return cg.Add(pid); }), "");

  absl::StatusOr<uint64_t> after = ReadOomKillCount(cg.path(), mode_);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, 1u);
}

TEST_F(CgroupStatsTest, MissingCgroupIsNotFoundNamingIt) {
  absl::StatusOr<CgroupStats> s = ReadStats("/berth-test-does-not-exist", mode_);
  EXPECT_TRUE(absl::IsNotFound(s.status())) << s.status();
  EXPECT_NE(s.status().message().find("/berth-test-does-not-exist"), std::string::npos);
  EXPECT_TRUE(absl::IsNotFound(ReadOomKillCount("/berth-test-does-not-exist", mode_).status()));
}

TEST_F(CgroupStatsTest, ThousandReadsForTheRecord) {
  // Prints what a ListContainerStats over 1,000 containers costs in cgroup reads; the figure is
  // recorded, not asserted.
  TestCgroup cg;
  ASSERT_EQ(cg.error(), "");
  BusyChild child(1 << 20);
  ASSERT_TRUE(cg.Add(child.pid()));
  child.Go();
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i) {
    absl::StatusOr<CgroupStats> s = ReadStats(cg.path(), mode_);
    ASSERT_TRUE(s.ok()) << s.status();
  }
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
  RecordProperty("read_stats_1000_ms", std::to_string(ms.count()));
  std::printf("ReadStats x1000: %.1f ms\n", ms.count());
}

TEST(CgroupFileTest, ParsesNumbersAndKeyedLines) {
  EXPECT_EQ(internal::ParseUint("12345\n"), 12345u);
  EXPECT_FALSE(internal::ParseUint("max\n").has_value());
  absl::string_view stat = "rss 10\ntotal_rss 20\ntotal_rss_huge 30\noom_kill 2\n";
  EXPECT_EQ(internal::KeyedValue(stat, "rss"), 10u);
  EXPECT_EQ(internal::KeyedValue(stat, "total_rss"), 20u);
  EXPECT_EQ(internal::KeyedValue(stat, "oom_kill"), 2u);
  EXPECT_FALSE(internal::KeyedValue(stat, "total").has_value());
}

}  // namespace
}  // namespace berth::cgroups
