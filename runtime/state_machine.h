// The container and pod state machines after libpod: which operation may run from which state,
// and the state it leaves behind. Engine::Transition (runtime/engine.cc) is the only writer of a
// status and consults these tables for every change; the read-only checks (exec, attach, ...)
// use EnsureState.
#ifndef BERTH_RUNTIME_STATE_MACHINE_H_
#define BERTH_RUNTIME_STATE_MACHINE_H_

#include "absl/status/status.h"
#include "proto/berth/v1/records.pb.h"

namespace berth::engine {

enum class Operation {
  kConfigure,  // a new record: Unknown → Configured (storage and bundle not made yet)
  kCreate,  // runc create through conmon (or a record awaiting its restore): Configured → Created
  kStart,   // runc start or restore: Created → Running
  kStop,    // signal and wait: needs Created/Running/Paused; the exit changes the state
  kPause,   // runc says paused: Running → Paused
  kResume,  // Paused → Running
  kExit,    // the process ended (or never started): Created/Running/Paused → Stopped
  kCleanup,     // runc no longer knows the stopped container (deleted, or gone with a reboot):
                // Stopped → Exited
  kRemove,      // anything not live → Removing (a live one only after a stop)
  kExec,        // exec, exec sync: needs Running
  kAttach,      // needs Running
  kCheckpoint,  // needs Running
  kReopenLog,   // needs Running
  kUpdate,      // resources: Created/Running/Paused
};

enum class PodOperation {
  kCreate,           // a new record: Unknown → Creating
  kReady,            // everything made: Creating → Ready
  kStop,             // containers stopped, network released (or the infra container died):
                     // Ready/NotReady → NotReady; a pod being made or removed keeps its state
  kRemove,           // any known state → Removing
  kUpdate,           // pod resources: needs Ready
  kCreateContainer,  // needs Ready
  kPortForward,      // needs Ready
};

const char* StatusName(berth::v1::ContainerStatus status);
const char* StatusName(berth::v1::SandboxStatus status);
const char* OperationName(Operation op);
const char* OperationName(PodOperation op);

bool Allowed(berth::v1::ContainerStatus status, Operation op);
bool Allowed(berth::v1::SandboxStatus status, PodOperation op);
// The state `op` leaves behind when it runs from `from` (where Allowed); `from` itself for the
// operations that change nothing.
berth::v1::ContainerStatus Target(berth::v1::ContainerStatus from, Operation op);
berth::v1::SandboxStatus Target(berth::v1::SandboxStatus from, PodOperation op);

// FailedPrecondition naming the object, its state, the operation and, for an operation that
// changes the state, the state it would have led to; OK when the operation may run.
absl::Status EnsureState(const berth::v1::Container& container, Operation op);
absl::Status EnsureState(const berth::v1::Sandbox& sandbox, PodOperation op);
// Whether the container's process may be alive (runc knows it and it has not exited).
bool IsLive(berth::v1::ContainerStatus status);

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_STATE_MACHINE_H_
