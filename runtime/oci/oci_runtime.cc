// conmon + runc: the command lines, the sync pipe protocol, and runc's JSON state.
#include "runtime/oci/oci_runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"
#include "util/fd.h"
#include "util/crash_point.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace berth::oci {
namespace {

constexpr absl::Duration kRuncTimeout = absl::Seconds(60);
// CRIU writes or reads every page of the container's memory.
constexpr absl::Duration kCriuTimeout = absl::Minutes(10);

bool NotExist(const RunResult& r) {
  const std::string& e = r.err.empty() ? r.out : r.err;
  return e.find("does not exist") != std::string::npos || e.find("not found") != std::string::npos;
}

// Reads conmon's sync pipe until one JSON line arrives: {"data": pid} or {"data": -1, "message"}.
absl::StatusOr<nlohmann::json> ReadSyncMessage(int fd, absl::Duration timeout) {
  std::string line;
  const absl::Time deadline = absl::Now() + timeout;
  char c;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int wait = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (wait <= 0) return absl::DeadlineExceededError("conmon did not report in time");
    int rc = poll(&p, 1, wait);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) continue;
    ssize_t r = read(fd, &c, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      return absl::InternalError(
          absl::StrCat("conmon exited without reporting", line.empty() ? "" : ": ", line));
    }
    if (c == '\n') break;
    line.push_back(c);
  }
  nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.contains("data")) {
    return absl::InternalError(absl::StrCat("conmon sent an unexpected message: ", line));
  }
  return j;
}

// A program berth could not start at all (missing, not executable): Unavailable, naming it.
// Never NotFound, which callers read as "runc does not know the container".
absl::Status CannotRun(absl::string_view what, const std::string& path, const absl::Status& st) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, " cannot be run: ", st.message()));
}

}  // namespace

