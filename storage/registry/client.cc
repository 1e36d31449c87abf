// Endpoint selection (mirrors, insecure hosts), the auth handshake with token caching, and
// verified manifest and blob transfers.
#include "storage/registry/client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"
#include "storage/registry/auth.h"
#include "storage/registry/bounded_json.h"
#include "storage/registry/digest.h"
#include "storage/registry/http.h"
#include "storage/registry/trust.h"
#include "util/fd.h"
#include "util/fs.h"

namespace berth::registry {
namespace {

struct Endpoint {
  std::string base;  // "https://registry-1.docker.io", no trailing slash
  std::string host;  // "registry-1.docker.io"
  bool mirror = false;
  bool skip_tls_verify = false;
};

constexpr char kManifestAccept[] =
    "Accept: application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

std::string EscapeForUrl(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      absl::StrAppend(&out, "%", absl::StrFormat("%02X", c));
    }
  }
  return out;
}

absl::Status StatusForHttp(long status, absl::string_view what) {
  std::string msg = absl::StrCat(what, ": HTTP ", status);
  switch (status) {
    case 401:
      return absl::UnauthenticatedError(msg);
    case 403:
      return absl::PermissionDeniedError(msg);
    case 404:
      return absl::NotFoundError(msg);
    case 429:
      return absl::ResourceExhaustedError(msg);
    default:
      return status >= 500 ? absl::UnavailableError(msg) : absl::UnknownError(msg);
  }
}

// One status out of the attempts on every endpoint: auth refusals win over absence, absence over
// transport failures, and the message lists every attempt.
absl::Status Combine(absl::string_view what, const std::vector<absl::Status>& errors) {
  absl::StatusCode code = absl::StatusCode::kUnavailable;
  for (const auto& s : errors) {
    if (s.code() == absl::StatusCode::kUnauthenticated ||
        s.code() == absl::StatusCode::kPermissionDenied) {
      code = s.code();
      break;
    }
    if (s.code() == absl::StatusCode::kNotFound) code = s.code();
    if (s.code() == absl::StatusCode::kDataLoss && code != absl::StatusCode::kNotFound) {
      code = s.code();
    }
  }
  std::vector<std::string> parts;
  for (const auto& s : errors) parts.emplace_back(s.message());
  return absl::Status(code, absl::StrCat(what, ": ", absl::StrJoin(parts, "; ")));
}

}  // namespace

struct RegistryClient::Impl {
  RegistryConfig config;
  HttpClient http;
  absl::Mutex mu;
  struct CachedAuth {
    std::string header;
    absl::Time expires;
  };
  absl::flat_hash_map<std::string, CachedAuth> auth_cache ABSL_GUARDED_BY(mu);
  // Insecure registries found to speak plain HTTP: their HTTPS attempt is skipped from then on.
  absl::flat_hash_set<std::string> plain_http ABSL_GUARDED_BY(mu);

  explicit Impl(RegistryConfig c)
      : config(std::move(c)), http(config.stall_timeout, config.connect_timeout) {}

  std::vector<Endpoint> Endpoints(const std::string& domain) {
    std::vector<Endpoint> out;
    auto it = config.hosts.find(domain);
    bool insecure = IsLoopbackHost(domain);
    if (it != config.hosts.end()) {
      insecure = insecure || it->second.insecure;
      for (std::string m : it->second.mirrors) {
        while (absl::EndsWith(m, "/")) m.pop_back();
        if (absl::EndsWith(m, "/v2")) m.resize(m.size() - 3);
        if (!absl::StrContains(m, "://")) m = "https://" + m;
        Endpoint e{m, UrlHost(m), true, false};
        auto mh = config.hosts.find(e.host);
        e.skip_tls_verify =
            IsLoopbackHost(e.host) || (mh != config.hosts.end() && mh->second.insecure);
        out.push_back(e);
      }
    }
    std::string host = domain == kDockerHubDomain ? "registry-1.docker.io" : domain;
    bool plain = false;
    if (insecure) {
      absl::MutexLock l(&mu);
      plain = plain_http.contains(host);
    }
    if (!plain) out.push_back(Endpoint{"https://" + host, host, false, insecure});
    if (insecure) out.push_back(Endpoint{"http://" + host, host, false, true});
    return out;
  }

