// Every allowed and every refused transition of the container state machine.
#include "runtime/state_machine.h"

#include <map>
#include <set>

#include "gtest/gtest.h"

namespace berth::runtime {
namespace {

using S = berth::v1::ContainerStatus;
constexpr S kAll[] = {berth::v1::CONTAINER_STATUS_UNKNOWN,    berth::v1::CONTAINER_STATUS_CONFIGURED,
                      berth::v1::CONTAINER_STATUS_CREATED,    berth::v1::CONTAINER_STATUS_RUNNING,
                      berth::v1::CONTAINER_STATUS_STOPPED,    berth::v1::CONTAINER_STATUS_PAUSED,
                      berth::v1::CONTAINER_STATUS_EXITED,     berth::v1::CONTAINER_STATUS_REMOVING};

TEST(StateMachineTest, TransitionTableIsExactlyLibpods) {
  const std::map<Operation, std::set<S>> allowed = {
      {Operation::kCreate, {berth::v1::CONTAINER_STATUS_CONFIGURED, berth::v1::CONTAINER_STATUS_EXITED}},
      {Operation::kStart, {berth::v1::CONTAINER_STATUS_CREATED}},
      {Operation::kStop, {berth::v1::CONTAINER_STATUS_CREATED, berth::v1::CONTAINER_STATUS_RUNNING,
                          berth::v1::CONTAINER_STATUS_PAUSED}},
      {Operation::kExit, {berth::v1::CONTAINER_STATUS_CREATED, berth::v1::CONTAINER_STATUS_RUNNING,
                          berth::v1::CONTAINER_STATUS_PAUSED}},
      {Operation::kUpdate, {berth::v1::CONTAINER_STATUS_CREATED, berth::v1::CONTAINER_STATUS_RUNNING,
                            berth::v1::CONTAINER_STATUS_PAUSED}},
      {Operation::kPause, {berth::v1::CONTAINER_STATUS_RUNNING}},
      {Operation::kExec, {berth::v1::CONTAINER_STATUS_RUNNING}},
      {Operation::kResume, {berth::v1::CONTAINER_STATUS_PAUSED}},
      {Operation::kCleanup, {berth::v1::CONTAINER_STATUS_STOPPED}},
      {Operation::kRemove, {berth::v1::CONTAINER_STATUS_UNKNOWN, berth::v1::CONTAINER_STATUS_CONFIGURED,
                            berth::v1::CONTAINER_STATUS_STOPPED, berth::v1::CONTAINER_STATUS_EXITED,
                            berth::v1::CONTAINER_STATUS_REMOVING}},
  };
  for (const auto& [op, ok] : allowed) {
    for (S s : kAll) {
      EXPECT_EQ(Allowed(s, op), ok.count(s) > 0)
          << OperationName(op) << " from " << StatusName(s);
    }
  }
}

TEST(StateMachineTest, RefusalNamesContainerStateAndOperation) {
  berth::v1::Container c;
  c.mutable_config()->set_id("abc123");
  c.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_RUNNING);
  absl::Status st = EnsureState(c, Operation::kRemove);
  ASSERT_TRUE(absl::IsFailedPrecondition(st));
  EXPECT_EQ(st.message(), "container \"abc123\" is running: cannot remove it: stop it before removing it");
  c.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_STOPPED);
  EXPECT_TRUE(EnsureState(c, Operation::kRemove).ok());
  EXPECT_NE(EnsureState(c, Operation::kStart).message().find("already run"), std::string::npos);
}

}  // namespace
}  // namespace berth::runtime
