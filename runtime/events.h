// EventBus: container lifecycle events for any number of watchers. Publishing never blocks the
// engine: a watcher whose queue is full loses the event, and the loss is counted and logged.
#ifndef BERTH_RUNTIME_EVENTS_H_
#define BERTH_RUNTIME_EVENTS_H_

#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace berth::runtime {

enum class EventType { kCreated, kStarted, kStopped, kDeleted };

struct Event {
  std::string container_id;  // the sandbox id for a pod's infra container
  std::string sandbox_id;
  EventType type = EventType::kCreated;
  int64_t at_ns = 0;
};

class EventBus {
 public:
  class Subscription {
   public:
    struct PrivateKey {
     private:
      friend class EventBus;
      PrivateKey() = default;
    };
    Subscription(PrivateKey, EventBus* bus, size_t capacity) : bus_(bus), capacity_(capacity) {}
    ~Subscription();
    // Waits up to `timeout` for the next event; false when none arrived.
    bool Next(Event* event, absl::Duration timeout);
    uint64_t dropped() const;

   private:
    friend class EventBus;
    EventBus* bus_;
    const size_t capacity_;
    mutable absl::Mutex mu_;
    std::deque<Event> queue_ ABSL_GUARDED_BY(mu_);
    uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  };

  EventBus() = default;
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  std::unique_ptr<Subscription> Subscribe(size_t capacity = 4096);
  void Publish(const Event& event);
  size_t subscribers() const;
  uint64_t published() const;

 private:
  void Unsubscribe(Subscription* s);

  mutable absl::Mutex mu_;
  std::list<Subscription*> subs_ ABSL_GUARDED_BY(mu_);
  uint64_t published_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace berth::runtime

#endif  // BERTH_RUNTIME_EVENTS_H_