  bool ConfiguredInsecure(const std::string& host) const {
    auto it = config.hosts.find(host);
    return it != config.hosts.end() && it->second.insecure;
  }

  static std::string CacheKey(const Endpoint& ep, const Reference& ref, const Credentials& c,
                              bool use) {
    std::string id = use ? DigestOf(absl::StrCat(c.username, "\n", c.password, "\n",
                                                 c.identity_token, "\n", c.registry_token))
                         : "anonymous";
    return absl::StrCat(ep.base, "|", ref.repository, "|", id);
  }

  absl::StatusOr<std::string> FetchToken(const Endpoint& ep, const Reference& ref,
                                         const Challenge& ch, const Credentials& creds, bool use,
                                         absl::Duration* ttl) {
    auto realm = ch.params.find("realm");
    if (realm == ch.params.end() || !(absl::StartsWith(realm->second, "https://") ||
                                      absl::StartsWith(realm->second, "http://"))) {
      return absl::UnauthenticatedError(
          absl::StrCat(ep.base, " asked for a bearer token without a usable realm"));
    }
    // The realm is judged on its own: a registry we trust with plain HTTP or unverified TLS does
    // not extend that to whatever host it names as its token server.
    std::string realm_host = UrlHost(realm->second);
    bool realm_insecure = IsLoopbackHost(realm_host) || ConfiguredInsecure(realm_host);
    if (use && !MaySendCredentialsToRealm(creds, realm->second, ep.host, realm_insecure)) {
      LOG(WARNING) << ep.base << " names token realm " << realm_host
                   << " over plain HTTP: asking it for a token without the pull's credentials";
      use = false;
    }
    std::string service = ch.params.count("service") ? ch.params.at("service") : "";
    std::string scope = ch.params.count("scope")
                            ? ch.params.at("scope")
                            : absl::StrCat("repository:", ref.repository, ":pull");
    HttpRequest req;
    if (use && !creds.identity_token.empty()) {
      req.method = "POST";
      req.url = realm->second;
      req.headers.push_back("Content-Type: application/x-www-form-urlencoded");
      req.body = absl::StrCat(
          "grant_type=refresh_token&client_id=berth&service=", EscapeForUrl(service),
          "&scope=", EscapeForUrl(scope), "&refresh_token=", EscapeForUrl(creds.identity_token));
    } else {
      req.url = absl::StrCat(realm->second, absl::StrContains(realm->second, '?') ? "&" : "?",
                             "service=", EscapeForUrl(service), "&scope=", EscapeForUrl(scope));
      if (use && !creds.username.empty()) {
        req.headers.push_back(absl::StrCat("Authorization: Basic ",
                                           Base64Encode(creds.username + ":" + creds.password)));
      }
    }
    req.skip_tls_verify = realm_host == ep.host ? ep.skip_tls_verify : realm_insecure;
    auto resp = http.Do(req, nullptr, 1 << 20);
    if (!resp.ok()) return resp.status();
    if (resp->status != 200) {
      return StatusForHttp(resp->status == 400 ? 401 : resp->status,
                           absl::StrCat("token request to ", UrlHost(realm->second)));
    }
    auto parsed = ParseBoundedJson(resp->body, "token response");
    if (!parsed.ok() || !parsed->is_object()) {
      return absl::UnauthenticatedError("token endpoint answered with invalid JSON");
    }
    const nlohmann::json& j = *parsed;
    std::string token;
    if (auto t = j.find("token"); t != j.end() && t->is_string()) token = t->get<std::string>();
    if (auto t = j.find("access_token"); token.empty() && t != j.end() && t->is_string()) {
      token = t->get<std::string>();
    }
    if (token.empty()) return absl::UnauthenticatedError("token endpoint returned no token");
    *ttl = absl::Seconds(60);
    if (auto e = j.find("expires_in"); e != j.end() && e->is_number_integer()) {
      // Clamped both ways: a huge or negative value must not overflow the expiry time.
      *ttl = absl::Seconds(std::clamp<int64_t>(e->get<int64_t>(), 10, 24 * 3600));
    }
    return token;
  }

