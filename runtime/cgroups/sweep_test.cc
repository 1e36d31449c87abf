// Cgroup removal and the orphan sweep on the host's real cgroup hierarchies (root), inside a
// parent cgroup of the test's own that is removed afterwards.
#include "runtime/cgroups/sweep.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace berth::cgroups {
namespace {

std::string Id(char c) { return std::string(64, c); }

bool Exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

// A sleeping child, killed and reaped at the end.
class Child {
 public:
  Child() {
    pid_ = fork();
    if (pid_ == 0) {
      for (;;) pause();
    }
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  // Whether it has been killed (reaps it).
  bool Dead() {
    int status = 0;
    if (waitpid(pid_, &status, 0) != pid_) return false;
    pid_ = -1;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  }

 private:
  pid_t pid_ = -1;
};

class SweepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    hierarchies_ = Hierarchies();
    if (hierarchies_.empty()) GTEST_SKIP() << "no cgroup hierarchy under " << kCgroupRoot;
    parent_ = absl::StrCat("/berth-sweep-test-", getpid());
  }
  void TearDown() override {
    // Whatever a failed test left, children first.
    for (const std::string& h : hierarchies_) {
      for (const std::string& c : made_) rmdir((h + c).c_str());
      rmdir((h + parent_).c_str());
    }
  }
  // Makes parent_/name in every hierarchy.
  std::string Make(const std::string& name) {
    const std::string rel = absl::StrCat(parent_, "/", name);
    for (const std::string& h : hierarchies_) {
      mkdir((h + parent_).c_str(), 0755);
      EXPECT_EQ(mkdir((h + rel).c_str(), 0755), 0) << h + rel << ": " << strerror(errno);
    }
    made_.insert(made_.begin(), rel);
    return rel;
  }
  // Moves pid into rel where the hierarchy lets it (a v1 cpuset needs cpus and mems first).
  bool Join(const std::string& rel, pid_t pid) {
    bool any = false;
    for (const std::string& h : hierarchies_) {
      std::ofstream procs(h + rel + "/cgroup.procs");
      procs << pid << std::flush;
      any = any || procs.good();
    }
    return any;
  }
  void Backdate(const std::string& rel) {
    for (const std::string& h : hierarchies_) {
      timeval old[2] = {{1, 0}, {1, 0}};
      EXPECT_EQ(utimes((h + rel).c_str(), old), 0) << h + rel;
    }
  }
  bool AnyLeft(const std::string& rel) {
    for (const std::string& h : hierarchies_) {
      if (Exists(h + rel)) return true;
    }
    return false;
  }

  std::vector<std::string> hierarchies_;
  std::string parent_;
  std::vector<std::string> made_;
};

TEST(CgroupOwnerTest, OnlyBerthsOwnNamesHaveAnOwner) {
  EXPECT_EQ(CgroupOwner("berth-" + Id('a')), Id('a'));
  EXPECT_EQ(CgroupOwner("berth-" + Id('a') + ".scope"), "");
  EXPECT_EQ(CgroupOwner("berth-" + std::string(63, 'a')), "");
  EXPECT_EQ(CgroupOwner("berth-" + std::string(64, 'A')), "");
  EXPECT_EQ(CgroupOwner("crio-" + Id('a')), "");
  EXPECT_EQ(CgroupOwner("berth"), "");
}

TEST_F(SweepTest, HierarchiesAreTheMountedOnes) {
  for (const std::string& h : hierarchies_) EXPECT_TRUE(Exists(h + "/cgroup.procs")) << h;
}

TEST_F(SweepTest, RemovingAContainerCgroupKillsWhatIsLeftInIt) {
  const std::string rel = Make("berth-" + Id('1'));
  Make("berth-" + Id('1') + "/nested");
  Child child;
  ASSERT_TRUE(Join(rel + "/nested", child.pid()));
  bool found = false;
  ASSERT_TRUE(RemoveContainerCgroup(rel, absl::Seconds(10), kCgroupRoot, &found).ok());
  EXPECT_TRUE(found);
  EXPECT_FALSE(AnyLeft(rel));
  EXPECT_TRUE(child.Dead());
  // Absent is fine: removal is idempotent.
  EXPECT_TRUE(RemoveContainerCgroup(rel, absl::Seconds(1), kCgroupRoot, &found).ok());
  EXPECT_FALSE(found);
  // A systemd-driver path is systemd's.
  EXPECT_TRUE(RemoveContainerCgroup("system.slice:berth:" + Id('1'), absl::Seconds(1)).ok());
}

TEST_F(SweepTest, TheSweepRemovesOldEmptyOrphansOnly) {
  const std::string orphan = Make("berth-" + Id('2'));
  const std::string owned = Make("berth-" + Id('3'));
  const std::string young = Make("berth-" + Id('4'));
  const std::string busy = Make("berth-" + Id('5'));
  const std::string other = Make("kubepods-" + Id('6'));
  for (const std::string& r : {orphan, owned, busy, other}) Backdate(r);
  Child child;
  ASSERT_TRUE(Join(busy, child.pid()));

  SweepOptions o;
  o.owned = [](const std::string& id) { return id == Id('3'); };
  o.min_age = absl::Minutes(10);
  o.under = {parent_};
  SweepResult r = SweepOrphanCgroups(o);
  EXPECT_FALSE(AnyLeft(orphan));
  EXPECT_GE(r.removed, 1);
  for (const std::string& kept : {owned, young, busy, other}) EXPECT_TRUE(AnyLeft(kept)) << kept;
  bool busy_reported = false;
  for (const std::string& b : r.busy)
    busy_reported = busy_reported || b.find(busy) != std::string::npos;
  EXPECT_TRUE(busy_reported);
  // The sweep never kills: the process in the orphan it left is alive.
  EXPECT_EQ(kill(child.pid(), 0), 0);
}

TEST_F(SweepTest, TheJanitorSweepsAtStartAndRetriesFailedRemovals) {
  const std::string orphan = Make("berth-" + Id('7'));
  Backdate(orphan);
  const std::string failed = Make("berth-" + Id('8'));
  CgroupJanitor::Options o;
  o.sweep.owned = [](const std::string& id) { return id == Id('8'); };  // still "known"
  o.sweep.under = {parent_};
  o.retry_interval = absl::Milliseconds(50);
  CgroupJanitor janitor(o);
  janitor.Retry(failed);
  std::atomic<int> attempts = 0;
  janitor.RetryTask("a runc delete", [&] { return ++attempts == 3; });  // done on its third try
  // Generous: on a loaded machine with cgroup v1 an rmdir in each of a dozen hierarchies can take
  // seconds (CI once needed more than 10 s for the first round), and the task registered after
  // the janitor's first round waits for its next one.
  const absl::Time deadline = absl::Now() + absl::Seconds(90);
  while ((janitor.sweeps() == 0 || janitor.pending() > 0) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(25));
  }
  EXPECT_GE(janitor.sweeps(), 1);
  EXPECT_EQ(janitor.pending(), 0);
  EXPECT_FALSE(AnyLeft(orphan));
  EXPECT_FALSE(AnyLeft(failed));
  EXPECT_EQ(attempts, 3);
}

}  // namespace
}  // namespace berth::cgroups
