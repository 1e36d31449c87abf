// Starting and stopping berthd from tests, found in the Bazel runfiles tree.
#include "test/util/berthd.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "util/fd.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace berth::test {

namespace {

// The VM runs (test/vm/run.sh) start every test's berthd with the VM's cgroup driver and OCI
// runtime: BERTH_TEST_CGROUP_DRIVER and BERTH_TEST_RUNTIME_PATH set [runtime] keys a test's own
// config does not set.
std::string WithEnvironmentDefaults(std::string toml) {
  std::string keys;
  for (auto [env, key] : {std::pair{"BERTH_TEST_CGROUP_DRIVER", "cgroup_driver"},
                          std::pair{"BERTH_TEST_RUNTIME_PATH", "runtime_path"}}) {
    const char* v = getenv(env);
    if (v == nullptr || *v == '\0' || toml.find(absl::StrCat(key, " =")) != std::string::npos)
      continue;
    absl::StrAppend(&keys, key, " = \"", v, "\"\n");
  }
  if (keys.empty()) return toml;
  const std::string header = "[runtime]\n";
  size_t at = toml.rfind(header, 0) == 0 ? 0 : toml.find("\n" + header);
  if (at == std::string::npos) return absl::StrCat(toml, "\n", header, keys);
  at += (at == 0 ? 0 : 1) + header.size();
  toml.insert(at, keys);
  return toml;
}

// Under --config=asan berthd is sanitized too, and its reports go to its log, which leaves with
// the test's temporary directory. Once berthd has exited, a report in the log ends the test
// process with that report on stderr, as a sanitizer report in the test process itself does
// (halt_on_error): a finding in berthd is never a passing test.
void FailOnSanitizerReport(const std::string& log) {
  size_t start = std::string::npos;
  size_t summary = log.find("SUMMARY: UndefinedBehaviorSanitizer");
  if (summary != std::string::npos) start = log.rfind(": runtime error: ", summary);
  for (const char* marker : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer"}) {
    size_t at = log.find(marker);
    if (at != std::string::npos && (start == std::string::npos || at < start)) start = at;
  }
  if (start == std::string::npos) start = summary;
  if (start == std::string::npos) return;
  start = log.rfind('\n', start);
  start = start == std::string::npos ? 0 : start + 1;
  size_t end = log.find("SUMMARY: ", start);
  if (end != std::string::npos) end = log.find('\n', end);
  fprintf(stderr, "berthd's log has a sanitizer report:\n%s\n",
          log.substr(start, end == std::string::npos ? std::string::npos : end - start).c_str());
  fflush(stderr);
  abort();
}

}  // namespace

Berthd::Berthd(std::string dir) : dir_(std::move(dir)) {}

Berthd::~Berthd() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    bool exited = false;
    for (int i = 0; i < 100 && !exited; ++i) {
      exited = waitpid(pid_, nullptr, WNOHANG) == pid_;
      if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!exited) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
  }
  FailOnSanitizerReport(log());
}

std::string Berthd::log() const { return ReadFile(dir_ + "/berthd.log").value_or(""); }

absl::Status Berthd::Start(const Options& options) {
  if (absl::Status st = MakeDirs(dir_); !st.ok()) return st;
  std::vector<std::string> argv = {
      options.binary, absl::StrCat("--listen=unix://", socket()), absl::StrCat("--root=", root()),
      absl::StrCat("--state_dir=", state_dir()), "--pause_binary=runtime/pause/berth-pause"};
  std::string config = dir_ + "/berth.toml";
  absl::Status written = WriteFileAtomic(config, WithEnvironmentDefaults(options.config_toml));
  if (!written.ok()) return written;
  argv.push_back(absl::StrCat("--config=", config));
  argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
  UniqueFd logfd(
      open((dir_ + "/berthd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  UniqueFd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
  spawned_at_ = std::chrono::steady_clock::now();
  absl::StatusOr<pid_t> pid =
      SpawnProcess(argv, RunOptions{.env = options.env}, devnull.get(), logfd.get(), logfd.get());
  if (!pid.ok()) return pid.status();
  pid_ = *pid;
  // The channel is made once the socket exists: a channel that failed to connect backs off for
  // seconds before it tries again.
  // Bounds a hang only: a restart that recovers many pods in a slow VM (TCG, test/vm/run.sh)
  // takes well over the 12 s this once allowed.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      FailOnSanitizerReport(this->log());
      return absl::InternalError(absl::StrCat("berthd exited at start:\n", this->log()));
    }
    if (PathExists(socket())) {
      channel_ = grpc::CreateChannel(absl::StrCat("unix://", socket()),
                                     grpc::InsecureChannelCredentials());
      runtime_ = runtime::v1::RuntimeService::NewStub(channel_);
      images_ = runtime::v1::ImageService::NewStub(channel_);
      runtime::v1::VersionRequest req;
      runtime::v1::VersionResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      if (runtime_->Version(&ctx, req, &resp).ok()) return absl::OkStatus();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(options.poll_interval_ms));
  }
  return absl::DeadlineExceededError(absl::StrCat("berthd did not answer:\n", this->log()));
}

absl::StatusOr<int> Berthd::Stop() {
  if (pid_ <= 0) return absl::FailedPreconditionError("berthd is not running");
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  FailOnSanitizerReport(log());
  return status;
}

absl::StatusOr<int> Berthd::WaitForExit(int seconds) {
  if (pid_ <= 0) return absl::FailedPreconditionError("berthd is not running");
  for (int i = 0; i < seconds * 20; ++i) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      FailOnSanitizerReport(log());
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::DeadlineExceededError("berthd is still running");
}

void Berthd::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
  FailOnSanitizerReport(log());
}

std::unique_ptr<grpc::ClientContext> Ctx(int seconds) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return ctx;
}

}  // namespace berth::test
