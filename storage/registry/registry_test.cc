// Unit tests of the registry client's pure parts: references, challenges, manifests, digests.
#include <string>

#include "gtest/gtest.h"
#include "storage/registry/auth.h"
#include "storage/registry/bounded_json.h"
#include "storage/registry/digest.h"
#include "storage/registry/manifest.h"
#include "storage/registry/reference.h"

namespace berth::registry {
namespace {

const std::string kDigest = "sha256:" + std::string(64, 'a');

TEST(ReferenceTest, ShortNameNormalisesToDockerHubLibraryLatest) {
  auto r = ParseReference("busybox");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->domain, "docker.io");
  EXPECT_EQ(r->repository, "library/busybox");
  EXPECT_EQ(r->tag, "latest");
  EXPECT_EQ(r->String(), "docker.io/library/busybox:latest");
}

TEST(ReferenceTest, NameWithTagKeepsTag) {
  auto r = ParseReference("busybox:1.36");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->TagRef(), "docker.io/library/busybox:1.36");
}

TEST(ReferenceTest, DockerHubUserRepositoryHasNoLibraryPrefix) {
  auto r = ParseReference("someone/app");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->String(), "docker.io/someone/app:latest");
}

TEST(ReferenceTest, HostWithPortAndNamespaces) {
  auto r = ParseReference("my.registry:5000/ns/sub/app:v1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->domain, "my.registry:5000");
  EXPECT_EQ(r->repository, "ns/sub/app");
  EXPECT_EQ(r->tag, "v1");
}

TEST(ReferenceTest, LocalhostAndPortWithoutTag) {
  auto r = ParseReference("localhost:5000/app");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->domain, "localhost:5000");
  EXPECT_EQ(r->tag, "latest");
  auto l = ParseReference("localhost/app");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->domain, "localhost");
}

TEST(ReferenceTest, DigestReferenceHasNoDefaultTag) {
  auto r = ParseReference("busybox@" + kDigest);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->tag, "");
  EXPECT_EQ(r->digest, kDigest);
  EXPECT_EQ(r->String(), "docker.io/library/busybox@" + kDigest);
}

TEST(ReferenceTest, TagAndDigestBothKept) {
  auto r = ParseReference("127.0.0.1:5000/a/b:v2@" + kDigest);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->tag, "v2");
  EXPECT_EQ(r->digest, kDigest);
}

TEST(ReferenceTest, IndexDockerIoIsDockerIo) {
  auto r = ParseReference("index.docker.io/library/busybox:1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->String(), "docker.io/library/busybox:1");
}

TEST(ReferenceTest, MalformedReferencesAreInvalidArgument) {
  for (const char* bad :
       {"", "UPPER", "busybox:", "busybox@sha256:abc", ":tag", "a//b", "-lead", "busybox:bad tag",
        "host:port/app", "a/b/", "busybox@md5:aa", "x:5000/app@sha256:ZZ"}) {
    auto r = ParseReference(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << bad;
  }
}

TEST(ChallengeTest, BearerWithQuotedParams) {
  auto c = ParseChallenge(
      "Bearer realm=\"https://auth.example/token\",service=\"registry.example\","
      "scope=\"repository:library/busybox:pull\"");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->scheme, "bearer");
  EXPECT_EQ(c->params["realm"], "https://auth.example/token");
  EXPECT_EQ(c->params["service"], "registry.example");
  EXPECT_EQ(c->params["scope"], "repository:library/busybox:pull");
}

TEST(ChallengeTest, BasicRealmAndEscapes) {
  auto c = ParseChallenge("Basic realm=\"a \\\"quoted\\\" realm\"");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->scheme, "basic");
  EXPECT_EQ(c->params["realm"], "a \"quoted\" realm");
}

TEST(ChallengeTest, UnterminatedQuoteIsInvalid) {
  EXPECT_FALSE(ParseChallenge("Bearer realm=\"https://x").ok());
  EXPECT_FALSE(ParseChallenge("").ok());
}

