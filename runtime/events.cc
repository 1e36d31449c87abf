// Bounded per-watcher queues behind one publish lock.
#include "runtime/events.h"

#include <algorithm>

#include "glog/logging.h"

namespace berth::engine {

EventBus::Subscription::~Subscription() { bus_->Unsubscribe(this); }

EventBus::Subscription::Result EventBus::Subscription::Next(Event* event, absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto ready = [this]()
                   ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || overflowed_; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) return Result::kTimeout;
  // What was queued before the overflow is still delivered: it happened, in order.
  if (queue_.empty()) return Result::kOverflowed;
  *event = std::move(queue_.front());
  queue_.pop_front();
  return Result::kEvent;
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

void EventBus::Publish(Event event) {
  absl::MutexLock l(&mu_);
  ++published_;
  event.at_ns = std::max(event.at_ns, last_ns_ + 1);
  last_ns_ = event.at_ns;
  for (Subscription* s : subs_) {
    absl::MutexLock sl(&s->mu_);
    if (s->overflowed_ || s->queue_.size() >= s->capacity_) {
      if (!s->overflowed_) {
        LOG(WARNING) << "an event watcher fell " << s->capacity_
                     << " events behind: cutting it off so it relists";
      }
      s->overflowed_ = true;
      ++s->dropped_;
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

}  // namespace berth::engine
