// The container state machine after libpod: which operation may run from which state.
#ifndef BERTH_RUNTIME_STATE_MACHINE_H_
#define BERTH_RUNTIME_STATE_MACHINE_H_

#include "absl/status/status.h"
#include "proto/berth/v1/records.pb.h"

namespace berth::runtime {

enum class Operation {
  kCreate,  // runc create through conmon: Configured/Exited → Created
  kStart,   // runc start: Created → Running
  kStop,    // signal and wait: Created/Running/Paused → Stopped (a no-op from other states)
  kPause,   // Running → Paused
  kResume,  // Paused → Running
  kExit,    // the process ended: Created/Running/Paused → Stopped
  kCleanup, // runc delete: Stopped → Exited
  kRemove,  // anything not live → Removing (live ones only with force, after a stop)
  kExec,    // needs Running
  kUpdate,  // resources: Created/Running/Paused
};

const char* StatusName(berth::v1::ContainerStatus status);
const char* OperationName(Operation op);

// FailedPrecondition naming the container, its state and the operation when it may not run.
absl::Status EnsureState(const berth::v1::Container& container, Operation op);
bool Allowed(berth::v1::ContainerStatus status, Operation op);
// Whether the container's process may be alive (runc knows it and it has not exited).
bool IsLive(berth::v1::ContainerStatus status);

}  // namespace berth::runtime

#endif  // BERTH_RUNTIME_STATE_MACHINE_H_
