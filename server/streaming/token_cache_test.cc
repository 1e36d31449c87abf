// TokenCache: tokens are single-use, expire, stay bounded, and are URL-safe and distinct.
#include "server/streaming/token_cache.h"

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"

namespace berth::streaming {
namespace {

Request ExecOf(const std::string& id) {
  Request r;
  r.kind = Request::kExec;
  r.container_id = id;
  return r;
}

TEST(TokenCacheTest, ATokenReturnsItsRequestExactlyOnce) {
  TokenCache cache(absl::Minutes(1), 10);
  std::string t = cache.Insert(ExecOf("c1"));
  std::optional<Request> r = cache.Consume(t);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->container_id, "c1");
  EXPECT_FALSE(cache.Consume(t).has_value());
  EXPECT_FALSE(cache.Consume("never-issued").has_value());
}

TEST(TokenCacheTest, TokensExpireAfterTheirTtl) {
  TokenCache cache(absl::Minutes(1), 10);
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  std::string fresh = cache.Insert(ExecOf("fresh"), t0);
  std::string stale = cache.Insert(ExecOf("stale"), t0);
  EXPECT_TRUE(cache.Consume(fresh, t0 + absl::Seconds(59)).has_value());
  EXPECT_FALSE(cache.Consume(stale, t0 + absl::Minutes(1)).has_value());
}

TEST(TokenCacheTest, AFullCacheDropsExpiredThenOldestEntries) {
  TokenCache cache(absl::Minutes(1), 3);
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  std::string expired = cache.Insert(ExecOf("expired"), t0);
  std::string a = cache.Insert(ExecOf("a"), t0 + absl::Minutes(2));
  std::string b = cache.Insert(ExecOf("b"), t0 + absl::Minutes(2));
  EXPECT_EQ(cache.size(), 2u);  // the expired one went when `a` came
  std::string c = cache.Insert(ExecOf("c"), t0 + absl::Minutes(2));
  std::string d = cache.Insert(ExecOf("d"), t0 + absl::Minutes(2));
  EXPECT_EQ(cache.size(), 3u);
  const absl::Time later = t0 + absl::Minutes(2) + absl::Seconds(1);
  EXPECT_FALSE(cache.Consume(expired, later).has_value());
  EXPECT_FALSE(cache.Consume(a, later).has_value());  // oldest live entry, evicted for `d`
  EXPECT_TRUE(cache.Consume(b, later).has_value());
  EXPECT_TRUE(cache.Consume(c, later).has_value());
  EXPECT_TRUE(cache.Consume(d, later).has_value());
}

TEST(TokenCacheTest, TokensAreDistinctAndUrlSafe) {
  TokenCache cache(absl::Minutes(1), 1000);
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < 500; ++i) {
    std::string t = cache.Insert(ExecOf("c"));
    EXPECT_GE(t.size(), 11u);  // at least 8 random bytes
    EXPECT_EQ(
        t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        std::string::npos)
        << t;
    EXPECT_TRUE(seen.insert(t).second);
  }
}

}  // namespace
}  // namespace berth::streaming
