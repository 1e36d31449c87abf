// StartContainer.
#include "runtime/engine_internal.h"

namespace berth::runtime {

absl::Status Engine::StartContainer(const std::string& id) {
  absl::Status err;
  std::shared_ptr<ContainerObj> c = FindContainerObj(id, &err);
  if (!c) return err;
  absl::MutexLock l(&c->mu);
  Container rec = c->rec;
  if (absl::Status st = EnsureState(rec, Operation::kStart); !st.ok()) return st;
  const bool restore = AwaitingRestore(rec);
  if (absl::Status st = restore ? RestoreInRuntime(c.get()) : oci_.Start(rec.config().id());
      !st.ok()) {
    // A start that failed leaves an unusable container: record why.
    rec.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_STOPPED);
    rec.mutable_state()->set_exit_code(128);
    rec.mutable_state()->set_reason("StartError");
    rec.mutable_state()->set_message(std::string(st.message()));
    rec.mutable_state()->set_finished_at_ns(NowNs());
    if (absl::Status save = SaveContainer(c.get(), rec); !save.ok()) {
      LOG(ERROR) << "recording the failed start of " << rec.config().id() << ": " << save;
    }
    return st;
  }
  if (restore) return absl::OkStatus();  // RestoreInRuntime saved it Running
  rec.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_RUNNING);
  rec.mutable_state()->set_started_at_ns(NowNs());
  rec.mutable_state()->set_state_changed_at_ns(rec.state().started_at_ns());
  if (absl::Status st = SaveContainer(c.get(), rec); !st.ok()) return st;
  Emit(rec, EventType::kStarted);
  // An exit seen meanwhile waits in OnExit for this lock and is applied to the Running record.
  return absl::OkStatus();
}

}  // namespace berth::runtime