  // One request to an endpoint, answering an auth challenge once.
  absl::StatusOr<HttpResponse> Get(const Endpoint& ep, const Reference& ref,
                                   const std::string& path, const std::vector<std::string>& headers,
                                   const Credentials& creds, const BodySink& sink,
                                   size_t max_body) {
    bool use = MayUseCredentials(creds, ref.domain, ep.host, ep.mirror);
    std::string key = CacheKey(ep, ref, creds, use);
    std::string auth;
    {
      absl::MutexLock l(&mu);
      auto it = auth_cache.find(key);
      if (it != auth_cache.end() && it->second.expires > absl::Now()) auth = it->second.header;
    }
    if (auth.empty() && use && !creds.registry_token.empty()) {
      auth = "Authorization: Bearer " + creds.registry_token;
    }
    HttpRequest req;
    req.url = absl::StrCat(ep.base, "/v2/", ref.repository, path);
    req.headers = headers;
    req.skip_tls_verify = ep.skip_tls_verify;
    if (!auth.empty()) req.headers.push_back(auth);
    auto resp = http.Do(req, sink, max_body);
    if (resp.ok() && !ep.mirror && absl::StartsWith(ep.base, "http://")) {
      absl::MutexLock l(&mu);
      plain_http.insert(ep.host);
    }
    if (!resp.ok() || resp->status != 401) return resp;

    auto ch = ParseChallenge(resp->headers["www-authenticate"]);
    if (!ch.ok()) return StatusForHttp(401, absl::StrCat("GET ", req.url));
    absl::Duration ttl = absl::Hours(1);
    if (ch->scheme == "bearer") {
      auto token = FetchToken(ep, ref, *ch, creds, use, &ttl);
      if (!token.ok()) return token.status();
      auth = "Authorization: Bearer " + *token;
    } else if (ch->scheme == "basic") {
      if (!use || creds.username.empty()) {
        return absl::UnauthenticatedError(
            absl::StrCat("GET ", req.url, ": registry requires a username and password"));
      }
      auth = "Authorization: Basic " + Base64Encode(creds.username + ":" + creds.password);
    } else {
      return absl::UnauthenticatedError(
          absl::StrCat("GET ", req.url, ": unsupported auth scheme \"", ch->scheme, "\""));
    }
    {
      absl::MutexLock l(&mu);
      // Leave a margin so a token does not expire in the middle of a request.
      auth_cache[key] = CachedAuth{auth, absl::Now() + ttl - absl::Seconds(5)};
    }
    req.headers = headers;
    req.headers.push_back(auth);
    return http.Do(req, sink, max_body);
  }

  // Fetches one manifest document by tag or digest, trying every endpoint in order.
  absl::StatusOr<std::pair<std::string, std::string>> FetchManifest(
      const Reference& ref, const std::string& tag_or_digest, const Credentials& creds,
      std::string* digest) {
    std::vector<absl::Status> errors;
    for (const Endpoint& ep : Endpoints(ref.domain)) {
      auto resp = Get(ep, ref, "/manifests/" + tag_or_digest, {kManifestAccept}, creds, nullptr,
                      static_cast<size_t>(std::max<int64_t>(1, config.max_manifest_bytes)));
      std::string what =
          absl::StrCat("GET ", ep.base, "/v2/", ref.repository, "/manifests/", tag_or_digest);
      if (!resp.ok()) {
        errors.push_back(resp.status());
        continue;
      }
      if (resp->status != 200) {
        errors.push_back(StatusForHttp(resp->status, what));
        continue;
      }
      std::string got = DigestOf(resp->body);
      if (IsValidDigest(tag_or_digest) && got != tag_or_digest) {
        errors.push_back(
            absl::DataLossError(absl::StrCat(what, ": manifest bytes have digest ", got)));
        continue;
      }
      auto dcd = resp->headers.find("docker-content-digest");
      if (dcd != resp->headers.end() && IsValidDigest(dcd->second) && dcd->second != got) {
        errors.push_back(
            absl::DataLossError(absl::StrCat(what, ": Docker-Content-Digest ", dcd->second,
                                             " does not match the bytes (", got, ")")));
        continue;
      }
      *digest = got;
      return std::make_pair(std::move(resp->body), resp->headers["content-type"]);
    }
    return Combine(absl::StrCat("manifest of ", ref.Name(), ":", tag_or_digest), errors);
  }
};

RegistryClient::RegistryClient(RegistryConfig config)
    : impl_(std::make_unique<Impl>(std::move(config))) {}

RegistryClient::~RegistryClient() = default;

const RegistryConfig& RegistryClient::config() const { return impl_->config; }