std::vector<std::string> OciRuntime::Runc(std::vector<std::string> args) const {
  std::vector<std::string> argv = {options_.runtime_path, "--root", options_.runc_root};
  if (options_.systemd_cgroup) argv.push_back("--systemd-cgroup");
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

absl::Status OciRuntime::RunRunc(const std::vector<std::string>& args,
                                 absl::Duration timeout) const {
  std::vector<std::string> argv = Runc(args);
  RunOptions o;
  o.timeout = timeout;
  absl::StatusOr<RunResult> r = RunProcess(argv, o);
  if (!r.ok()) return CannotRun("the OCI runtime", options_.runtime_path, r.status());
  if (!r->ok()) {
    if (NotExist(*r)) return absl::NotFoundError(DescribeFailure(argv, *r));
    return absl::InternalError(DescribeFailure(argv, *r));
  }
  return absl::OkStatus();
}

std::string Runtime::ExitFile(const std::string& id) const {
  return absl::StrCat(options_.exits_dir, "/", id);
}

absl::StatusOr<CreateResult> OciRuntime::Create(const CreateRequest& req) const {
  // conmon only says it failed when the runtime it is to run is missing: name the part here.
  if (absl::StatusOr<std::string> runc = FindProgram(options_.runtime_path); !runc.ok()) {
    return CannotRun("the OCI runtime", options_.runtime_path, runc.status());
  }
  const std::string persist = absl::StrCat(req.bundle, "/persist");
  if (absl::Status st = MakeDirs(persist, 0700); !st.ok()) return st;
  if (absl::Status st = MakeDirs(options_.attach_dir, 0700); !st.ok()) return st;
  // A stale exit file from an earlier run of the same container would read as an instant exit.
  unlink(ExitFile(req.id).c_str());
  unlink(absl::StrCat(persist, "/oom").c_str());

  std::vector<std::string> argv = {options_.conmon_path,
                                   "--api-version",
                                   "1",
                                   "-c",
                                   req.id,
                                   "-u",
                                   req.id,
                                   "-n",
                                   req.name,
                                   "-r",
                                   options_.runtime_path,
                                   "-b",
                                   req.bundle,
                                   "-p",
                                   absl::StrCat(req.bundle, "/pidfile"),
                                   "-P",
                                   absl::StrCat(req.bundle, "/conmon.pid"),
                                   "--exit-dir",
                                   options_.exits_dir,
                                   "--persist-dir",
                                   persist,
                                   "--socket-dir-path",
                                   options_.attach_dir,
                                   "--full-attach",
                                   "--runtime-arg",
                                   "--root",
                                   "--runtime-arg",
                                   options_.runc_root,
                                   "--log-level",
                                   "error",
                                   "--syslog"};
  if (options_.systemd_cgroup) argv.insert(argv.end(), {"--runtime-arg", "--systemd-cgroup"});
  if (req.log_path.empty()) {
    argv.insert(argv.end(), {"-l", "none:"});
  } else {
    argv.insert(argv.end(), {"-l", absl::StrCat("k8s-file:", req.log_path)});
  }
  if (options_.log_size_max_bytes > 0) {
    argv.insert(argv.end(), {"--log-size-max", absl::StrCat(options_.log_size_max_bytes)});
  }
  if (req.terminal) argv.push_back("-t");
  if (req.open_stdin) {
    argv.push_back("-i");
    if (!req.stdin_once) argv.push_back("--leave-stdin-open");
  }
  const bool restore = !req.restore_image_path.empty();
  if (restore) {
    // conmon runs `runc <runtime-args> restore --detach --image-path P --work-path <bundle>
    // <runtime-opts> id`; the options match what Checkpoint dumped with.
    argv.insert(argv.end(), {"--restore", req.restore_image_path, "--runtime-opt",
                             "--tcp-established", "--runtime-opt", "--file-locks"});
    if (!req.criu_path.empty()) {
      argv.insert(argv.end(), {"--runtime-arg", "--criu", "--runtime-arg", req.criu_path});
    }
  }

  int sync[2];
  if (pipe2(sync, O_CLOEXEC) < 0) {
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  UniqueFd sync_r(sync[0]), sync_w(sync[1]);
  UniqueFd devnull(open("/dev/null", O_RDWR | O_CLOEXEC));
  RunOptions o;
  o.env = {"_OCI_SYNCPIPE=3"};
  o.inherit_fds = {{sync_w.get(), 3}};
  absl::StatusOr<pid_t> pid = SpawnProcess(argv, o, devnull.get(), devnull.get(), devnull.get());
  if (!pid.ok()) return CannotRun("conmon", options_.conmon_path, pid.status());
  sync_w.reset();
  // conmon forks and its first process exits at once; the grandchild reports on the pipe.
  absl::StatusOr<int> wait = WaitProcess(*pid);
  if (!wait.ok()) return wait.status();
  if (!WIFEXITED(*wait) || WEXITSTATUS(*wait) != 0) {
    return absl::InternalError(absl::StrCat(
        "conmon ", options_.conmon_path, " failed before it created container ", req.id, " (",
        WIFEXITED(*wait) ? absl::StrCat("exit status ", WEXITSTATUS(*wait))
                         : absl::StrCat("signal ", WTERMSIG(*wait)),
        "; it logs to syslog)"));
  }
  absl::StatusOr<nlohmann::json> msg =
      ReadSyncMessage(sync_r.get(), restore ? kCriuTimeout : kRuncTimeout);
  if (!msg.ok()) return msg.status();
  int data = (*msg)["data"].get<int>();
  if (data < 0) {
    std::string message = msg->value("message", "");
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return absl::InternalError(absl::StrCat(
        restore ? "restoring container " : "creating container ", req.id, ": ", message));
  }
  CreateResult result;
  result.pid = data;
  absl::StatusOr<std::string> conmon_pid = ReadFile(absl::StrCat(req.bundle, "/conmon.pid"));
  if (conmon_pid.ok()) {
    int p = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(*conmon_pid), &p)) result.conmon_pid = p;
  }
  CrashPoint("runc", "create");
  return result;
}

absl::Status OciRuntime::Start(const std::string& id) const {
  return AfterStep(RunRunc({"start", id}, kRuncTimeout), "runc", "start");
}

absl::Status OciRuntime::Checkpoint(const CheckpointRequest& req) const {
  std::vector<std::string> args;
  if (!req.criu_path.empty()) args = {"--criu", req.criu_path};
  args.insert(args.end(),
              {"checkpoint", "--image-path", req.image_path, "--tcp-established", "--file-locks"});
  if (req.leave_running) args.push_back("--leave-running");
  args.push_back(req.id);
  return RunRunc(args, req.timeout > absl::ZeroDuration() ? req.timeout : kCriuTimeout);
}

