// posix_spawn-based process running: no shell, no page-table copy, pipes drained with poll.
#include "util/subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "util/fd.h"

extern char** environ;

namespace berth {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(errno)));
}

std::vector<std::string> BuildEnv(const RunOptions& o) {
  std::map<std::string, std::string> env;
  if (!o.clear_env) {
    for (char** e = environ; *e; ++e) {
      std::string kv(*e);
      env[kv.substr(0, kv.find('='))] = kv;
    }
  }
  for (const auto& kv : o.env) env[kv.substr(0, kv.find('='))] = kv;
  std::vector<std::string> out;
  for (auto& [k, v] : env) out.push_back(std::move(v));
  return out;
}

}  // namespace

absl::StatusOr<std::string> FindProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (access(name.c_str(), X_OK) != 0) {
      return absl::NotFoundError(absl::StrCat(name, " is not an executable file"));
    }
    return name;
  }
  const char* path = getenv("PATH");
  std::string dirs = path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (absl::string_view dir : absl::StrSplit(dirs, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", name);
    struct stat st;
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return absl::NotFoundError(absl::StrCat(name, " not found on PATH"));
}

absl::StatusOr<pid_t> SpawnProcess(const std::vector<std::string>& argv, const RunOptions& options,
                                   int stdin_fd, int stdout_fd, int stderr_fd) {
  if (argv.empty()) return absl::InvalidArgumentError("empty command");
  absl::StatusOr<std::string> prog = FindProgram(argv[0]);
  if (!prog.ok()) return prog.status();

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The child starts with default signal handling and an empty mask whatever berthd blocks.
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  auto dup = [&](int from, int to) {
    if (from == to) {
      // Clear close-on-exec by dup'ing through a scratch number is not possible here; the caller
      // passes descriptors without O_CLOEXEC when they already sit at the target number.
      return;
    }
    posix_spawn_file_actions_adddup2(&actions, from, to);
  };
  dup(stdin_fd, 0);
  dup(stdout_fd, 1);
  dup(stderr_fd, 2);
  for (const auto& [from, to] : options.inherit_fds) dup(from, to);
  if (!options.working_dir.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, options.working_dir.c_str());
  }

  std::vector<std::string> env = BuildEnv(options);
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);

  pid_t pid = -1;
  int rc = posix_spawn(&pid, prog->c_str(), &actions, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("spawning ", *prog, ": ", strerror(rc)));
  }
  return pid;
}

absl::StatusOr<int> WaitProcess(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Errno(absl::StrCat("waiting for process ", pid));
  }
  return status;
}

absl::StatusOr<RunResult> RunProcess(const std::vector<std::string>& argv,
                                     const RunOptions& options) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) < 0) return Errno("pipe");
  UniqueFd in_r(in[0]), in_w(in[1]);
  if (pipe2(out, O_CLOEXEC) < 0) return Errno("pipe");
  UniqueFd out_r(out[0]), out_w(out[1]);
  if (pipe2(err, O_CLOEXEC) < 0) return Errno("pipe");
  UniqueFd err_r(err[0]), err_w(err[1]);

  absl::StatusOr<pid_t> pid = SpawnProcess(argv, options, in_r.get(), out_w.get(), err_w.get());
  if (!pid.ok()) return pid.status();
  in_r.reset();
  out_w.reset();
  err_w.reset();

  RunResult result;
  size_t written = 0;
  if (options.stdin_data.empty()) in_w.reset();
  // A child that exits without reading its stdin must cost an EPIPE, not a SIGPIPE that kills
  // the caller: block it on this thread while writing and swallow one that became pending.
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  struct RestoreMask {
    sigset_t set, old;
    ~RestoreMask() {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) && !sigismember(&old, SIGPIPE)) {
        timespec zero{0, 0};
        sigtimedwait(&set, nullptr, &zero);
      }
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
  } restore{pipe_set, old_set};
  fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
  const absl::Time deadline = absl::Now() + options.timeout;
  char buf[16384];
  while (out_r.valid() || err_r.valid() || in_w.valid()) {
    pollfd fds[3];
    int n = 0;
    if (out_r.valid()) fds[n++] = {out_r.get(), POLLIN, 0};
    if (err_r.valid()) fds[n++] = {err_r.get(), POLLIN, 0};
    if (in_w.valid()) fds[n++] = {in_w.get(), POLLOUT, 0};
    int wait_ms = -1;
    if (options.timeout != absl::InfiniteDuration()) {
      absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        result.timed_out = true;
        break;
      }
      wait_ms = static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
    }
    int rc = poll(fds, n, wait_ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) break;
    for (int i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      if (fds[i].fd == in_w.get()) {
        ssize_t w = write(in_w.get(), options.stdin_data.data() + written,
                          options.stdin_data.size() - written);
        if (w > 0) written += w;
        if (w < 0 && errno != EAGAIN) in_w.reset();
        if (written == options.stdin_data.size()) in_w.reset();
        continue;
      }
      bool is_out = fds[i].fd == out_r.get();
      ssize_t r = read(fds[i].fd, buf, sizeof(buf));
      if (r <= 0) {
        (is_out ? out_r : err_r).reset();
        continue;
      }
      std::string& dst = is_out ? result.out : result.err;
      bool& trunc = is_out ? result.out_truncated : result.err_truncated;
      size_t keep =
          std::min<size_t>(r, options.max_output - std::min(options.max_output, dst.size()));
      dst.append(buf, keep);
      if (keep < static_cast<size_t>(r)) trunc = true;
    }
  }
  if (result.timed_out) {
    bool exited = false;
    int raw = 0;
    if (options.on_timeout) {
      options.on_timeout();
      const absl::Time grace = absl::Now() + absl::Seconds(2);
      while (absl::Now() < grace) {
        if (waitpid(*pid, &raw, WNOHANG) == *pid) {
          exited = true;
          break;
        }
        absl::SleepFor(absl::Milliseconds(5));
      }
    }
    if (exited) {
      if (WIFEXITED(raw)) result.exit_code = WEXITSTATUS(raw);
      if (WIFSIGNALED(raw)) result.term_signal = WTERMSIG(raw);
      return result;
    }
    kill(*pid, SIGKILL);
  }
  absl::StatusOr<int> status = WaitProcess(*pid);
  if (!status.ok()) return status.status();
  if (WIFEXITED(*status)) result.exit_code = WEXITSTATUS(*status);
  if (WIFSIGNALED(*status)) result.term_signal = WTERMSIG(*status);
  return result;
}

std::string DescribeFailure(const std::vector<std::string>& argv, const RunResult& r) {
  std::string what = absl::StrJoin(argv, " ");
  if (what.size() > 200) what = what.substr(0, 200) + "...";
  std::string how = r.timed_out     ? "timed out"
                    : r.term_signal ? absl::StrCat("killed by signal ", r.term_signal)
                                    : absl::StrCat("exited with ", r.exit_code);
  std::string err = r.err.empty() ? r.out : r.err;
  while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
  return absl::StrCat("`", what, "` ", how, err.empty() ? "" : ": ", err);
}

}  // namespace berth
