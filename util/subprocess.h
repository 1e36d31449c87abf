// Running helper programs (runc, conmon, CNI plugins) without a shell, with bounded time and
// output.
#ifndef BERTH_UTIL_SUBPROCESS_H_
#define BERTH_UTIL_SUBPROCESS_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace berth {

struct RunOptions {
  std::string stdin_data;
  // Extra environment entries ("K=V") added to (or replacing those of) berthd's environment.
  std::vector<std::string> env;
  bool clear_env = false;
  absl::Duration timeout = absl::InfiniteDuration();  // killed with SIGKILL when it passes
  // Called when the timeout passes, before the child is killed; the child then gets a short
  // grace to exit by itself (e.g. runc reaping the command this callback killed).
  std::function<void()> on_timeout;
  size_t max_output = 16 << 20;  // bytes kept of stdout and of stderr
  // Descriptors the child inherits: {parent fd, child fd number}.
  std::vector<std::pair<int, int>> inherit_fds;
  std::string working_dir;
};

struct RunResult {
  int exit_code = -1;   // valid when exited
  int term_signal = 0;  // non-zero when killed by a signal
  bool timed_out = false;
  std::string out;
  std::string err;
  bool out_truncated = false;
  bool err_truncated = false;
  bool ok() const { return !timed_out && term_signal == 0 && exit_code == 0; }
};

// Spawns argv[0] (looked up on PATH when it has no slash) and waits for it.
absl::StatusOr<RunResult> RunProcess(const std::vector<std::string>& argv,
                                     const RunOptions& options = {});

// Spawns without waiting; the caller owns the child and must reap it.
absl::StatusOr<pid_t> SpawnProcess(const std::vector<std::string>& argv, const RunOptions& options,
                                   int stdin_fd, int stdout_fd, int stderr_fd);

// Waits for a child; returns the raw wait status.
absl::StatusOr<int> WaitProcess(pid_t pid);

// A one-line description of a failed run for error messages: command, status, stderr.
std::string DescribeFailure(const std::vector<std::string>& argv, const RunResult& r);

// The absolute path of a program: as given when it has a slash, else looked up on PATH.
absl::StatusOr<std::string> FindProgram(const std::string& name);

}  // namespace berth

#endif  // BERTH_UTIL_SUBPROCESS_H_
