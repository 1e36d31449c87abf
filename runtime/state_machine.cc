// The transition table of berth's container state machine.
#include "runtime/state_machine.h"

#include "absl/strings/str_cat.h"

namespace berth::runtime {

using S = berth::v1::ContainerStatus;

const char* StatusName(S s) {
  switch (s) {
    case berth::v1::CONTAINER_STATUS_CONFIGURED: return "configured";
    case berth::v1::CONTAINER_STATUS_CREATED: return "created";
    case berth::v1::CONTAINER_STATUS_RUNNING: return "running";
    case berth::v1::CONTAINER_STATUS_STOPPED: return "stopped";
    case berth::v1::CONTAINER_STATUS_PAUSED: return "paused";
    case berth::v1::CONTAINER_STATUS_EXITED: return "exited";
    case berth::v1::CONTAINER_STATUS_REMOVING: return "being removed";
    default: return "in an unknown state";
  }
}

const char* OperationName(Operation op) {
  switch (op) {
    case Operation::kCreate: return "create";
    case Operation::kStart: return "start";
    case Operation::kStop: return "stop";
    case Operation::kPause: return "pause";
    case Operation::kResume: return "resume";
    case Operation::kExit: return "record an exit of";
    case Operation::kCleanup: return "clean up";
    case Operation::kRemove: return "remove";
    case Operation::kExec: return "exec in";
    case Operation::kUpdate: return "update";
  }
  return "operate on";
}

bool IsLive(S s) {
  return s == berth::v1::CONTAINER_STATUS_CREATED || s == berth::v1::CONTAINER_STATUS_RUNNING ||
         s == berth::v1::CONTAINER_STATUS_PAUSED;
}

bool Allowed(S s, Operation op) {
  switch (op) {
    case Operation::kCreate:
      return s == berth::v1::CONTAINER_STATUS_CONFIGURED || s == berth::v1::CONTAINER_STATUS_EXITED;
    case Operation::kStart:
      return s == berth::v1::CONTAINER_STATUS_CREATED;
    case Operation::kStop:
    case Operation::kExit:
    case Operation::kUpdate:
      return IsLive(s);
    case Operation::kPause:
    case Operation::kExec:
      return s == berth::v1::CONTAINER_STATUS_RUNNING;
    case Operation::kResume:
      return s == berth::v1::CONTAINER_STATUS_PAUSED;
    case Operation::kCleanup:
      return s == berth::v1::CONTAINER_STATUS_STOPPED;
    case Operation::kRemove:
      return !IsLive(s);
  }
  return false;
}

absl::Status EnsureState(const berth::v1::Container& c, Operation op) {
  if (Allowed(c.state().status(), op)) return absl::OkStatus();
  std::string hint;
  if (op == Operation::kRemove) hint = ": stop it before removing it";
  if (op == Operation::kStart && c.state().status() == berth::v1::CONTAINER_STATUS_STOPPED) {
    hint = ": it has already run";
  }
  return absl::FailedPreconditionError(absl::StrCat("container \"", c.config().id(), "\" is ",
                                                    StatusName(c.state().status()), ": cannot ",
                                                    OperationName(op), " it", hint));
}

}  // namespace berth::runtime
