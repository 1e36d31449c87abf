// Mode detection, stats and OOM readers against real cgroup v2 directories the test creates,
// fills and removes. Skips on a v1/hybrid host; runs for real in the VM (test/vm/run.sh).
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "runtime/cgroups/cpu_rate.h"
#include "runtime/cgroups/mode.h"
#include "runtime/cgroups/oom.h"
#include "runtime/cgroups/stats.h"
#include "runtime/cgroups/stats_test_util.h"
#include "test/util/busy_child.h"

namespace berth::cgroups {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool WriteTo(const std::string& path, const std::string& value) {
  std::ofstream out(path);
  out << value;
  out.flush();
  return out.good();
}

// /sys/fs/cgroup/berth-v2-test-<random> with cpu, memory, pids (and io when offered) enabled
// for it in the root's subtree_control; removed on destruction after killing what is inside.
class TestCgroupV2 {
 public:
  TestCgroupV2() {
    std::random_device rd;
    name_ = absl::StrCat("berth-v2-test-", absl::Hex(rd(), absl::kZeroPad8));
    std::string offered = ReadAll(absl::StrCat(kCgroupRoot, "/cgroup.controllers"));
    for (const char* c : {"cpu", "memory", "pids", "io"}) {
      if (!absl::StrContains(absl::StrCat(" ", offered, " "), absl::StrCat(" ", c))) continue;
      // systemd usually enabled them already; writing an enabled one again is harmless.
      if (!WriteTo(absl::StrCat(kCgroupRoot, "/cgroup.subtree_control"), absl::StrCat("+", c))) {
        error_ = absl::StrCat("cannot enable ", c, " in ", kCgroupRoot, "/cgroup.subtree_control");
        return;
      }
    }
    dir_ = absl::StrCat(kCgroupRoot, "/", name_);
    if (mkdir(dir_.c_str(), 0755) != 0)
      error_ = absl::StrCat("mkdir ", dir_, ": ", strerror(errno));
  }
  ~TestCgroupV2() {
    if (!error_.empty() && dir_.empty()) return;
    for (int attempt = 0; attempt < 500; ++attempt) {
      std::ifstream in(dir_ + "/cgroup.procs");
      for (pid_t pid; in >> pid;) kill(pid, SIGKILL);
      if (rmdir(dir_.c_str()) == 0 || errno == ENOENT) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  TestCgroupV2(const TestCgroupV2&) = delete;
  TestCgroupV2& operator=(const TestCgroupV2&) = delete;

  const std::string& error() const { return error_; }
  std::string path() const { return "/" + name_; }  // a cgroupfs cgroupsPath
  bool Write(const char* file, const std::string& value) {
    return WriteTo(absl::StrCat(dir_, "/", file), value);
  }
  std::string Read(const char* file) const { return ReadAll(absl::StrCat(dir_, "/", file)); }
  bool Add(pid_t pid) { return Write("cgroup.procs", std::to_string(pid)); }

 private:
  std::string name_;
  std::string dir_;
  std::string error_;
};

class CgroupV2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<CgroupMode> mode = DetectCgroupMode();
    ASSERT_TRUE(mode.ok()) << mode.status();
    if (*mode != CgroupMode::kUnified) {
      // The VM (test/vm/run.sh) boots a pure v2 host: skipping there would hide a regression.
      ASSERT_EQ(getenv("BERTH_VM"), nullptr) << "the VM is not on a pure cgroup v2 hierarchy";
      GTEST_SKIP() << "needs a pure cgroup v2 host (this one is " << CgroupModeName(*mode)
                   << "): run test/vm/run.sh";
    }
    if (geteuid() != 0) GTEST_SKIP() << "needs root to create cgroups";
  }
};

TEST_F(CgroupV2Test, HostOffersTheControllersBerthLimits) {
  std::string offered = ReadAll(absl::StrCat(kCgroupRoot, "/cgroup.controllers"));
  for (const char* c : {"cpu", "memory", "pids", "io"}) {
    EXPECT_TRUE(absl::StrContains(offered, c)) << c << " missing from: " << offered;
  }
  // hugetlb sizes are offered exactly when the controller is.
  std::vector<std::string> sizes = HugetlbPageSizes(CgroupMode::kUnified);
  if (absl::StrContains(offered, "hugetlb")) {
    EXPECT_FALSE(sizes.empty()) << "hugetlb offered but no page sizes found";
    for (const std::string& s : sizes) EXPECT_TRUE(absl::EndsWith(s, "B")) << s;
  } else {
    EXPECT_TRUE(sizes.empty());
  }
}

TEST_F(CgroupV2Test, BusyChildShowsGrowingCpuMemoryAndOnePid) {
  TestCgroupV2 cg;
  ASSERT_EQ(cg.error(), "");
  CgroupStats first, later;
  ReadBusyChild([&](pid_t pid) { return cg.Add(pid); },
                [&] { return ReadStats(cg.path(), CgroupMode::kUnified); }, &first, &later);
  if (HasFatalFailure()) return;

  // The figures are the kernel's: cpu.stat usage_usec and memory.current read directly agree.
  uint64_t usec = 0;
  for (absl::string_view line : absl::StrSplit(cg.Read("cpu.stat"), '\n')) {
    if (absl::ConsumePrefix(&line, "usage_usec "))
      usec = std::strtoull(std::string(line).c_str(), nullptr, 10);
  }
  EXPECT_GE(usec * 1000, later.cpu_usage_ns);

  ExpectCpuRate(first, later);
}

TEST_F(CgroupV2Test, MemoryMaxIsTheReportedLimit) {
  TestCgroupV2 cg;
  ASSERT_EQ(cg.error(), "");
  ASSERT_TRUE(cg.Write("memory.max", std::to_string(64 << 20)));
  absl::StatusOr<CgroupStats> s = ReadStats(cg.path(), CgroupMode::kUnified);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->memory_limit_bytes, uint64_t{64} << 20);
  EXPECT_TRUE(s->has_pids);
  EXPECT_EQ(s->pids_current, 0u);
}