absl::StatusOr<ResolvedManifest> RegistryClient::Resolve(const Reference& ref,
                                                         const Credentials& creds) {
  ResolvedManifest out;
  std::string what = ref.digest.empty() ? ref.tag : ref.digest;
  auto doc = impl_->FetchManifest(ref, what, creds, &out.digest);
  if (!doc.ok()) return doc.status();
  auto named = [&](const absl::Status& s, absl::string_view kind, absl::string_view digest) {
    return absl::Status(s.code(),
                        absl::StrCat(ref.String(), ": ", kind, " ", digest, ": ", s.message()));
  };
  if (IsIndex(doc->first, doc->second)) {
    auto index = ParseIndex(doc->first, doc->second);
    if (!index.ok()) return named(index.status(), "index", out.digest);
    auto chosen = SelectPlatform(*index, "linux", HostArchitecture());
    if (!chosen.ok()) {
      return absl::NotFoundError(absl::StrCat(ref.String(), ": ", chosen.status().message()));
    }
    doc = impl_->FetchManifest(ref, chosen->digest, creds, &out.manifest_digest);
    if (!doc.ok()) return doc.status();
    if (IsIndex(doc->first, doc->second)) {
      return absl::InvalidArgumentError(
          absl::StrCat(ref.String(), ": index entry ", chosen->digest, " is itself an index"));
    }
  } else {
    out.manifest_digest = out.digest;
  }
  auto m = ParseManifest(doc->first, doc->second);
  if (!m.ok()) return named(m.status(), "manifest", out.manifest_digest);
  out.manifest = std::move(*m);
  out.manifest_body = std::move(doc->first);
  return out;
}

absl::Status RegistryClient::FetchBlob(const Reference& ref, const Descriptor& blob,
                                       const std::string& dest, const Credentials& creds) {
  if (!IsValidDigest(blob.digest) || blob.size < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid blob descriptor \"", blob.digest, "\""));
  }
  std::vector<absl::Status> errors;
  for (const Endpoint& ep : impl_->Endpoints(ref.domain)) {
    std::string tmp = absl::StrCat(dest, ".tmp-", NewId().substr(0, 16));
    UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.valid()) {
      return absl::InternalError(absl::StrCat("create ", tmp, ": ", strerror(errno)));
    }
    Sha256 hash;
    int64_t received = 0;
    bool write_failed = false;
    BodySink sink = [&](absl::string_view data) {
      received += data.size();
      if (received > blob.size) return false;  // more bytes than the descriptor allows
      hash.Update(data);
      const char* p = data.data();
      size_t left = data.size();
      while (left > 0) {
        ssize_t n = write(fd.get(), p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          write_failed = true;
          return false;
        }
        p += n;
        left -= n;
      }
      return true;
    };
    std::string what = absl::StrCat("blob ", blob.digest, " from ", ep.base);
    auto resp = impl_->Get(ep, ref, "/blobs/" + blob.digest, {}, creds, sink, 64 << 10);
    absl::Status st;
    if (write_failed) {
      st = absl::InternalError(absl::StrCat("write ", tmp, ": ", strerror(errno)));
    } else if (received > blob.size) {
      st =
          absl::DataLossError(absl::StrCat(what, ": more than the expected ", blob.size, " bytes"));
    } else if (!resp.ok()) {
      st = resp.status();
    } else if (resp->status != 200) {
      st = StatusForHttp(resp->status, what);
    } else if (received != blob.size) {
      st = absl::DataLossError(
          absl::StrCat(what, ": got ", received, " bytes, expected ", blob.size));
    } else if (std::string got = hash.Finish(); got != blob.digest) {
      st = absl::DataLossError(absl::StrCat(what, ": content has digest ", got));
    } else if (fsync(fd.get()) != 0 || rename(tmp.c_str(), dest.c_str()) != 0) {
      st = absl::InternalError(absl::StrCat("store ", dest, ": ", strerror(errno)));
    } else {
      return absl::OkStatus();
    }
    unlink(tmp.c_str());
    if (st.code() == absl::StatusCode::kInternal) return st;  // local trouble: no point retrying
    if (absl::IsDataLoss(st)) LOG(WARNING) << "fetching " << ref.Name() << ": " << st.message();
    errors.push_back(st);
  }
  return Combine(absl::StrCat("fetching ", ref.Name(), " ", blob.digest), errors);
}

}  // namespace berth::registry
