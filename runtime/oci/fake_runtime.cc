// FakeRuntime: runc's state in a map, conmon's exit files on disk.
#include "runtime/oci/fake_runtime.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "util/fs.h"

namespace berth::oci {

FakeRuntime::FakeRuntime(OciRuntimeOptions options) : Runtime(std::move(options)) {}

std::vector<std::string> FakeRuntime::calls() const {
  absl::MutexLock l(&mu_);
  return calls_;
}

void FakeRuntime::FailNext(const std::string& call, absl::Status error) {
  absl::MutexLock l(&mu_);
  fail_next_[call] = std::move(error);
}

void FakeRuntime::ClearFailures() {
  absl::MutexLock l(&mu_);
  fail_next_.clear();
}

void FakeRuntime::IgnoreSignal(const std::string& id, int signal) {
  absl::MutexLock l(&mu_);
  ctrs_[id].ignored.insert(signal);
}

void FakeRuntime::Exit(const std::string& id, int code, bool oom) {
  absl::MutexLock l(&mu_);
  auto it = ctrs_.find(id);
  if (it == ctrs_.end()) return;
  if (oom) oom_bundles_.insert(it->second.bundle);
  ExitLocked(id, code);
}

void FakeRuntime::ForgetAll() {
  absl::MutexLock l(&mu_);
  ctrs_.clear();
}

RuncStatus FakeRuntime::StatusOf(const std::string& id) const {
  absl::MutexLock l(&mu_);
  auto it = ctrs_.find(id);
  return it == ctrs_.end() ? RuncStatus::kUnknown : it->second.status;
}

absl::Status FakeRuntime::Fail(const std::string& call) const {
  auto it = fail_next_.find(call);
  if (it == fail_next_.end()) return absl::OkStatus();
  absl::Status st = it->second;
  fail_next_.erase(it);
  return st;
}

void FakeRuntime::Record(std::string call) const { calls_.push_back(std::move(call)); }

void FakeRuntime::ExitLocked(const std::string& id, int code) const {
  Ctr& c = ctrs_[id];
  if (c.status == RuncStatus::kStopped) return;
  c.status = RuncStatus::kStopped;
  c.pid = 0;
  // conmon writes the code into a file named by the id; the engine's inotify watch sees it.
  (void)WriteFileAtomic(ExitFile(id), absl::StrCat(code), 0600);
}

namespace {

// conmon opens the container's log file before the container runs (and again on a reopen).
absl::Status OpenLog(const std::string& path) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("conmon: opening ", path, ": ", strerror(errno)));
  }
  close(fd);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CreateResult> FakeRuntime::Create(const CreateRequest& request) const {
  absl::MutexLock l(&mu_);
  Record(absl::StrCat("create ", request.id));
  if (absl::Status st = Fail("create"); !st.ok()) return st;
  if (!PathExists(absl::StrCat(request.bundle, "/config.json"))) {
    return absl::FailedPreconditionError(absl::StrCat("no config.json in ", request.bundle));
  }
  auto it = ctrs_.find(request.id);
  if (it != ctrs_.end() && it->second.status != RuncStatus::kUnknown) {
    return absl::AlreadyExistsError(absl::StrCat("container ", request.id, " exists"));
  }
  if (!request.log_path.empty()) {
    if (absl::Status st = OpenLog(request.log_path); !st.ok()) return st;
  }
  Ctr& c = ctrs_[request.id];
  c.bundle = request.bundle;
  c.log_path = request.log_path;
  c.pid = next_pid_++;
  c.status = request.restore_image_path.empty() ? RuncStatus::kCreated : RuncStatus::kRunning;
  // No monitor process: conmon_pid 0 says so.
  return CreateResult{.pid = c.pid, .conmon_pid = 0};
}

absl::Status FakeRuntime::Start(const std::string& id) const {
  absl::MutexLock l(&mu_);
  Record(absl::StrCat("start ", id));
  if (absl::Status st = Fail("start"); !st.ok()) return st;
  auto it = ctrs_.find(id);
  if (it == ctrs_.end() || it->second.status == RuncStatus::kUnknown) {
    return absl::NotFoundError(absl::StrCat("container ", id, " does not exist"));
  }
  if (it->second.status != RuncStatus::kCreated) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", id, " is ", RuncStatusName(it->second.status)));
  }
  it->second.status = RuncStatus::kRunning;
  return absl::OkStatus();
}