TEST_F(CgroupV2Test, OomKillIsCountedFromMemoryEvents) {
  TestCgroupV2 cg;
  ASSERT_EQ(cg.error(), "");
  ASSERT_TRUE(cg.Write("memory.max", std::to_string(16 << 20)));
  // With swap the child could page out instead of being killed.
  if (SwapControllerAvailable(CgroupMode::kUnified)) ASSERT_TRUE(cg.Write("memory.swap.max", "0"));
  absl::StatusOr<uint64_t> before = ReadOomKillCount(cg.path(), CgroupMode::kUnified);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(*before, 0u);

  ASSERT_EQ(test::RunIntoOomKill([&](pid_t pid) { return cg.Add(pid); }), "");

  absl::StatusOr<uint64_t> after = ReadOomKillCount(cg.path(), CgroupMode::kUnified);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, 1u) << cg.Read("memory.events");
}

TEST_F(CgroupV2Test, SystemdSliceCgroupsPathReadsTheScopeDirectory) {
  // A scope under a nested slice, laid out the way systemd does, read through the systemd form
  // of cgroupsPath: the directory CgroupRelativeDir derives is the one systemd would make.
  TestCgroupV2 cg;
  ASSERT_EQ(cg.error(), "");
  // The test's cgroup stands in for the root: <dir>/b.slice/b-c.slice/berth-x1.scope.
  std::string base = absl::StrCat(kCgroupRoot, cg.path());
  ASSERT_TRUE(WriteTo(base + "/cgroup.subtree_control", "+memory +pids"));
  for (const char* d : {"/b.slice", "/b.slice/b-c.slice", "/b.slice/b-c.slice/berth-x1.scope"}) {
    ASSERT_EQ(mkdir((base + d).c_str(), 0755), 0) << d << ": " << strerror(errno);
  }
  ASSERT_TRUE(WriteTo(base + "/b.slice/cgroup.subtree_control", "+memory +pids"));
  ASSERT_TRUE(WriteTo(base + "/b.slice/b-c.slice/cgroup.subtree_control", "+memory +pids"));
  absl::StatusOr<CgroupStats> s = ReadStats("b-c.slice:berth:x1", CgroupMode::kUnified, base);
  EXPECT_TRUE(s.ok()) << s.status();
  if (s.ok()) EXPECT_TRUE(s->has_memory && s->has_pids);
  for (const char* d : {"/b.slice/b-c.slice/berth-x1.scope", "/b.slice/b-c.slice", "/b.slice"}) {
    rmdir((base + d).c_str());
  }
}

}  // namespace
}  // namespace berth::cgroups
