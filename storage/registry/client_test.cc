// The registry client against loopback fake servers: which hosts get credentials, plain HTTP and
// redirects, and manifests too deep to parse safely; plus the trust rules as pure functions.
#include "storage/registry/client.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "storage/registry/auth.h"
#include "storage/registry/digest.h"
#include "storage/registry/fake_http_server.h"
#include "storage/registry/http.h"
#include "storage/registry/reference.h"
#include "storage/registry/trust.h"

namespace berth::registry {
namespace {

using testing::FakeHttpServer;
using testing::FakeRequest;
using testing::FakeResponse;
using testing::StaticRegistry;

const std::string kDigest = "sha256:" + std::string(64, 'a');

std::string ManifestBody() {
  return absl::StrCat(R"({"schemaVersion":2,"mediaType":")", kOciManifest,
                      R"(","config":{"mediaType":"application/vnd.oci.image.config.v1+json",)",
                      R"("digest":")", kDigest, R"(","size":2},"layers":[]})");
}

std::unique_ptr<FakeHttpServer> Serve(FakeHttpServer::Handler h, bool tls = false) {
  auto s = FakeHttpServer::Start(std::move(h), tls);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

bool AnyAuthorization(const FakeHttpServer& s) {
  for (const FakeRequest& r : s.requests()) {
    if (r.headers.count("authorization")) return true;
  }
  return false;
}

Credentials UserPassword(std::string server_address = "") {
  Credentials c;
  c.username = "alice";
  c.password = "secret";
  c.server_address = std::move(server_address);
  return c;
}

// A registry that answers the manifest only to `accept` in the Authorization header, and
// otherwise challenges with `challenge`.
FakeHttpServer::Handler ChallengingRegistry(std::string challenge, std::string accept) {
  return [challenge, accept](const FakeRequest& r) {
    auto it = r.headers.find("authorization");
    if (it != r.headers.end() && it->second == accept) {
      return FakeResponse{200, {{"Content-Type", kOciManifest}}, ManifestBody()};
    }
    return FakeResponse{401, {{"WWW-Authenticate", challenge}}, "{}"};
  };
}

TEST(TrustTest, LoopbackMeansAnAddressLiteralOfThisMachine) {
  for (const char* yes : {"127.0.0.1", "127.0.0.1:5000", "127.255.0.9:1", "localhost",
                          "LOCALHOST:5000", "[::1]", "[::1]:5000"}) {
    EXPECT_TRUE(IsLoopbackHost(yes)) << yes;
  }
  for (const char* no :
       {"127.evil.example", "127.evil.example:5000", "127.0.0.1.nip.io", "1127.0.0.1", "127.1",
        "0x7f.0.0.1", "localhost.evil.example", "evil-localhost", "[::2]", "[::1", "[::1]x",
        "127.0.0.1:", "127.0.0.1:x", "128.0.0.1", "", "::1", "[::ffff:8.8.8.8]"}) {
    EXPECT_FALSE(IsLoopbackHost(no)) << no;
  }
}

TEST(TrustTest, CredentialsWithoutServerAddressBelongToTheImagesRegistryOnly) {
  Credentials c = UserPassword();
  EXPECT_TRUE(MayUseCredentials(c, "docker.io", "registry-1.docker.io", /*mirror=*/false));
  EXPECT_FALSE(MayUseCredentials(c, "docker.io", "mirror.example", /*mirror=*/true));
  EXPECT_FALSE(MayUseCredentials(Credentials{}, "docker.io", "registry-1.docker.io", false));
}

TEST(TrustTest, CredentialsWithServerAddressGoToThatHostOnly) {
  Credentials hub = UserPassword("https://index.docker.io/v1/");
  EXPECT_TRUE(MayUseCredentials(hub, "docker.io", "registry-1.docker.io", false));
  EXPECT_FALSE(MayUseCredentials(hub, "quay.io", "quay.io", false));
  EXPECT_FALSE(MayUseCredentials(hub, "docker.io", "mirror.example", true));
  Credentials mirror = UserPassword("mirror.example:5000");
  EXPECT_TRUE(MayUseCredentials(mirror, "docker.io", "mirror.example:5000", true));
  EXPECT_FALSE(MayUseCredentials(mirror, "docker.io", "registry-1.docker.io", false));
}

TEST(TrustTest, RealmsGetCredentialsOverHttpsOrFromTrustedHostsOnly) {
  Credentials scoped = UserPassword("reg.example");
  Credentials unscoped = UserPassword();
  EXPECT_TRUE(
      MaySendCredentialsToRealm(scoped, "https://auth.example/token", "reg.example", false));
  EXPECT_TRUE(
      MaySendCredentialsToRealm(unscoped, "https://auth.example/token", "reg.example", false));
  EXPECT_FALSE(
      MaySendCredentialsToRealm(scoped, "http://auth.example/token", "reg.example", false));
  EXPECT_FALSE(
      MaySendCredentialsToRealm(scoped, "HTTP://auth.example/token", "reg.example", false));
  EXPECT_TRUE(MaySendCredentialsToRealm(scoped, "http://auth.example/token", "reg.example", true));
  EXPECT_TRUE(
      MaySendCredentialsToRealm(scoped, "http://127.0.0.1:5001/t", "127.0.0.1:5000", false));
  // Without server_address, a plain-HTTP realm must be the registry's own host.
  EXPECT_FALSE(
      MaySendCredentialsToRealm(unscoped, "http://127.0.0.1:5001/t", "127.0.0.1:5000", false));
  EXPECT_TRUE(
      MaySendCredentialsToRealm(unscoped, "http://127.0.0.1:5000/t", "127.0.0.1:5000", false));
  // The host curl would connect to is the one judged.
  EXPECT_FALSE(
      MaySendCredentialsToRealm(scoped, "http://127.0.0.1@evil.example/t", "reg.example", false));
}

TEST(UrlHostTest, ParsesLikeCurl) {
  EXPECT_EQ(UrlHost("https://a.B:5000/x?y"), "a.b:5000");
  EXPECT_EQ(UrlHost("https://a.b/x"), "a.b");
  EXPECT_EQ(UrlHost("my.registry:5000"), "my.registry:5000");
  EXPECT_EQ(UrlHost("https://user:pw@host.example:1/x"), "host.example:1");
  EXPECT_EQ(UrlHost("http://127.0.0.1@evil.example/"), "evil.example");
  EXPECT_EQ(UrlHost("http://[::1]:5000/v2/"), "[::1]:5000");
}

TEST(HttpTest, HttpsNeverRedirectsToPlainHttp) {
  auto plain = Serve([](const FakeRequest&) { return FakeResponse{200, {}, "leaked"}; });
  ASSERT_NE(plain, nullptr);
  std::string to = plain->base_url() + "/blob";
  auto tls = Serve(
      [to](const FakeRequest&) {
        return FakeResponse{302, {{"Location", to}}, ""};
      },
      /*tls=*/true);
  ASSERT_NE(tls, nullptr);
  HttpClient http(absl::Seconds(10), absl::Seconds(10));
  HttpRequest req;
  req.url = tls->base_url() + "/v2/x/blobs/y";
  req.headers.push_back("Authorization: Bearer t");
  req.skip_tls_verify = true;
  auto resp = http.Do(req);
  EXPECT_FALSE(resp.ok() && resp->status == 200 && resp->body == "leaked");
  EXPECT_TRUE(plain->requests().empty());
  EXPECT_EQ(tls->requests().size(), 1u);
}

TEST(HttpTest, RedirectsThatKeepOrUpgradeTheSchemeAreFollowed) {
  auto tls_target = Serve([](const FakeRequest&) { return FakeResponse{200, {}, "tls"}; }, true);
  ASSERT_NE(tls_target, nullptr);
  std::string to = tls_target->base_url() + "/b";
  auto plain = Serve([to](const FakeRequest&) {
    return FakeResponse{307, {{"Location", to}}, ""};
  });
  ASSERT_NE(plain, nullptr);
  HttpClient http(absl::Seconds(10), absl::Seconds(10));
  HttpRequest req;
  req.url = plain->base_url() + "/a";
  req.skip_tls_verify = true;
  auto resp = http.Do(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->body, "tls");
}

TEST(ClientTest, CredentialsWithoutServerAddressAreNotShownToMirrors) {
  auto mirror = Serve([](const FakeRequest&) {
    return FakeResponse{401, {{"WWW-Authenticate", "Basic realm=\"mirror\""}}, "{}"};
  });
  ASSERT_NE(mirror, nullptr);
  auto reg =
      Serve(ChallengingRegistry("Basic realm=\"reg\"", "Basic " + Base64Encode("alice:secret")));
  ASSERT_NE(reg, nullptr);
  RegistryConfig cfg;
  cfg.hosts[reg->host()].mirrors = {mirror->base_url()};
  RegistryClient client(cfg);
  auto ref = ParseReference(reg->host() + "/app:1");
  ASSERT_TRUE(ref.ok());
  auto got = client.Resolve(*ref, UserPassword());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(mirror->requests().empty());
  EXPECT_FALSE(AnyAuthorization(*mirror));
}

TEST(ClientTest, CredentialsWithoutServerAddressAreNotSentToAPlainHttpRealmElsewhere) {
  auto token = Serve([](const FakeRequest&) {
    return FakeResponse{200, {}, R"({"token":"tok"})"};
  });
  ASSERT_NE(token, nullptr);
  auto reg = Serve(ChallengingRegistry(
      absl::StrCat("Bearer realm=\"", token->base_url(), "/token\",service=\"reg\""),
      "Bearer tok"));
  ASSERT_NE(reg, nullptr);
  RegistryClient client(RegistryConfig{});
  auto ref = ParseReference(reg->host() + "/app:1");
  ASSERT_TRUE(ref.ok());
  auto got = client.Resolve(*ref, UserPassword());
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(token->requests().size(), 1u);
  EXPECT_FALSE(AnyAuthorization(*token));
}

TEST(ClientTest, CredentialsScopedToTheRegistryReachItsLoopbackRealm) {
  auto token = Serve([](const FakeRequest& r) {
    bool basic = r.headers.count("authorization") &&
                 r.headers.at("authorization") == "Basic " + Base64Encode("alice:secret");
    return basic ? FakeResponse{200, {}, R"({"token":"tok"})"} : FakeResponse{401, {}, "{}"};
  });
  ASSERT_NE(token, nullptr);
  auto reg = Serve(ChallengingRegistry(
      absl::StrCat("Bearer realm=\"", token->base_url(), "/token\""), "Bearer tok"));
  ASSERT_NE(reg, nullptr);
  RegistryClient client(RegistryConfig{});
  auto ref = ParseReference(reg->host() + "/app:1");
  ASSERT_TRUE(ref.ok());
  auto got = client.Resolve(*ref, UserPassword(reg->host()));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(AnyAuthorization(*token));
}

TEST(ClientTest, DeeplyNestedManifestIsRefusedNamingIt) {
  StaticRegistry content;
  std::string deep = R"({"schemaVersion":2,"config":)" + std::string(100000, '[') +
                     std::string(100000, ']') + R"(,"layers":[]})";
  std::string digest = content.AddManifest("app", "1", deep, kOciManifest);
  auto reg = Serve([&content](const FakeRequest& r) { return content.Answer(r); });
  ASSERT_NE(reg, nullptr);
  RegistryClient client(RegistryConfig{});
  auto ref = ParseReference(reg->host() + "/app:1");
  ASSERT_TRUE(ref.ok());
  auto got = client.Resolve(*ref, {});
  EXPECT_TRUE(absl::IsInvalidArgument(got.status())) << got.status();
  EXPECT_TRUE(absl::StrContains(got.status().message(), digest)) << got.status();
  EXPECT_TRUE(absl::StrContains(got.status().message(), "deeper than 64")) << got.status();
}

TEST(ClientTest, ManifestLargerThanTheLimitIsRefused) {
  StaticRegistry content;
  std::string body = ManifestBody();
  body.insert(body.size() - 1, absl::StrCat(",\"pad\":\"", std::string(2048, 'x'), "\""));
  content.AddManifest("app", "1", body, kOciManifest);
  auto reg = Serve([&content](const FakeRequest& r) { return content.Answer(r); });
  ASSERT_NE(reg, nullptr);
  RegistryConfig cfg;
  cfg.max_manifest_bytes = 1024;
  RegistryClient client(cfg);
  auto ref = ParseReference(reg->host() + "/app:1");
  ASSERT_TRUE(ref.ok());
  EXPECT_FALSE(client.Resolve(*ref, {}).ok());
  cfg.max_manifest_bytes = 4096;
  RegistryClient roomy(cfg);
  auto got = roomy.Resolve(*ref, {});
  EXPECT_TRUE(got.ok()) << got.status();
}

}  // namespace
}  // namespace berth::registry
