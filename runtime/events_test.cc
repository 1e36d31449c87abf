// EventBus: fan-out to several watchers, bounded queues that drop for slow ones, unsubscribe.
#include "runtime/events.h"

#include <thread>

#include "gtest/gtest.h"

namespace berth::runtime {
namespace {

TEST(EventBusTest, EveryWatcherSeesEveryEventInOrder) {
  EventBus bus;
  auto a = bus.Subscribe();
  auto b = bus.Subscribe();
  for (int i = 0; i < 3; ++i) bus.Publish({std::to_string(i), "s", EventType::kStarted, i});
  for (auto* s : {a.get(), b.get()}) {
    for (int i = 0; i < 3; ++i) {
      Event e;
      ASSERT_TRUE(s->Next(&e, absl::Seconds(1)));
      EXPECT_EQ(e.container_id, std::to_string(i));
    }
    Event e;
    EXPECT_FALSE(s->Next(&e, absl::Milliseconds(10)));
  }
}

TEST(EventBusTest, ASlowWatcherLosesEventsButNeverBlocksThePublisher) {
  EventBus bus;
  auto slow = bus.Subscribe(/*capacity=*/2);
  auto fast = bus.Subscribe(100);
  for (int i = 0; i < 10; ++i) bus.Publish({std::to_string(i), "s", EventType::kCreated, i});
  EXPECT_EQ(slow->dropped(), 8u);
  EXPECT_EQ(fast->dropped(), 0u);
  Event e;
  ASSERT_TRUE(slow->Next(&e, absl::Seconds(1)));
  EXPECT_EQ(e.container_id, "0");
  EXPECT_EQ(bus.published(), 10u);
}

TEST(EventBusTest, WaitingWatcherWakesOnPublishAndLeavesOnDestruction) {
  EventBus bus;
  {
    auto s = bus.Subscribe();
    std::thread t([&] { bus.Publish({"x", "s", EventType::kDeleted, 1}); });
    Event e;
    EXPECT_TRUE(s->Next(&e, absl::Seconds(5)));
    EXPECT_EQ(e.type, EventType::kDeleted);
    t.join();
    EXPECT_EQ(bus.subscribers(), 1u);
  }
  EXPECT_EQ(bus.subscribers(), 0u);
}

}  // namespace
}  // namespace berth::runtime