absl::Status OciRuntime::Kill(const std::string& id, int signal, bool all) const {
  std::vector<std::string> args = {"kill"};
  if (all) args.push_back("--all");
  args.push_back(id);
  args.push_back(absl::StrCat(signal));
  absl::Status st = RunRunc(args, kRuncTimeout);
  // Killing a process that has just exited is not an error for the caller.
  if (!st.ok() && st.message().find("process already finished") != std::string::npos) {
    return absl::OkStatus();
  }
  if (!st.ok() && st.message().find("container not running") != std::string::npos) {
    return absl::OkStatus();
  }
  return AfterStep(st, "runc", "kill");
}

absl::Status OciRuntime::Delete(const std::string& id, bool force) const {
  std::vector<std::string> args = {"delete"};
  if (force) args.push_back("--force");
  args.push_back(id);
  absl::Status st = RunRunc(args, kRuncTimeout);
  if (absl::IsNotFound(st)) return absl::OkStatus();
  return AfterStep(st, "runc", "delete");
}

absl::Status OciRuntime::Resume(const std::string& id) const {
  return RunRunc({"resume", id}, kRuncTimeout);
}

bool OciRuntime::ReadsStateInProcess(RuncStateReaderOptions* reader) const {
  if (!options_.read_state_in_process) return false;
  {
    absl::MutexLock l(&probe_mu_);
    if (readable_runc_) {
      *reader = reader_;
      return *readable_runc_;
    }
  }
  // Asked without the lock: other threads' State() calls never wait behind a process.
  RunOptions o;
  o.timeout = kRuncTimeout;
  absl::StatusOr<RunResult> r = RunProcess({options_.runtime_path, "--version"}, o);
  if (!r.ok() || !r->ok()) return false;  // asked again next time: it may be mended by then
  // The cgroup layout and systemd do not change under a running berthd: resolved once.
  RuncStateReaderOptions resolved = ResolveHostFacts(options_.state_reader);
  const bool readable = ReadableRuncVersion(r->out);
  absl::MutexLock l(&probe_mu_);
  if (!readable_runc_) {
    readable_runc_ = readable;
    reader_ = std::move(resolved);
    LOG(INFO) << "container states are read "
              << (readable ? "from runc's state.json in-process"
                           : absl::StrCat("with `", options_.runtime_path,
                                          " state` (not a runc 1.1 this reader knows)"));
  }
  *reader = reader_;
  return *readable_runc_;
}

absl::StatusOr<RuncState> OciRuntime::State(const std::string& id) const {
  if (RuncStateReaderOptions reader; ReadsStateInProcess(&reader)) {
    absl::StatusOr<RuncState> s = ReadRuncState(options_.runc_root, id, reader);
    if (s.ok() || absl::IsNotFound(s.status())) return s;
    // Expected now and then (a container runc is still creating): not worth a line each time.
    VLOG(1) << s.status().message() << "; asking runc";
  }
  return ExecState(id);
}

absl::StatusOr<RuncState> OciRuntime::ExecState(const std::string& id) const {
  std::vector<std::string> argv = Runc({"state", id});
  RunOptions o;
  o.timeout = kRuncTimeout;
  absl::StatusOr<RunResult> r = RunProcess(argv, o);
  if (!r.ok()) return CannotRun("the OCI runtime", options_.runtime_path, r.status());
  if (!r->ok()) {
    if (NotExist(*r)) return absl::NotFoundError(DescribeFailure(argv, *r));
    return absl::InternalError(DescribeFailure(argv, *r));
  }
  nlohmann::json j = nlohmann::json::parse(r->out, nullptr, false);
  if (j.is_discarded()) return absl::InternalError(absl::StrCat("runc state: bad JSON: ", r->out));
  RuncState s;
  s.status = ParseRuncStatus(j.value("status", ""));
  s.pid = j.value("pid", 0);
  return s;
}

absl::Status OciRuntime::Update(const std::string& id, const std::string& resources_json) const {
  std::vector<std::string> argv = Runc({"update", "--resources", "-", id});
  RunOptions o;
  o.timeout = kRuncTimeout;
  o.stdin_data = resources_json;
  absl::StatusOr<RunResult> r = RunProcess(argv, o);
  if (!r.ok()) return CannotRun("the OCI runtime", options_.runtime_path, r.status());
  if (!r->ok()) return absl::InternalError(DescribeFailure(argv, *r));
  return absl::OkStatus();
}