absl::Status FakeRuntime::Checkpoint(const CheckpointRequest& request) const {
  absl::MutexLock l(&mu_);
  Record(absl::StrCat("checkpoint ", request.id));
  if (absl::Status st = Fail("checkpoint"); !st.ok()) return st;
  auto it = ctrs_.find(request.id);
  if (it == ctrs_.end() || it->second.status != RuncStatus::kRunning) {
    return absl::FailedPreconditionError(absl::StrCat("container ", request.id, " is not running"));
  }
  // CRIU's inventory, which every image set has (restores check for it), and a page file.
  for (const char* image : {"/inventory.img", "/pages-1.img"}) {
    if (absl::Status st =
            WriteFileAtomic(absl::StrCat(request.image_path, image), request.id, 0600);
        !st.ok()) {
      return st;
    }
  }
  return absl::OkStatus();
}

absl::Status FakeRuntime::Kill(const std::string& id, int signal, bool all) const {
  absl::MutexLock l(&mu_);
  Record(absl::StrCat("kill ", id, " ", signal, all ? " all" : ""));
  if (absl::Status st = Fail("kill"); !st.ok()) return st;
  auto it = ctrs_.find(id);
  if (it == ctrs_.end() || it->second.status == RuncStatus::kUnknown) {
    return absl::NotFoundError(absl::StrCat("container ", id, " does not exist"));
  }
  if (it->second.status == RuncStatus::kStopped) return absl::OkStatus();
  if (signal != SIGKILL && it->second.ignored.count(signal) > 0) return absl::OkStatus();
  ExitLocked(id, 128 + signal);
  return absl::OkStatus();
}

absl::Status FakeRuntime::Delete(const std::string& id, bool force) const {
  absl::MutexLock l(&mu_);
  Record(absl::StrCat("delete ", id));
  if (absl::Status st = Fail("delete"); !st.ok()) return st;
  auto it = ctrs_.find(id);
  if (it == ctrs_.end()) return absl::OkStatus();
  if (it->second.status != RuncStatus::kStopped && it->second.status != RuncStatus::kCreated &&
      !force) {
    return absl::FailedPreconditionError(absl::StrCat("container ", id, " is running"));
  }
  ctrs_.erase(it);
  return absl::OkStatus();
}

absl::Status FakeRuntime::Resume(const std::string& id) const {
  absl::MutexLock l(&mu_);
  Record(absl::StrCat("resume ", id));
  auto it = ctrs_.find(id);
  if (it == ctrs_.end() || it->second.status != RuncStatus::kPaused) {
    return absl::FailedPreconditionError(absl::StrCat("container ", id, " is not paused"));
  }
  it->second.status = RuncStatus::kRunning;
  return absl::OkStatus();
}

absl::StatusOr<RuncState> FakeRuntime::State(const std::string& id) const {
  absl::MutexLock l(&mu_);
  auto it = ctrs_.find(id);
  if (it == ctrs_.end() || it->second.status == RuncStatus::kUnknown) {
    return absl::NotFoundError(absl::StrCat("container ", id, " does not exist"));
  }
  return RuncState{.status = it->second.status, .pid = it->second.pid};
}

absl::Status FakeRuntime::Update(const std::string& id, const std::string& resources_json) const {
  absl::MutexLock l(&mu_);
  Record(absl::StrCat("update ", id));
  if (absl::Status st = Fail("update"); !st.ok()) return st;
  auto it = ctrs_.find(id);
  if (it == ctrs_.end() || it->second.status == RuncStatus::kStopped ||
      it->second.status == RuncStatus::kUnknown) {
    return absl::FailedPreconditionError(absl::StrCat("container ", id, " is not running"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ExecResult> FakeRuntime::ExecSync(const std::string& id,
                                                 const std::string& process_json,
                                                 absl::Duration timeout, size_t max_output) const {
  absl::MutexLock l(&mu_);
  Record(absl::StrCat("exec ", id));
  if (absl::Status st = Fail("exec"); !st.ok()) return st;
  auto it = ctrs_.find(id);
  if (it == ctrs_.end() || it->second.status != RuncStatus::kRunning) {
    return absl::FailedPreconditionError(absl::StrCat("container ", id, " is not running"));
  }
  // The process spec comes back as its output: tests see what the engine asked to run.
  ExecResult r;
  r.exit_code = 0;
  r.stdout_data = process_json.substr(0, max_output);
  return r;
}

bool FakeRuntime::OomKilled(const std::string& bundle) const {
  absl::MutexLock l(&mu_);
  return oom_bundles_.count(bundle) > 0;
}

absl::Status FakeRuntime::WriteControl(const std::string& bundle,
                                       const std::string& message) const {
  absl::MutexLock l(&mu_);
  Record(absl::StrCat("control ", message));
  if (message.rfind("2 ", 0) != 0) return absl::OkStatus();
  for (const auto& [id, c] : ctrs_) {
    if (c.bundle == bundle && !c.log_path.empty()) return OpenLog(c.log_path);
  }
  return absl::OkStatus();
}

}  // namespace berth::oci
