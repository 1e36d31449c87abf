// EventBus: fan-out to several watchers, strictly increasing timestamps, slow watchers cut off
// (never silently missing a transition), unsubscribe.
#include "runtime/events.h"

#include <thread>

#include "gtest/gtest.h"

namespace berth::engine {
namespace {

using Result = EventBus::Subscription::Result;

Event Make(const std::string& id, EventType type, int64_t at) {
  Event e;
  e.container_id = id;
  e.sandbox_id = "s";
  e.type = type;
  e.at_ns = at;
  return e;
}

TEST(EventBusTest, EveryWatcherSeesEveryEventInOrder) {
  EventBus bus;
  auto a = bus.Subscribe();
  auto b = bus.Subscribe();
  for (int i = 0; i < 3; ++i) bus.Publish(Make(std::to_string(i), EventType::kStarted, i + 1));
  for (auto* s : {a.get(), b.get()}) {
    for (int i = 0; i < 3; ++i) {
      Event e;
      ASSERT_EQ(s->Next(&e, absl::Seconds(1)), Result::kEvent);
      EXPECT_EQ(e.container_id, std::to_string(i));
    }
    Event e;
    EXPECT_EQ(s->Next(&e, absl::Milliseconds(10)), Result::kTimeout);
  }
}

// kubelet's pod cache keeps a status only if its timestamp is newer: two events stamped with
// the same clock reading would lose the second.
TEST(EventBusTest, TimestampsStrictlyIncreaseEvenWhenTheClockDoesNot) {
  EventBus bus;
  auto s = bus.Subscribe();
  bus.Publish(Make("a", EventType::kCreated, 100));
  bus.Publish(Make("b", EventType::kStarted, 100));
  bus.Publish(Make("c", EventType::kStopped, 50));  // a clock that stepped back
  int64_t last = 0;
  for (int i = 0; i < 3; ++i) {
    Event e;
    ASSERT_EQ(s->Next(&e, absl::Seconds(1)), Result::kEvent);
    EXPECT_GT(e.at_ns, last);
    last = e.at_ns;
  }
}

TEST(EventBusTest, ASlowWatcherIsCutOffAfterWhatItQueuedButNeverBlocksThePublisher) {
  EventBus bus;
  auto slow = bus.Subscribe(/*capacity=*/2);
  auto fast = bus.Subscribe(100);
  for (int i = 0; i < 10; ++i) bus.Publish(Make(std::to_string(i), EventType::kCreated, i + 1));
  EXPECT_EQ(slow->dropped(), 8u);
  EXPECT_EQ(fast->dropped(), 0u);
  Event e;
  ASSERT_EQ(slow->Next(&e, absl::Seconds(1)), Result::kEvent);
  EXPECT_EQ(e.container_id, "0");
  ASSERT_EQ(slow->Next(&e, absl::Seconds(1)), Result::kEvent);
  EXPECT_EQ(e.container_id, "1");
  // Events 2..9 are lost: the watcher is told, not handed event 10 as if nothing happened.
  bus.Publish(Make("10", EventType::kCreated, 100));
  EXPECT_EQ(slow->Next(&e, absl::Seconds(1)), Result::kOverflowed);
  EXPECT_EQ(slow->Next(&e, absl::Seconds(1)), Result::kOverflowed);
  for (int i = 0; i <= 10; ++i) {
    ASSERT_EQ(fast->Next(&e, absl::Seconds(1)), Result::kEvent);
    EXPECT_EQ(e.container_id, std::to_string(i));
  }
  EXPECT_EQ(bus.published(), 11u);
}

TEST(EventBusTest, WaitingWatcherWakesOnPublishAndLeavesOnDestruction) {
  EventBus bus;
  {
    auto s = bus.Subscribe();
    std::thread t([&] { bus.Publish(Make("x", EventType::kDeleted, 1)); });
    Event e;
    EXPECT_EQ(s->Next(&e, absl::Seconds(5)), Result::kEvent);
    EXPECT_EQ(e.type, EventType::kDeleted);
    t.join();
    EXPECT_EQ(bus.subscribers(), 1u);
  }
  EXPECT_EQ(bus.subscribers(), 0u);
}

}  // namespace
}  // namespace berth::engine
