// StopContainer: the stop signal, SIGKILL after the timeout, then the exit file.
#include "runtime/engine_internal.h"

namespace berth::engine {

absl::Status Engine::StopContainer(const std::string& id, int64_t timeout_seconds) {
  if (timeout_seconds < 0) return absl::InvalidArgumentError("timeout must not be negative");
  absl::Status err;
  std::shared_ptr<ContainerObj> c = FindContainerObj(id, &err);
  // CRI: stop and remove are idempotent, a container already gone is stopped.
  if (!c) return absl::IsNotFound(err) ? absl::OkStatus() : err;
  return StopContainerObj(c, timeout_seconds);
}

absl::Status Engine::StopContainerObj(const std::shared_ptr<ContainerObj>& c,
                                      int64_t timeout_seconds) {
  std::string id, signal_name;
  std::shared_ptr<oci::Runtime> runtime;
  {
    absl::MutexLock l(&c->mu);
    auto s = c->rec.state().status();
    // Already stopped (or never made): stopping is idempotent.
    if (!Allowed(s, Operation::kStop)) return absl::OkStatus();
    id = c->rec.config().id();
    runtime = RuntimeOf(c->rec.config());
    signal_name = c->rec.config().stop_signal();
    if (AwaitingRestore(c->rec)) {
      // Nothing runs before the restore: no process to signal, no exit file to wait for.
      MarkExited(c.get(), 137);
      return absl::OkStatus();
    }
    if (s == berth::v1::CONTAINER_STATUS_PAUSED) {
      // A paused process cannot act on a signal: let it run so it can.
      if (absl::Status st = runtime->Resume(id); !st.ok()) return st;
      LogIfFailed(Transition(c.get(), Operation::kResume), id);
    }
  }
  auto exited = [&c]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu) {
    return !Allowed(c->rec.state().status(), Operation::kExit);
  };
  if (timeout_seconds > 0) {
    // Validated at create; a record from an older berthd may hold anything.
    const int sig = ParseSignal(signal_name).value_or(SIGTERM);
    if (absl::Status st = runtime->Kill(id, sig); !st.ok() && !absl::IsNotFound(st)) {
      return st;
    }
    absl::MutexLock l(&c->mu);
    const absl::Time deadline = absl::Now() + absl::Seconds(timeout_seconds);
    while (!exited() && !c->changed.WaitWithDeadline(&c->mu, deadline)) {
    }
    if (exited()) return absl::OkStatus();
  }
  if (absl::Status st = runtime->Kill(id, SIGKILL, /*all=*/true);
      !st.ok() && !absl::IsNotFound(st)) {
    LOG(WARNING) << "killing " << id << ": " << st;
  }
  absl::MutexLock l(&c->mu);
  const absl::Time deadline = absl::Now() + kKillGrace;
  while (!exited() && !c->changed.WaitWithDeadline(&c->mu, deadline)) {
  }
  if (exited()) return absl::OkStatus();
  // No exit file arrived (conmon gone?): believe runc, then the exit file, then give up loudly.
  absl::StatusOr<int> code = oci_->ReadExitCode(id);
  absl::StatusOr<oci::RuncState> rs = runtime->State(id);
  // A runc that fails (missing, broken) tells nothing: the container may well run on.
  if (!code.ok() && !rs.ok() && !absl::IsNotFound(rs.status())) return rs.status();
  if (code.ok() || !rs.ok() || rs->status == oci::RuncStatus::kStopped) {
    MarkExited(c.get(), code.ok() ? *code : 137);
    return absl::OkStatus();
  }
  return absl::DeadlineExceededError(
      absl::StrCat("container \"", id, "\" did not exit after SIGKILL"));
}

}  // namespace berth::engine
