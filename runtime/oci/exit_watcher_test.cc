// ExitWatcher: exit files and monitor deaths reach their callbacks, from the watcher's thread.
#include "runtime/oci/exit_watcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "test/util/temp_dir.h"
#include "util/fs.h"

namespace berth::oci {
namespace {

using test::TempDir;

constexpr char kId[] = "0123456789abcdef0123456789abcdef";

// What the callbacks saw.
class Seen {
 public:
  void Add(const std::string& id) {
    absl::MutexLock l(&mu_);
    ids_.push_back(id);
  }
  // Waits (bounded) until `n` reports arrived; returns them.
  std::vector<std::string> Wait(size_t n) {
    absl::MutexLock l(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ids_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(20));
    return ids_;
  }
  size_t size() {
    absl::MutexLock l(&mu_);
    return ids_.size();
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> ids_ ABSL_GUARDED_BY(mu_);
};

// A child whose argv names the container, as conmon's `-c <id>` does; killed and reaped at the end.
class FakeMonitor {
 public:
  explicit FakeMonitor(const std::string& id) {
    pid_ = fork();
    if (pid_ == 0) {
      execl("/bin/sleep", id.c_str(), "1000", nullptr);  // argv[0] is the id
      _exit(127);
    }
    // Until the exec is done and the argv is the fake monitor's.
    for (int i = 0; i < 200 && !IsMonitorOf(pid_, id); ++i) usleep(10000);
  }
  ~FakeMonitor() { Kill(); }
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// A watcher over <dir>/exits that reports the monitors it sees die into `gone_` (exit files are
// not looked at).
class MonitorWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto w = ExitWatcher::Start(
        dir_.path() + "/exits", [](const std::string&) {},
        [this](const std::string& id) { gone_.Add(id); });
    ASSERT_TRUE(w.ok()) << w.status();
    w_ = std::move(*w);
  }

  TempDir dir_;
  Seen gone_;
  std::unique_ptr<ExitWatcher> w_;
};

TEST(ExitWatcherTest, ExitFilesAreReported) {
  TempDir dir;
  Seen exits;
  auto w = ExitWatcher::Start(dir.path() + "/exits", [&](const std::string& id) { exits.Add(id); });
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/exits/" + kId, "0").ok());
  EXPECT_EQ(exits.Wait(1), std::vector<std::string>{kId});
}

TEST(ExitWatcherTest, IsMonitorOfLooksForTheIdAmongTheArguments) {
  FakeMonitor m(kId);
  ASSERT_GT(m.pid(), 0);
  EXPECT_TRUE(IsMonitorOf(m.pid(), kId));
  EXPECT_FALSE(IsMonitorOf(m.pid(), "another"));
  EXPECT_FALSE(IsMonitorOf(getpid(), kId));
  EXPECT_FALSE(IsMonitorOf(0, kId));
}

TEST_F(MonitorWatchTest, AMonitorThatDiesIsReportedOnce) {
  FakeMonitor m(kId);
  w_->WatchMonitor(kId, m.pid());
  EXPECT_EQ(w_->monitors(), 1u);
  EXPECT_EQ(gone_.size(), 0u);
  m.Kill();
  EXPECT_EQ(gone_.Wait(1), std::vector<std::string>{kId});
  EXPECT_EQ(w_->monitors(), 0u);
}

TEST(ExitWatcherTest, AMonitorAlreadyGoneOrAnotherProcessIsReportedFromTheWatcherThread) {
  TempDir dir;
  Seen gone;
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<bool> from_caller = false;
  auto w = ExitWatcher::Start(
      dir.path() + "/exits", [](const std::string&) {},
      [&](const std::string& id) {
        if (std::this_thread::get_id() == caller) from_caller = true;
        gone.Add(id);
      });
  ASSERT_TRUE(w.ok()) << w.status();
  FakeMonitor m(kId);
  const pid_t dead = m.pid();
  m.Kill();
  (*w)->WatchMonitor(kId, dead);                    // no such process any more
  (*w)->WatchMonitor("other-container", getpid());  // alive, but not that container's monitor
  std::vector<std::string> seen = gone.Wait(2);
  EXPECT_EQ(seen, (std::vector<std::string>{kId, "other-container"}));
  EXPECT_FALSE(from_caller);
  EXPECT_EQ((*w)->monitors(), 0u);
}

TEST_F(MonitorWatchTest, AForgottenMonitorIsNotReported) {
  FakeMonitor forgotten(kId);
  FakeMonitor watched("second-container");
  w_->WatchMonitor(kId, forgotten.pid());
  w_->WatchMonitor("second-container", watched.pid());
  w_->ForgetMonitor(kId);
  forgotten.Kill();
  watched.Kill();
  // The second report proves the loop ran past the first death.
  EXPECT_EQ(gone_.Wait(1), std::vector<std::string>{"second-container"});
  EXPECT_EQ(w_->monitors(), 0u);
}

TEST_F(MonitorWatchTest, AMonitorThatCannotBeWatchedForWantOfDescriptorsIsNotReportedGone) {
  FakeMonitor alive(kId);
  FakeMonitor second("second-container");
  {
    // Use up every descriptor the limit allows, then watch: pidfd_open fails with EMFILE.
    rlimit old;
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
    rlimit low = old;
    low.rlim_cur = 256;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    std::vector<UniqueFd> fillers;
    for (;;) {
      UniqueFd fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
      if (!fd.valid()) break;
      fillers.push_back(std::move(fd));
    }
    w_->WatchMonitor(kId, alive.pid());
    fillers.clear();
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  }
  EXPECT_EQ(w_->monitors(), 0u);
  // Reports come in order: had the first been taken for dead, it would come before this one.
  w_->WatchMonitor("second-container", second.pid());
  second.Kill();
  EXPECT_EQ(gone_.Wait(1), std::vector<std::string>{"second-container"});
}

TEST_F(MonitorWatchTest, ManyMonitorsAreWatchedTogether) {
  std::vector<std::unique_ptr<FakeMonitor>> ms;
  for (int i = 0; i < 50; ++i) {
    ms.push_back(std::make_unique<FakeMonitor>(absl::StrCat("container-", i)));
    w_->WatchMonitor(absl::StrCat("container-", i), ms.back()->pid());
  }
  EXPECT_EQ(w_->monitors(), 50u);
  for (auto& m : ms) m->Kill();
  EXPECT_EQ(gone_.Wait(50).size(), 50u);
  EXPECT_EQ(w_->monitors(), 0u);
}

}  // namespace
}  // namespace berth::oci
