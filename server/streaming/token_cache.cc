// TokenCache: random one-time tokens with expiry and a size bound.
#include "server/streaming/token_cache.h"

#include <sys/random.h>

#include "absl/random/random.h"
#include "absl/strings/escaping.h"

namespace berth::streaming {
namespace {

std::string RandomToken() {
  std::string raw(16, '\0');
  // getrandom: tokens are capabilities, so they come from the kernel's CSPRNG.
  ssize_t n = getrandom(raw.data(), raw.size(), 0);
  if (n != static_cast<ssize_t>(raw.size())) {
    static thread_local absl::BitGen gen;
    for (char& c : raw) c = static_cast<char>(absl::Uniform<uint8_t>(gen));
  }
  return absl::WebSafeBase64Escape(raw);
}

}  // namespace

std::string TokenCache::Insert(Request request, absl::Time now) {
  absl::MutexLock l(&mu_);
  EvictLocked(now);
  std::string token;
  do {
    token = RandomToken();
  } while (entries_.contains(token));
  order_.push_back(token);
  entries_[token] = Entry{std::move(request), now + ttl_, std::prev(order_.end())};
  return token;
}

std::optional<Request> TokenCache::Consume(const std::string& token, absl::Time now) {
  absl::MutexLock l(&mu_);
  auto it = entries_.find(token);
  if (it == entries_.end()) return std::nullopt;
  Entry e = std::move(it->second);
  order_.erase(e.order);
  entries_.erase(it);
  if (now >= e.expires) return std::nullopt;
  return std::move(e.request);
}

size_t TokenCache::size() const {
  absl::MutexLock l(&mu_);
  return entries_.size();
}

void TokenCache::EvictLocked(absl::Time now) {
  // Entries expire in insertion order (one TTL for all), so the expired ones are at the front.
  while (!order_.empty() && entries_[order_.front()].expires <= now) {
    entries_.erase(order_.front());
    order_.pop_front();
  }
  while (max_entries_ > 0 && entries_.size() >= max_entries_) {
    entries_.erase(order_.front());
    order_.pop_front();
  }
}

}  // namespace berth::streaming
