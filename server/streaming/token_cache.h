// TokenCache: the one-time tokens in streaming URLs, each naming one pending exec, attach or
// port-forward request until it is used once or expires.
#ifndef BERTH_SERVER_STREAMING_TOKEN_CACHE_H_
#define BERTH_SERVER_STREAMING_TOKEN_CACHE_H_

#include <cstddef>
#include <list>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/streaming/request.h"

namespace berth::streaming {

// Thread-safe. Tokens are 16 random bytes, URL-safe base64 without padding, so they can be put
// in a path as they are. The cache is bounded: when full, expired entries go first, then the
// oldest live one (a client that never connects must not grow berthd's memory).
class TokenCache {
 public:
  TokenCache(absl::Duration ttl, size_t max_entries) : ttl_(ttl), max_entries_(max_entries) {}

  // Stores `request` and returns its new token.
  std::string Insert(Request request, absl::Time now = absl::Now());
  // Removes the token and returns its request; nullopt when unknown, used or expired.
  std::optional<Request> Consume(const std::string& token, absl::Time now = absl::Now());
  size_t size() const;

 private:
  struct Entry {
    Request request;
    absl::Time expires;
    std::list<std::string>::iterator order;
  };
  void EvictLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration ttl_;
  const size_t max_entries_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> order_ ABSL_GUARDED_BY(mu_);  // oldest first
};

}  // namespace berth::streaming

#endif  // BERTH_SERVER_STREAMING_TOKEN_CACHE_H_
