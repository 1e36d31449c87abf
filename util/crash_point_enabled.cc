// The crash points of //server:berthd_crash_points (util/crash_point.h): BERTH_CRASH_AT picks
// one, BERTH_CRASH_POINTS_LOG records every one reached.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "util/crash_point.h"

namespace berth {
namespace {

struct Plan {
  std::string at;   // "what:detail"
  int nth = 1;      // the how-manieth time it is reached
  std::string log;  // where every point reached goes
  absl::Mutex mu;
  std::map<std::string, int> reached ABSL_GUARDED_BY(mu);
};

Plan& ThePlan() {
  static Plan plan;
  static const bool read = [] {
    if (const char* at = getenv("BERTH_CRASH_AT"); at != nullptr) {
      std::string s = at;
      const size_t hash = s.rfind('#');
      if (hash != std::string::npos && absl::SimpleAtoi(s.substr(hash + 1), &plan.nth)) {
        s.resize(hash);
      }
      plan.at = s;
    }
    if (const char* log = getenv("BERTH_CRASH_POINTS_LOG"); log != nullptr) plan.log = log;
    return true;
  }();
  (void)read;
  return plan;
}

void WriteAll(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = write(fd, s.data() + done, s.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

}  // namespace

void CrashPoint(const char* what, const char* detail) {
  Plan& plan = ThePlan();
  const std::string name = absl::StrCat(what, ":", detail);
  absl::MutexLock l(&plan.mu);
  const int n = ++plan.reached[name];
  const std::string line = absl::StrCat(name, "#", n, "\n");
  if (!plan.log.empty()) {
    int fd = open(plan.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      WriteAll(fd, line);
      close(fd);
    }
  }
  if (name == plan.at && n == plan.nth) {
    WriteAll(STDERR_FILENO, "crash point " + line);
    kill(getpid(), SIGKILL);  // as `kill -9` would: no destructor, no flush, no goodbye
    pause();
  }
}

}  // namespace berth
