// Cgroup removal by hand: kill what is left, wait for the directory to empty, rmdir bottom-up.
#include "runtime/cgroups/sweep.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "glog/logging.h"
#include "util/fd.h"

#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

namespace berth::cgroups {
namespace {

constexpr absl::string_view kDirPrefix = "berth-";
constexpr size_t kIdLength = 64;

bool IsCgroupFs(const std::string& path) {
  struct statfs fs;
  if (statfs(path.c_str(), &fs) != 0) return false;
  return fs.f_type == CGROUP_SUPER_MAGIC || fs.f_type == CGROUP2_SUPER_MAGIC;
}

// The sub-directories of dir (cgroups are directories; their files are not).
std::vector<std::string> SubDirs(const std::string& dir) {
  std::vector<std::string> out;
  UniqueDir d(opendir(dir.c_str()));
  if (!d) return out;
  while (dirent* e = readdir(d.get())) {
    if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    out.push_back(absl::StrCat(dir, "/", e->d_name));
  }
  return out;
}

// dir and every cgroup below it, deepest first (the order rmdir needs).
void CollectBottomUp(const std::string& dir, int depth, std::vector<std::string>* out) {
  if (depth < 16) {
    for (const std::string& sub : SubDirs(dir)) CollectBottomUp(sub, depth + 1, out);
  }
  out->push_back(dir);
}

std::vector<pid_t> Procs(const std::string& dir) {
  std::vector<pid_t> out;
  std::ifstream in(dir + "/cgroup.procs");
  pid_t p;
  while (in >> p) out.push_back(p);
  return out;
}

void ThawIfFrozen(const std::string& dir) {
  const std::string state = dir + "/freezer.state";
  std::ifstream in(state);
  std::string s;
  if (!(in >> s) || s == "THAWED") return;
  std::ofstream(state) << "THAWED";
}

// One pass over dirs (deepest first): kills what they hold when `kill`, then tries to remove
// them. Returns true once none is left; `left` describes what stays.
bool RemovePass(const std::vector<std::string>& dirs, bool kill, std::string* left) {
  bool all_gone = true;
  left->clear();
  for (const std::string& d : dirs) {
    if (rmdir(d.c_str()) == 0 || errno == ENOENT) continue;
    const int e = errno;
    all_gone = false;
    std::vector<pid_t> procs = Procs(d);
    if (kill) {
      ThawIfFrozen(d);
      for (pid_t p : procs) ::kill(p, SIGKILL);
    }
    *left = procs.empty()
                ? absl::StrCat(d, ": ", strerror(e))
                : absl::StrCat(d, " still holds process(es) ", absl::StrJoin(procs, ", "));
  }
  return all_gone;
}

}  // namespace

std::vector<std::string> Hierarchies(const std::string& root) {
  struct statfs fs;
  if (statfs(root.c_str(), &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC) return {root};
  std::vector<std::string> out;
  absl::flat_hash_set<dev_t> seen;
  UniqueDir d(opendir(root.c_str()));
  if (!d) return out;
  while (dirent* e = readdir(d.get())) {
    if (e->d_name[0] == '.') continue;
    const std::string path = absl::StrCat(root, "/", e->d_name);
    struct stat st;
    // "cpu,cpuacct" and the like are symlinks to a hierarchy listed under its own name.
    if (lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (!IsCgroupFs(path) || !seen.insert(st.st_dev).second) continue;
    out.push_back(path);
  }
  return out;
}

std::string CgroupOwner(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, kDirPrefix) || name.size() != kIdLength) return "";
  for (char c : name) {
    if (!absl::ascii_isdigit(c) && (c < 'a' || c > 'f')) return "";
  }
  return std::string(name);
}

absl::Status RemoveContainerCgroup(const std::string& cgroups_path, absl::Duration wait,
                                   const std::string& root, bool* found) {
  if (found != nullptr) *found = false;
  if (!absl::StartsWith(cgroups_path, "/") || absl::StrContains(cgroups_path, "..")) {
    return absl::OkStatus();
  }
  std::vector<std::string> dirs;
  for (const std::string& h : Hierarchies(root)) {
    const std::string dir = h + cgroups_path;
    struct stat st;
    if (stat(dir.c_str(), &st) == 0) CollectBottomUp(dir, 0, &dirs);
  }
  if (dirs.empty()) return absl::OkStatus();
  if (found != nullptr) *found = true;
  const absl::Time deadline = absl::Now() + wait;
  std::string left;
  while (!RemovePass(dirs, /*kill=*/true, &left)) {
    if (absl::Now() >= deadline) {
      return absl::FailedPreconditionError(
          absl::StrCat("the cgroup ", cgroups_path, " of a removed container would not go within ",
                       absl::FormatDuration(wait), ": ", left));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::OkStatus();
}

namespace {

void SweepDir(const std::string& dir, int depth, const SweepOptions& o, absl::Time now,
              SweepResult* out) {
  for (const std::string& sub : SubDirs(dir)) {
    const std::string name = sub.substr(sub.rfind('/') + 1);
    const std::string id = CgroupOwner(name);
    if (id.empty()) {
      if (depth + 1 < o.max_depth) SweepDir(sub, depth + 1, o, now, out);
      continue;
    }
    if (o.owned && o.owned(id)) continue;
    struct stat st;
    if (stat(sub.c_str(), &st) != 0) continue;
    if (now - absl::TimeFromTimespec(st.st_mtim) < o.min_age) continue;
    std::vector<std::string> dirs;
    CollectBottomUp(sub, 0, &dirs);
    std::string left;
    if (RemovePass(dirs, /*kill=*/false, &left)) {
      ++out->removed;
    } else {
      out->busy.push_back(left);
    }
  }
}

}  // namespace

SweepResult SweepOrphanCgroups(const SweepOptions& o) {
  SweepResult out;
  const absl::Time now = absl::Now();
  for (const std::string& h : Hierarchies(o.root)) {
    for (const std::string& u : o.under) SweepDir(h + u, 0, o, now, &out);
  }
  return out;
}

CgroupJanitor::CgroupJanitor(Options options) : options_(std::move(options)) {
  thread_ = std::thread([this] { Loop(); });
}

CgroupJanitor::~CgroupJanitor() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void CgroupJanitor::Retry(const std::string& cgroups_path) {
  absl::MutexLock l(&mu_);
  retry_.insert(cgroups_path);
  kicked_ = true;  // a failed removal: look for others like it too
}

void CgroupJanitor::RetryTask(const std::string& key, std::function<bool()> attempt) {
  absl::MutexLock l(&mu_);
  tasks_[key] = std::move(attempt);
}

int CgroupJanitor::swept() const {
  absl::MutexLock l(&mu_);
  return swept_;
}

int CgroupJanitor::pending() const {
  absl::MutexLock l(&mu_);
  return static_cast<int>(retry_.size() + tasks_.size());
}

int CgroupJanitor::sweeps() const {
  absl::MutexLock l(&mu_);
  return sweeps_;
}

void CgroupJanitor::Loop() {
  absl::Time next_sweep = absl::Now();
  for (;;) {
    std::vector<std::string> retry;
    std::vector<std::pair<std::string, std::function<bool()>>> tasks;
    bool sweep = false;
    {
      absl::MutexLock l(&mu_);
      auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || kicked_; };
      const absl::Time until = retry_.empty() && tasks_.empty()
                                   ? next_sweep
                                   : std::min(next_sweep, absl::Now() + options_.retry_interval);
      mu_.AwaitWithDeadline(absl::Condition(&wake), until);
      if (stopping_) return;
      sweep = kicked_ || absl::Now() >= next_sweep;
      kicked_ = false;
      retry.assign(retry_.begin(), retry_.end());
      tasks.assign(tasks_.begin(), tasks_.end());
    }
    for (auto& [key, attempt] : tasks) {
      if (!attempt()) continue;
      LOG(INFO) << "retried in the background and done: " << key;
      absl::MutexLock l(&mu_);
      tasks_.erase(key);
    }
    for (const std::string& path : retry) {
      absl::Status st = RemoveContainerCgroup(path, options_.kill_wait, options_.sweep.root);
      if (st.ok()) {
        LOG(INFO) << "removed the cgroup " << path << " of a removed container on a retry";
        absl::MutexLock l(&mu_);
        retry_.erase(path);
      } else {
        VLOG(1) << st;
      }
    }
    if (!sweep) continue;
    SweepResult r = SweepOrphanCgroups(options_.sweep);
    if (r.removed > 0) LOG(INFO) << "removed " << r.removed << " orphaned berth cgroup directories";
    if (!r.busy.empty()) {
      LOG(WARNING) << r.busy.size() << " orphaned berth cgroup directories hold processes and are "
                   << "left in place, e.g. " << r.busy.front();
    }
    next_sweep = absl::Now() + options_.sweep_interval;
    absl::MutexLock l(&mu_);
    swept_ += r.removed;
    ++sweeps_;
  }
}

}  // namespace berth::cgroups
