// EventBus: container lifecycle events for any number of watchers. Publishing never blocks the
// engine: a watcher whose queue overflows is cut off (its Next says so) rather than silently
// missing a transition, so its client reconnects and relists, as kubelet's evented PLEG does.
#ifndef BERTH_RUNTIME_EVENTS_H_
#define BERTH_RUNTIME_EVENTS_H_

#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/berth/v1/records.pb.h"

namespace berth::engine {

enum class EventType { kCreated, kStarted, kStopped, kDeleted };

struct Event {
  std::string container_id;  // the sandbox id for a pod's infra container
  std::string sandbox_id;
  EventType type = EventType::kCreated;
  // Strictly increasing across the bus (Publish raises it when the clock has not moved), so a
  // client that keeps the newest state per pod by timestamp never drops a later event.
  int64_t at_ns = 0;
  // The pod and its app containers as of this event, taken when it was published: a watcher
  // that reads them later still sees the pod as it was right after this transition. The
  // sandbox is null when the pod was already gone.
  std::shared_ptr<const berth::v1::Sandbox> sandbox;
  std::vector<std::shared_ptr<const berth::v1::Container>> containers;
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
    enum class Result { kEvent, kTimeout, kOverflowed };
    // Waits up to `timeout` for the next event. kOverflowed: this watcher fell more than its
    // capacity behind and events were lost; it stays cut off (subscribe again).
    Result Next(Event* event, absl::Duration timeout);
    uint64_t dropped() const;

   private:
    friend class EventBus;
    EventBus* bus_;
    const size_t capacity_;
    mutable absl::Mutex mu_;
    std::deque<Event> queue_ ABSL_GUARDED_BY(mu_);
    uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
    bool overflowed_ ABSL_GUARDED_BY(mu_) = false;
  };

  EventBus() = default;
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  std::unique_ptr<Subscription> Subscribe(size_t capacity = 4096);
  // Sets event.at_ns (at least `now`, above every earlier event's) and queues it for everyone.
  void Publish(Event event);
  size_t subscribers() const;
  uint64_t published() const;

 private:
  void Unsubscribe(Subscription* s);

  mutable absl::Mutex mu_;
  std::list<Subscription*> subs_ ABSL_GUARDED_BY(mu_);
  uint64_t published_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_ns_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_EVENTS_H_
