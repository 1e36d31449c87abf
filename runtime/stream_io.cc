// ResizeQueue: terminal sizes handed from a streaming connection to a session's resizer.
#include "runtime/stream_io.h"

#include <tuple>

namespace berth::engine {

void ResizeQueue::Push(uint16_t width, uint16_t height) {
  absl::MutexLock l(&mu_);
  sizes_.emplace_back(width, height);
}

void ResizeQueue::Close() {
  absl::MutexLock l(&mu_);
  closed_ = true;
}

bool ResizeQueue::closed() const {
  absl::MutexLock l(&mu_);
  return closed_ && sizes_.empty();
}

bool ResizeQueue::Pop(uint16_t* width, uint16_t* height, absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !sizes_.empty() || closed_; };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (sizes_.empty()) return false;
  std::tie(*width, *height) = sizes_.front();
  sizes_.pop_front();
  return true;
}

}  // namespace berth::engine