absl::StatusOr<ExecResult> OciRuntime::ExecSync(const std::string& id,
                                                const std::string& process_json,
                                                absl::Duration timeout, size_t max_output) const {
  // The process spec and pid file live in a fresh directory of berth's own 0700 exec dir: in
  // /tmp, any local user could pre-create the pid file and fail every exec probe.
  std::string scratch = absl::StrCat(options_.exec_dir, "/sync-XXXXXX");
  if (mkdtemp(scratch.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("mkdtemp in ", options_.exec_dir, ": ", strerror(errno)));
  }
  absl::Cleanup remove_scratch = [&scratch] { RemoveAll(scratch).IgnoreError(); };
  const std::string path = scratch + "/process.json";
  if (absl::Status st = WriteFileAtomic(path, process_json, 0600); !st.ok()) return st;
  const std::string pid_file = scratch + "/pid";
  std::vector<std::string> argv = Runc({"exec", "--process", path, "--pid-file", pid_file, id});
  RunOptions o;
  o.timeout = timeout == absl::ZeroDuration() ? absl::InfiniteDuration() : timeout;
  o.max_output = max_output;
  // Killing only runc would orphan the command inside the container (a zombie under an init
  // that may never reap it): kill the command and let runc reap it and exit.
  o.on_timeout = [&pid_file] {
    absl::StatusOr<std::string> pid = ReadFile(pid_file);
    int p = 0;
    if (pid.ok() && absl::SimpleAtoi(absl::StripAsciiWhitespace(*pid), &p) && p > 1)
      kill(p, SIGKILL);
  };
  absl::StatusOr<RunResult> r = RunProcess(argv, o);
  if (!r.ok()) return CannotRun("the OCI runtime", options_.runtime_path, r.status());
  ExecResult out;
  out.timed_out = r->timed_out;
  out.exit_code = r->timed_out ? -1 : (r->term_signal ? 128 + r->term_signal : r->exit_code);
  out.stdout_data = std::move(r->out);
  out.stderr_data = std::move(r->err);
  if (!r->timed_out && r->exit_code != 0 && NotExist(*r) && out.stdout_data.empty()) {
    // runc itself failed (container gone), not the command.
    return absl::FailedPreconditionError(DescribeFailure(argv, *r));
  }
  return out;
}

absl::StatusOr<pid_t> OciRuntime::SpawnExec(const std::string& id,
                                            const std::string& process_json_path, bool tty,
                                            int stdin_fd, int stdout_fd, int stderr_fd) const {
  std::vector<std::string> args = {"exec", "--process", process_json_path};
  if (tty) args.push_back("--tty");
  args.push_back(id);
  absl::StatusOr<pid_t> pid =
      SpawnProcess(Runc(args), RunOptions{}, stdin_fd, stdout_fd, stderr_fd);
  if (!pid.ok()) return CannotRun("the OCI runtime", options_.runtime_path, pid.status());
  return pid;
}

absl::StatusOr<int> Runtime::ReadExitCode(const std::string& id) const {
  absl::StatusOr<std::string> content = ReadFile(ExitFile(id));
  if (!content.ok()) return content.status();
  int code = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*content), &code)) {
    return absl::DataLossError(absl::StrCat("exit file of ", id, " holds \"", *content, "\""));
  }
  return code;
}

bool OciRuntime::OomKilled(const std::string& bundle) const {
  return PathExists(absl::StrCat(bundle, "/persist/oom"));
}

absl::Status OciRuntime::WriteControl(const std::string& bundle, const std::string& message) const {
  std::string path = absl::StrCat(bundle, "/ctl");
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) {
    return absl::FailedPreconditionError(
        absl::StrCat("conmon control fifo ", path, ": ", strerror(errno)));
  }
  if (write(fd.get(), message.data(), message.size()) != static_cast<ssize_t>(message.size())) {
    return absl::InternalError(absl::StrCat("writing conmon control fifo: ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status UnconfiguredRuntime::Error() const {
  return absl::FailedPreconditionError(
      absl::StrCat("runtime handler \"", handler_,
                   "\" is not configured (runtime.handlers in berth's configuration)"));
}

}  // namespace berth::oci
