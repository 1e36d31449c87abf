// The transition tables of berth's container and pod state machines.
#include "runtime/state_machine.h"

#include <string>
#include <type_traits>

#include "absl/strings/str_cat.h"

namespace berth::engine {

using S = berth::v1::ContainerStatus;
using P = berth::v1::SandboxStatus;

const char* StatusName(S s) {
  switch (s) {
    case berth::v1::CONTAINER_STATUS_CONFIGURED:
      return "configured";
    case berth::v1::CONTAINER_STATUS_CREATED:
      return "created";
    case berth::v1::CONTAINER_STATUS_RUNNING:
      return "running";
    case berth::v1::CONTAINER_STATUS_STOPPED:
      return "stopped";
    case berth::v1::CONTAINER_STATUS_PAUSED:
      return "paused";
    case berth::v1::CONTAINER_STATUS_EXITED:
      return "exited";
    case berth::v1::CONTAINER_STATUS_REMOVING:
      return "being removed";
    default:
      return "in an unknown state";
  }
}

const char* StatusName(P s) {
  switch (s) {
    case berth::v1::SANDBOX_STATUS_CREATING:
      return "being created";
    case berth::v1::SANDBOX_STATUS_READY:
      return "ready";
    case berth::v1::SANDBOX_STATUS_NOT_READY:
      return "not ready";
    case berth::v1::SANDBOX_STATUS_REMOVING:
      return "being removed";
    default:
      return "in an unknown state";
  }
}

const char* OperationName(Operation op) {
  switch (op) {
    case Operation::kConfigure:
      return "configure";
    case Operation::kCreate:
      return "create";
    case Operation::kStart:
      return "start";
    case Operation::kStop:
      return "stop";
    case Operation::kPause:
      return "pause";
    case Operation::kResume:
      return "resume";
    case Operation::kExit:
      return "record an exit of";
    case Operation::kCleanup:
      return "clean up";
    case Operation::kRemove:
      return "remove";
    case Operation::kExec:
      return "exec in";
    case Operation::kAttach:
      return "attach to";
    case Operation::kCheckpoint:
      return "checkpoint";
    case Operation::kReopenLog:
      return "reopen the log of";
    case Operation::kUpdate:
      return "update the resources of";
  }
  return "operate on";
}

const char* OperationName(PodOperation op) {
  switch (op) {
    case PodOperation::kCreate:
      return "create";
    case PodOperation::kReady:
      return "finish making";
    case PodOperation::kStop:
      return "stop";
    case PodOperation::kRemove:
      return "remove";
    case PodOperation::kUpdate:
      return "update the resources of";
    case PodOperation::kCreateContainer:
      return "create a container in";
    case PodOperation::kPortForward:
      return "port-forward into";
  }
  return "operate on";
}

bool IsLive(S s) {
  return s == berth::v1::CONTAINER_STATUS_CREATED || s == berth::v1::CONTAINER_STATUS_RUNNING ||
         s == berth::v1::CONTAINER_STATUS_PAUSED;
}

bool Allowed(S s, Operation op) {
  switch (op) {
    case Operation::kConfigure:
      return s == berth::v1::CONTAINER_STATUS_UNKNOWN;
    case Operation::kCreate:
      return s == berth::v1::CONTAINER_STATUS_CONFIGURED;
    case Operation::kStart:
      return s == berth::v1::CONTAINER_STATUS_CREATED;
    case Operation::kStop:
    case Operation::kExit:
    case Operation::kUpdate:
      return IsLive(s);
    case Operation::kPause:
    case Operation::kExec:
    case Operation::kAttach:
    case Operation::kCheckpoint:
    case Operation::kReopenLog:
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

S Target(S from, Operation op) {
  switch (op) {
    case Operation::kConfigure:
      return berth::v1::CONTAINER_STATUS_CONFIGURED;
    case Operation::kCreate:
      return berth::v1::CONTAINER_STATUS_CREATED;
    case Operation::kStart:
    case Operation::kResume:
      return berth::v1::CONTAINER_STATUS_RUNNING;
    case Operation::kPause:
      return berth::v1::CONTAINER_STATUS_PAUSED;
    case Operation::kExit:
      return berth::v1::CONTAINER_STATUS_STOPPED;
    case Operation::kCleanup:
      return berth::v1::CONTAINER_STATUS_EXITED;
    case Operation::kRemove:
      return berth::v1::CONTAINER_STATUS_REMOVING;
    case Operation::kStop:
    case Operation::kExec:
    case Operation::kAttach:
    case Operation::kCheckpoint:
    case Operation::kReopenLog:
    case Operation::kUpdate:
      return from;
  }
  return from;
}

bool Allowed(P s, PodOperation op) {
  switch (op) {
    case PodOperation::kCreate:
      return s == berth::v1::SANDBOX_STATUS_UNKNOWN;
    case PodOperation::kReady:
      return s == berth::v1::SANDBOX_STATUS_CREATING;
    case PodOperation::kStop:
    case PodOperation::kRemove:
      return s != berth::v1::SANDBOX_STATUS_UNKNOWN;
    case PodOperation::kUpdate:
    case PodOperation::kCreateContainer:
    case PodOperation::kPortForward:
      return s == berth::v1::SANDBOX_STATUS_READY;
  }
  return false;
}

P Target(P from, PodOperation op) {
  switch (op) {
    case PodOperation::kCreate:
      return berth::v1::SANDBOX_STATUS_CREATING;
    case PodOperation::kReady:
      return berth::v1::SANDBOX_STATUS_READY;
    case PodOperation::kStop:
      // A pod half made (its undo) or half removed stays what it is: recovery finishes those.
      if (from == berth::v1::SANDBOX_STATUS_CREATING ||
          from == berth::v1::SANDBOX_STATUS_REMOVING) {
        return from;
      }
      return berth::v1::SANDBOX_STATUS_NOT_READY;
    case PodOperation::kRemove:
      return berth::v1::SANDBOX_STATUS_REMOVING;
    case PodOperation::kUpdate:
    case PodOperation::kCreateContainer:
    case PodOperation::kPortForward:
      return from;
  }
  return from;
}

namespace {

template <typename State, typename Op>
std::string Refusal(const char* kind, const std::string& id, State from, Op op) {
  std::string msg = absl::StrCat(kind, " \"", id, "\" is ", StatusName(from), ": cannot ",
                                 OperationName(op), " it");
  // Both ends: where it is, and where the operation would have taken it.
  if (const State to = Target(from, op); to != from) {
    absl::StrAppend(&msg, " (that leads to ", StatusName(to), ")");
  }
  if constexpr (std::is_same_v<Op, Operation>) {
    if (op == Operation::kRemove) absl::StrAppend(&msg, ": stop it before removing it");
    if (op == Operation::kStart && from == berth::v1::CONTAINER_STATUS_STOPPED) {
      absl::StrAppend(&msg, ": it has already run");
    }
  }
  return msg;
}

}  // namespace

absl::Status EnsureState(const berth::v1::Container& c, Operation op) {
  if (Allowed(c.state().status(), op)) return absl::OkStatus();
  return absl::FailedPreconditionError(
      Refusal("container", c.config().id(), c.state().status(), op));
}

absl::Status EnsureState(const berth::v1::Sandbox& s, PodOperation op) {
  if (Allowed(s.status(), op)) return absl::OkStatus();
  return absl::FailedPreconditionError(Refusal("pod sandbox", s.id(), s.status(), op));
}

}  // namespace berth::engine
