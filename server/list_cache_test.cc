// EncodedListCache: the response parses as the typed list, entries are encoded once per view,
// and entries of views the engine has replaced are dropped.
#include "server/list_cache.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "proto/berth/v1/records.pb.h"
#include "proto/runtime/v1/api.pb.h"

namespace berth::server {
namespace {

namespace cri = runtime::v1;
using View = std::shared_ptr<const berth::v1::Container>;

View MakeView(int i, const std::string& state_label) {
  auto c = std::make_shared<berth::v1::Container>();
  c->mutable_config()->set_id(absl::StrCat("id-", i));
  (*c->mutable_config()->mutable_cri()->mutable_labels())["state"] = state_label;
  (*c->mutable_config()->mutable_cri()->mutable_labels())["n"] = absl::StrCat(i);
  return c;
}

std::string Encode(const berth::v1::Container& c, int* calls) {
  ++*calls;
  cri::Container out;
  out.set_id(c.config().id());
  *out.mutable_labels() = c.config().cri().labels();
  return out.SerializeAsString();
}

cri::ListContainersResponse Reparse(const cri::ListContainersResponse& resp) {
  cri::ListContainersResponse parsed;
  EXPECT_TRUE(parsed.ParseFromString(resp.SerializeAsString()));
  return parsed;
}

TEST(EncodedListCacheTest, ResponseParsesAsTheTypedListInOrder) {
  EncodedListCache<berth::v1::Container> cache;
  std::vector<View> views;
  for (int i = 0; i < 5; ++i) views.push_back(MakeView(i, "up"));
  int calls = 0;
  cri::ListContainersResponse resp;
  cache.Append(
      views, cri::ListContainersResponse::kContainersFieldNumber,
      [](const berth::v1::Container&) { return true; },
      [&](const berth::v1::Container& c) { return Encode(c, &calls); }, &resp);
  cri::ListContainersResponse parsed = Reparse(resp);
  ASSERT_EQ(parsed.containers_size(), 5);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(parsed.containers(i).id(), absl::StrCat("id-", i));
    EXPECT_EQ(parsed.containers(i).labels().at("n"), absl::StrCat(i));
  }
  EXPECT_EQ(parsed.GetReflection()->GetUnknownFields(parsed).field_count(), 0)
      << "nothing but containers on the wire";
}

TEST(EncodedListCacheTest, EncodesEachViewOnceAndAgainWhenReplaced) {
  EncodedListCache<berth::v1::Container> cache;
  std::vector<View> views = {MakeView(0, "up"), MakeView(1, "up")};
  int calls = 0;
  auto list = [&](const std::vector<View>& vs) {
    cri::ListContainersResponse resp;
    cache.Append(
        vs, 1, [](const berth::v1::Container&) { return true; },
        [&](const berth::v1::Container& c) { return Encode(c, &calls); }, &resp);
    return Reparse(resp);
  };
  list(views);
  list(views);
  EXPECT_EQ(calls, 2);
  views[1] = MakeView(1, "down");  // the engine publishes a new snapshot after a transition
  cri::ListContainersResponse parsed = list(views);
  EXPECT_EQ(calls, 3);
  ASSERT_EQ(parsed.containers_size(), 2);
  EXPECT_EQ(parsed.containers(1).labels().at("state"), "down");
}

TEST(EncodedListCacheTest, FilterSkipsWithoutEncoding) {
  EncodedListCache<berth::v1::Container> cache;
  std::vector<View> views = {MakeView(0, "up"), MakeView(1, "down"), MakeView(2, "up")};
  int calls = 0;
  cri::ListContainersResponse resp;
  cache.Append(
      views, 1,
      [](const berth::v1::Container& c) { return c.config().cri().labels().at("state") == "up"; },
      [&](const berth::v1::Container& c) { return Encode(c, &calls); }, &resp);
  cri::ListContainersResponse parsed = Reparse(resp);
  ASSERT_EQ(parsed.containers_size(), 2);
  EXPECT_EQ(parsed.containers(0).id(), "id-0");
  EXPECT_EQ(parsed.containers(1).id(), "id-2");
  EXPECT_EQ(calls, 2);
}

TEST(EncodedListCacheTest, DropsEntriesOfViewsNoLongerPublished) {
  EncodedListCache<berth::v1::Container> cache;
  int calls = 0;
  std::vector<View> views = {MakeView(0, "up")};
  for (int round = 0; round < 500; ++round) {
    views[0] = MakeView(0, absl::StrCat("s", round));
    cri::ListContainersResponse resp;
    cache.Append(
        views, 1, [](const berth::v1::Container&) { return true; },
        [&](const berth::v1::Container& c) { return Encode(c, &calls); }, &resp);
  }
  EXPECT_EQ(calls, 500);
  EXPECT_LE(cache.size(), 1u + 64u + 1u) << "replaced snapshots are not kept forever";
}

}  // namespace
}  // namespace berth::server
