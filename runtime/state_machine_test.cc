// Every allowed and every refused transition of the container state machine.
#include "runtime/state_machine.h"

#include <map>
#include <set>

#include "gtest/gtest.h"

namespace berth::engine {
namespace {

using S = berth::v1::ContainerStatus;
constexpr S kAll[] = {berth::v1::CONTAINER_STATUS_UNKNOWN, berth::v1::CONTAINER_STATUS_CONFIGURED,
                      berth::v1::CONTAINER_STATUS_CREATED, berth::v1::CONTAINER_STATUS_RUNNING,
                      berth::v1::CONTAINER_STATUS_STOPPED, berth::v1::CONTAINER_STATUS_PAUSED,
                      berth::v1::CONTAINER_STATUS_EXITED,  berth::v1::CONTAINER_STATUS_REMOVING};

TEST(StateMachineTest, TransitionTableIsExactlyBerths) {
  const std::map<Operation, std::set<S>> allowed = {
      {Operation::kConfigure, {berth::v1::CONTAINER_STATUS_UNKNOWN}},
      {Operation::kCreate, {berth::v1::CONTAINER_STATUS_CONFIGURED}},
      {Operation::kAttach, {berth::v1::CONTAINER_STATUS_RUNNING}},
      {Operation::kCheckpoint, {berth::v1::CONTAINER_STATUS_RUNNING}},
      {Operation::kReopenLog, {berth::v1::CONTAINER_STATUS_RUNNING}},
      {Operation::kStart, {berth::v1::CONTAINER_STATUS_CREATED}},
      {Operation::kStop,
       {berth::v1::CONTAINER_STATUS_CREATED, berth::v1::CONTAINER_STATUS_RUNNING,
        berth::v1::CONTAINER_STATUS_PAUSED}},
      {Operation::kExit,
       {berth::v1::CONTAINER_STATUS_CREATED, berth::v1::CONTAINER_STATUS_RUNNING,
        berth::v1::CONTAINER_STATUS_PAUSED}},
      {Operation::kUpdate,
       {berth::v1::CONTAINER_STATUS_CREATED, berth::v1::CONTAINER_STATUS_RUNNING,
        berth::v1::CONTAINER_STATUS_PAUSED}},
      {Operation::kPause, {berth::v1::CONTAINER_STATUS_RUNNING}},
      {Operation::kExec, {berth::v1::CONTAINER_STATUS_RUNNING}},
      {Operation::kResume, {berth::v1::CONTAINER_STATUS_PAUSED}},
      {Operation::kCleanup, {berth::v1::CONTAINER_STATUS_STOPPED}},
      {Operation::kRemove,
       {berth::v1::CONTAINER_STATUS_UNKNOWN, berth::v1::CONTAINER_STATUS_CONFIGURED,
        berth::v1::CONTAINER_STATUS_STOPPED, berth::v1::CONTAINER_STATUS_EXITED,
        berth::v1::CONTAINER_STATUS_REMOVING}},
  };
  for (const auto& [op, ok] : allowed) {
    for (S s : kAll) {
      EXPECT_EQ(Allowed(s, op), ok.count(s) > 0) << OperationName(op) << " from " << StatusName(s);
    }
  }
}

TEST(StateMachineTest, RefusalNamesContainerStateAndOperation) {
  berth::v1::Container c;
  c.mutable_config()->set_id("abc123");
  c.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_RUNNING);
  absl::Status st = EnsureState(c, Operation::kRemove);
  ASSERT_TRUE(absl::IsFailedPrecondition(st));
  EXPECT_EQ(
      st.message(),
      "container \"abc123\" is running: cannot remove it (that leads to being removed): stop it "
      "before removing it");
  c.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_STOPPED);
  EXPECT_TRUE(EnsureState(c, Operation::kRemove).ok());
  EXPECT_NE(EnsureState(c, Operation::kStart).message().find("already run"), std::string::npos);
}

