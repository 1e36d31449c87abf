// StartContainer.
#include "runtime/engine_internal.h"

namespace berth::engine {

absl::Status Engine::StartContainer(const std::string& id) {
  absl::Status err;
  std::shared_ptr<ContainerObj> c = FindContainerObj(id, &err);
  if (!c) return err;
  absl::MutexLock l(&c->mu);
  Container rec = c->rec;
  if (absl::Status st = EnsureState(rec, Operation::kStart); !st.ok()) return st;
  const bool restore = AwaitingRestore(rec);
  if (absl::Status st =
          restore ? RestoreInRuntime(c.get()) : RuntimeOf(rec.config())->Start(rec.config().id());
      !st.ok()) {
    // A start that failed leaves an unusable container: record why (exit code 128, as
    // containerd reports a process that never ran).
    if (c->rec.state().status() == berth::v1::CONTAINER_STATUS_CREATED) {
      MarkExited(c.get(), 128, /*emit=*/true, "StartError", std::string(st.message()));
    }
    return st;
  }
  if (restore) return absl::OkStatus();  // RestoreInRuntime made it Running
  rec.mutable_state()->set_started_at_ns(NowNs());
  // An exit seen meanwhile waits in OnExit for this lock and is applied to the Running record.
  return Transition(c.get(), Operation::kStart, std::move(rec));
}

}  // namespace berth::engine
