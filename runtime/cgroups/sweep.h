// Removing the cgroups runc made for berth's containers (cgroupfs driver) when runc did not:
// one container's after its removal, and every orphaned `berth-<id>` one in a sweep.
#ifndef BERTH_RUNTIME_CGROUPS_SWEEP_H_
#define BERTH_RUNTIME_CGROUPS_SWEEP_H_

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/cgroups/mode.h"

namespace berth::cgroups {

// Where each hierarchy is mounted: the root itself on cgroup v2; on v1 and hybrid every cgroup
// and cgroup2 mount directly under it (the unified one included), each once.
std::vector<std::string> Hierarchies(const std::string& root = kCgroupRoot);

// The id a `berth-<64 hex>` cgroup directory name belongs to; empty for any other name.
std::string CgroupOwner(absl::string_view dir_name);

// Removes the cgroup of cgroupfs path `cgroups_path` (e.g. "/berth/berth-<id>") in every
// hierarchy, nested cgroups first: what still runs in it is killed (SIGKILL; thawed first if
// frozen) and waited for up to `wait`. OK when it is absent. FailedPrecondition naming the
// directory and what is left when it will not go. A systemd-driver path ("slice:berth:id") is
// left alone: systemd removes a scope once it is empty. *found (may be null): whether there was
// anything to remove.
absl::Status RemoveContainerCgroup(const std::string& cgroups_path, absl::Duration wait,
                                   const std::string& root = kCgroupRoot, bool* found = nullptr);

struct SweepOptions {
  std::string root = kCgroupRoot;
  // Whether a container id is one berth still has: its cgroup stays.
  std::function<bool(const std::string& id)> owned;
  // Younger cgroups stay: one may be a container whose creation is under way right now (runc
  // makes the directory before berth's record of it can be found by id), or another berthd's.
  absl::Duration min_age = absl::Minutes(10);
  int max_depth = 8;  // kubelet's pod cgroups sit at depth 3-4 ("/kubepods/burstable/pod<uid>")
  // Where in each hierarchy to look ("" is its root; tests keep to a parent of their own).
  std::vector<std::string> under = {""};
};

struct SweepResult {
  int removed = 0;                // orphaned directories removed (one per hierarchy)
  std::vector<std::string> busy;  // orphaned but still holding processes: left alone
};

// Walks every hierarchy for `berth-<id>` cgroups no owned() container has, older than min_age,
// and removes those that hold no process. Never kills: a process in an orphaned cgroup is not
// berth's to judge.
SweepResult SweepOrphanCgroups(const SweepOptions& options);

// A background thread that sweeps once at start, again whenever a removal failed and every
// sweep_interval, and retries failed removals (killing what is left) until they succeed.
class CgroupJanitor {
 public:
  struct Options {
    SweepOptions sweep;
    absl::Duration sweep_interval = absl::Hours(1);
    absl::Duration retry_interval = absl::Seconds(5);
    absl::Duration kill_wait = absl::Seconds(2);
  };
  explicit CgroupJanitor(Options options);
  ~CgroupJanitor();
  CgroupJanitor(const CgroupJanitor&) = delete;
  CgroupJanitor& operator=(const CgroupJanitor&) = delete;

  // A container's cgroup that RemoveContainerCgroup could not remove: retried until it goes.
  void Retry(const std::string& cgroups_path);
  // Any other leftover (a `runc delete` that failed): `attempt` runs every retry_interval, on the
  // janitor's thread, until it returns true. A second task under the same key replaces the first.
  void RetryTask(const std::string& key, std::function<bool()> attempt);
  int swept() const;    // orphaned directories removed so far
  int pending() const;  // failed removals and tasks still being retried
  int sweeps() const;   // sweeps finished

 private:
  void Loop();

  const Options options_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool kicked_ ABSL_GUARDED_BY(mu_) = true;  // the sweep at start
  absl::flat_hash_set<std::string> retry_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::function<bool()>> tasks_ ABSL_GUARDED_BY(mu_);
  int swept_ ABSL_GUARDED_BY(mu_) = 0;
  int sweeps_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;  // last
};

}  // namespace berth::cgroups

#endif  // BERTH_RUNTIME_CGROUPS_SWEEP_H_