TEST(StateMachineTest, EveryOperationLeadsWhereTheDesignSays) {
  using O = Operation;
  const std::map<O, S> changes = {
      {O::kConfigure, berth::v1::CONTAINER_STATUS_CONFIGURED},
      {O::kCreate, berth::v1::CONTAINER_STATUS_CREATED},
      {O::kStart, berth::v1::CONTAINER_STATUS_RUNNING},
      {O::kResume, berth::v1::CONTAINER_STATUS_RUNNING},
      {O::kPause, berth::v1::CONTAINER_STATUS_PAUSED},
      {O::kExit, berth::v1::CONTAINER_STATUS_STOPPED},
      {O::kCleanup, berth::v1::CONTAINER_STATUS_EXITED},
      {O::kRemove, berth::v1::CONTAINER_STATUS_REMOVING},
  };
  for (O op :
       {O::kConfigure, O::kCreate, O::kStart, O::kStop, O::kPause, O::kResume, O::kExit,
        O::kCleanup, O::kRemove, O::kExec, O::kAttach, O::kCheckpoint, O::kReopenLog, O::kUpdate}) {
    for (S s : kAll) {
      if (!Allowed(s, op)) continue;
      auto it = changes.find(op);
      EXPECT_EQ(Target(s, op), it == changes.end() ? s : it->second)
          << OperationName(op) << " from " << StatusName(s);
    }
  }
}

TEST(StateMachineTest, RefusalNamesBothStates) {
  berth::v1::Container c;
  c.mutable_config()->set_id("abc123");
  c.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_CONFIGURED);
  EXPECT_EQ(EnsureState(c, Operation::kStart).message(),
            "container \"abc123\" is configured: cannot start it (that leads to running)");
  c.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_STOPPED);
  EXPECT_EQ(EnsureState(c, Operation::kExec).message(),
            "container \"abc123\" is stopped: cannot exec in it");
  // A Created container is live: removing it needs a stop first (CRI's forced removal does one).
  c.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_CREATED);
  EXPECT_TRUE(absl::IsFailedPrecondition(EnsureState(c, Operation::kRemove)));
}

using P = berth::v1::SandboxStatus;
constexpr P kPods[] = {berth::v1::SANDBOX_STATUS_UNKNOWN, berth::v1::SANDBOX_STATUS_CREATING,
                       berth::v1::SANDBOX_STATUS_READY, berth::v1::SANDBOX_STATUS_NOT_READY,
                       berth::v1::SANDBOX_STATUS_REMOVING};

TEST(StateMachineTest, PodTable) {
  using O = PodOperation;
  const P kU = berth::v1::SANDBOX_STATUS_UNKNOWN, kC = berth::v1::SANDBOX_STATUS_CREATING,
          kR = berth::v1::SANDBOX_STATUS_READY, kN = berth::v1::SANDBOX_STATUS_NOT_READY,
          kX = berth::v1::SANDBOX_STATUS_REMOVING;
  // op → {from → to}
  const std::map<O, std::map<P, P>> table = {
      {O::kCreate, {{kU, kC}}},
      {O::kReady, {{kC, kR}}},
      {O::kStop, {{kC, kC}, {kR, kN}, {kN, kN}, {kX, kX}}},
      {O::kRemove, {{kC, kX}, {kR, kX}, {kN, kX}, {kX, kX}}},
      {O::kUpdate, {{kR, kR}}},
      {O::kCreateContainer, {{kR, kR}}},
      {O::kPortForward, {{kR, kR}}},
  };
  for (const auto& [op, moves] : table) {
    for (P s : kPods) {
      auto it = moves.find(s);
      EXPECT_EQ(Allowed(s, op), it != moves.end())
          << OperationName(op) << " from " << StatusName(s);
      if (it != moves.end()) EXPECT_EQ(Target(s, op), it->second) << OperationName(op);
    }
  }
  berth::v1::Sandbox sb;
  sb.set_id("p1");
  sb.set_status(kN);
  EXPECT_EQ(EnsureState(sb, O::kCreateContainer).message(),
            "pod sandbox \"p1\" is not ready: cannot create a container in it");
  sb.set_status(kR);
  EXPECT_EQ(EnsureState(sb, O::kReady).message(),
            "pod sandbox \"p1\" is ready: cannot finish making it");
}

}  // namespace
}  // namespace berth::engine
