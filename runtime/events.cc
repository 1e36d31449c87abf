// Bounded per-watcher queues behind one publish lock.
#include "runtime/events.h"

#include "glog/logging.h"

namespace berth::runtime {

EventBus::Subscription::~Subscription() { bus_->Unsubscribe(this); }

bool EventBus::Subscription::Next(Event* event, absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty(); };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) return false;
  *event = std::move(queue_.front());
  queue_.pop_front();
  return true;
}

uint64_t EventBus::Subscription::dropped() const {
  absl::MutexLock l(&mu_);
  return dropped_;
}

std::unique_ptr<EventBus::Subscription> EventBus::Subscribe(size_t capacity) {
  auto s = std::make_unique<Subscription>(Subscription::PrivateKey(), this, capacity);
  absl::MutexLock l(&mu_);
  subs_.push_back(s.get());
  return s;
}

void EventBus::Unsubscribe(Subscription* s) {
  absl::MutexLock l(&mu_);
  subs_.remove(s);
}

void EventBus::Publish(const Event& event) {
  absl::MutexLock l(&mu_);
  ++published_;
  for (Subscription* s : subs_) {
    absl::MutexLock sl(&s->mu_);
    if (s->queue_.size() >= s->capacity_) {
      if (s->dropped_++ % 1000 == 0) {
        LOG(WARNING) << "an event watcher is too slow: " << s->dropped_ << " events dropped";
      }
      continue;
    }
    s->queue_.push_back(event);
  }
}

size_t EventBus::subscribers() const {
  absl::MutexLock l(&mu_);
  return subs_.size();
}

uint64_t EventBus::published() const {
  absl::MutexLock l(&mu_);
  return published_;
}

}  // namespace berth::runtime