TEST(AuthFieldTest, DecodesUserAndPassword) {
  Credentials c;
  ASSERT_TRUE(DecodeAuthField(Base64Encode("alice:s3cr:et"), &c).ok());
  EXPECT_EQ(c.username, "alice");
  EXPECT_EQ(c.password, "s3cr:et");
  Credentials bad;
  EXPECT_FALSE(DecodeAuthField("!!!", &bad).ok());
  EXPECT_FALSE(DecodeAuthField(Base64Encode("nocolon"), &bad).ok());
}

TEST(DigestTest, KnownSha256) {
  EXPECT_EQ(DigestOf(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_TRUE(IsValidDigest(DigestOf("x")));
  EXPECT_FALSE(IsValidDigest("sha256:ABC"));
}

TEST(ManifestTest, ParsesOciManifest) {
  std::string body = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
    "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
                     kDigest +
                     R"(","size":12},
    "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" +
                     kDigest + R"(","size":34}]})";
  EXPECT_FALSE(IsIndex(body, ""));
  auto m = ParseManifest(body, "");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->config.size, 12);
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].size, 34);
}

TEST(ManifestTest, RejectsBadDigestsAndSizes) {
  EXPECT_FALSE(ParseManifest(R"({"config":{"digest":"sha256:x","size":1},"layers":[]})", "").ok());
  EXPECT_FALSE(
      ParseManifest(R"({"config":{"digest":")" + kDigest + R"(","size":-1},"layers":[]})", "")
          .ok());
  EXPECT_FALSE(ParseManifest("not json", "").ok());
  EXPECT_TRUE(absl::IsUnimplemented(ParseManifest(R"({"schemaVersion":1})", "").status()));
}

TEST(ManifestTest, IndexSelectsLinuxAmd64) {
  std::string other = "sha256:" + std::string(64, 'b');
  std::string body = R"({"schemaVersion":2,"manifests":[
    {"digest":")" + other +
                     R"(","size":5,"platform":{"os":"linux","architecture":"arm64"}},
    {"digest":")" + kDigest +
                     R"(","size":7,"platform":{"os":"linux","architecture":"amd64"}}]})";
  ASSERT_TRUE(IsIndex(body, kOciIndex));
  auto idx = ParseIndex(body, kOciIndex);
  ASSERT_TRUE(idx.ok());
  auto d = SelectPlatform(*idx, "linux", "amd64");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->digest, kDigest);
  EXPECT_TRUE(absl::IsNotFound(SelectPlatform(*idx, "linux", "s390x").status()));
}

TEST(BoundedJsonTest, DepthIsCountedOutsideStringsOnly) {
  EXPECT_EQ(JsonNestingDepth("1"), 0u);
  EXPECT_EQ(JsonNestingDepth(R"({"a":[1,{"b":[]}]})"), 4u);
  EXPECT_EQ(JsonNestingDepth(R"(["[[[[", "\"[[[", {}])"), 2u);
  EXPECT_EQ(JsonNestingDepth(R"([[]] [[[]]])"), 3u);
}

TEST(BoundedJsonTest, TooDeepIsInvalidArgumentNamingTheDocument) {
  std::string ok = std::string(64, '[') + std::string(64, ']');
  EXPECT_TRUE(ParseBoundedJson(ok, "doc").ok());
  std::string deep = std::string(65, '[') + std::string(65, ']');
  auto j = ParseBoundedJson(deep, "image config sha256:x");
  EXPECT_TRUE(absl::IsInvalidArgument(j.status()));
  EXPECT_NE(j.status().message().find("image config sha256:x"), std::string::npos) << j.status();
  EXPECT_TRUE(absl::IsInvalidArgument(ParseBoundedJson("{", "doc").status()));
}

TEST(ManifestTest, DeeplyNestedManifestIsRefusedBeforeItIsParsed) {
  // 4 M levels parse fine in nlohmann (its parser is iterative); copying the tree later would not.
  std::string body = R"({"schemaVersion":2,"layers":[],"config":)" + std::string(4 << 20, '[') +
                     std::string(4 << 20, ']') + "}";
  auto m = ParseManifest(body, kOciManifest);
  EXPECT_TRUE(absl::IsInvalidArgument(m.status()));
  EXPECT_NE(m.status().message().find("deeper than"), std::string::npos) << m.status();
  EXPECT_FALSE(IsIndex(body, ""));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseIndex(body, kOciIndex).status()));
}

}  // namespace
}  // namespace berth::registry
