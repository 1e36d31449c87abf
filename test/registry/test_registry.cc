// Starting docker-registry with a generated YAML config, and pushing images with HttpClient.
#include "test/registry/test_registry.h"

#include <crypt.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "storage/registry/auth.h"
#include "storage/registry/digest.h"
#include "storage/registry/http.h"
#include "storage/registry/manifest.h"
#include "util/fd.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace berth::test {
namespace {

absl::StatusOr<int> FreePort() {
  UniqueFd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return absl::InternalError("cannot find a free port");
  }
  return ntohs(a.sin_port);
}

absl::StatusOr<std::string> Bcrypt(const std::string& password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn("$2b$", 5, nullptr, 0, salt, sizeof(salt)) == nullptr) {
    return absl::InternalError("crypt_gensalt failed");
  }
  struct crypt_data data {};
  const char* h = crypt_r(password.c_str(), salt, &data);
  if (h == nullptr || h[0] == '*') return absl::InternalError("bcrypt failed");
  return std::string(h);
}

std::string AuthHeader(const std::string& user, const std::string& password) {
  if (user.empty()) return "";
  return "Authorization: Basic " + registry::Base64Encode(user + ":" + password);
}

registry::HttpClient& Http() {
  static auto* client = new registry::HttpClient(absl::Seconds(30), absl::Seconds(10));
  return *client;
}

absl::Status Check(const absl::StatusOr<registry::HttpResponse>& r, long want,
                   absl::string_view what) {
  if (!r.ok()) return r.status();
  if (r->status != want) {
    return absl::InternalError(absl::StrCat(what, ": HTTP ", r->status, " ", r->body));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> PushBlob(const std::string& base, const std::string& repo,
                                     const std::string& data, const std::string& auth) {
  std::string digest = registry::DigestOf(data);
  registry::HttpRequest post{"POST", absl::StrCat(base, "/v2/", repo, "/blobs/uploads/")};
  if (!auth.empty()) post.headers.push_back(auth);
  auto r = Http().Do(post);
  if (absl::Status s = Check(r, 202, "start upload"); !s.ok()) return s;
  std::string loc = r->headers["location"];
  if (absl::StartsWith(loc, "/")) loc = base + loc;
  registry::HttpRequest put{
      "PUT", absl::StrCat(loc, absl::StrContains(loc, '?') ? "&" : "?", "digest=", digest)};
  put.headers = {"Content-Type: application/octet-stream"};
  if (!auth.empty()) put.headers.push_back(auth);
  put.body = data;
  r = Http().Do(put);
  if (absl::Status s = Check(r, 201, "finish upload"); !s.ok()) return s;
  return digest;
}

absl::StatusOr<std::string> PushManifest(const std::string& base, const std::string& repo,
                                         const std::string& ref, const std::string& body,
                                         const std::string& media_type, const std::string& auth) {
  registry::HttpRequest put{"PUT", absl::StrCat(base, "/v2/", repo, "/manifests/", ref)};
  put.headers = {"Content-Type: " + media_type};
  if (!auth.empty()) put.headers.push_back(auth);
  put.body = body;
  auto r = Http().Do(put);
  if (absl::Status s = Check(r, 201, "put manifest " + ref); !s.ok()) return s;
  return registry::DigestOf(body);
}

// Pushes config + layers + manifest (by digest); returns {config digest, manifest digest,
// manifest}.
absl::StatusOr<std::tuple<std::string, std::string, std::string>> PushSingle(
    const std::string& base, const std::string& repo, const ImageToPush& image,
    const std::string& auth) {
  nlohmann::json cfg = {{"architecture", image.architecture},
                        {"os", "linux"},
                        {"created", "2023-11-14T22:13:20Z"},
                        {"config", {{"Cmd", image.cmd}, {"Env", image.env}}},
                        {"rootfs", {{"type", "layers"}, {"diff_ids", nlohmann::json::array()}}}};
  if (!image.user.empty()) cfg["config"]["User"] = image.user;
  if (!image.stop_signal.empty()) cfg["config"]["StopSignal"] = image.stop_signal;
  nlohmann::json layers = nlohmann::json::array();
  for (const Layer& l : image.layers) {
    cfg["rootfs"]["diff_ids"].push_back(l.diff_id);
    auto d = PushBlob(base, repo, l.blob, auth);
    if (!d.ok()) return d.status();
    layers.push_back({{"mediaType", l.media_type}, {"digest", *d}, {"size", l.blob.size()}});
  }
  std::string cfg_bytes = cfg.dump();
  auto cfg_digest = PushBlob(base, repo, cfg_bytes, auth);
  if (!cfg_digest.ok()) return cfg_digest.status();
  nlohmann::json m = {{"schemaVersion", 2},
                      {"mediaType", registry::kOciManifest},
                      {"config",
                       {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                        {"digest", *cfg_digest},
                        {"size", cfg_bytes.size()}}},
                      {"layers", layers}};
  std::string body = m.dump();
  auto md = PushManifest(base, repo, registry::DigestOf(body), body, registry::kOciManifest, auth);
  if (!md.ok()) return md.status();
  return std::make_tuple(*cfg_digest, *md, body);
}

}  // namespace

TestRegistry::TestRegistry(std::string dir, std::string host, pid_t pid)
    : dir_(std::move(dir)), host_(std::move(host)), pid_(pid) {}

TestRegistry::~TestRegistry() {
  kill(pid_, SIGKILL);
  int status;
  waitpid(pid_, &status, 0);
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string TestRegistry::BlobDataPath(const std::string& digest) const {
  std::string hex = digest.substr(7);
  return absl::StrCat(dir_, "/data/docker/registry/v2/blobs/sha256/", hex.substr(0, 2), "/", hex,
                      "/data");
}

absl::StatusOr<std::unique_ptr<TestRegistry>> TestRegistry::Start(TestRegistryOptions options) {
  const char* base = getenv("TEST_TMPDIR");
  std::string dir = std::string(base ? base : "/tmp") + "/registry-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) return absl::InternalError("mkdtemp failed");
  auto port = FreePort();
  if (!port.ok()) return port.status();
  std::string host = absl::StrCat("127.0.0.1:", *port);
  std::string config = absl::StrCat(
      "version: 0.1\nlog: {level: warn}\nstorage:\n  filesystem: {rootdirectory: ", dir,
      "/data}\n  delete: {enabled: true}\nhttp: {addr: ", host, "}\n");
  if (!options.username.empty()) {
    auto hash = Bcrypt(options.password);
    if (!hash.ok()) return hash.status();
    if (absl::Status s = WriteFileAtomic(dir + "/htpasswd", options.username + ":" + *hash + "\n");
        !s.ok()) {
      return s;
    }
    absl::StrAppend(&config, "auth:\n  htpasswd: {realm: berth-test, path: ", dir, "/htpasswd}\n");
  }
  if (absl::Status s = WriteFileAtomic(dir + "/config.yml", config); !s.ok()) return s;
  UniqueFd log(open((dir + "/registry.log").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  UniqueFd null(open("/dev/null", O_RDONLY | O_CLOEXEC));
  auto pid = SpawnProcess({"/usr/bin/docker-registry", "serve", dir + "/config.yml"}, {},
                          null.get(), log.get(), log.get());
  if (!pid.ok()) return pid.status();
  auto reg = std::make_unique<TestRegistry>(dir, host, *pid);
  // Waits for readiness (not a timing assertion): the registry needs a moment to listen.
  for (int i = 0; i < 300; ++i) {
    auto r = Http().Do(registry::HttpRequest{"GET", "http://" + host + "/v2/"});
    if (r.ok() && (r->status == 200 || r->status == 401)) return reg;
    if (waitpid(*pid, nullptr, WNOHANG) == *pid) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  auto logged = ReadFile(dir + "/registry.log");
  return absl::UnavailableError(
      absl::StrCat("docker-registry did not start: ", logged.ok() ? *logged : std::string()));
}

absl::StatusOr<PushedImage> PushImage(const std::string& host, const std::string& repository,
                                      const std::vector<std::string>& tags,
                                      const ImageToPush& image, const std::string& username,
                                      const std::string& password) {
  std::string base = "http://" + host;
  std::string auth = AuthHeader(username, password);
  auto single = PushSingle(base, repository, image, auth);
  if (!single.ok()) return single.status();
  PushedImage out;
  auto& [cfg, md, body] = *single;
  out.config_digest = cfg;
  out.manifest_digest = md;
  std::string top = body;
  std::string top_type = registry::kOciManifest;
  if (image.multi_arch_index) {
    ImageToPush other;
    other.architecture = "arm64";
    other.layers = {MakeLayer({File("arch", "arm64")})};
    auto o = PushSingle(base, repository, other, auth);
    if (!o.ok()) return o.status();
    out.other_arch_config_digest = std::get<0>(*o);
    auto entry = [](const std::string& digest, size_t size, const char* arch) {
      return nlohmann::json{{"mediaType", registry::kOciManifest},
                            {"digest", digest},
                            {"size", size},
                            {"platform", {{"architecture", arch}, {"os", "linux"}}}};
    };
    // arm64 first, so picking the first entry would be wrong.
    nlohmann::json index = {{"schemaVersion", 2},
                            {"mediaType", registry::kOciIndex},
                            {"manifests",
                             {entry(std::get<1>(*o), std::get<2>(*o).size(), "arm64"),
                              entry(md, body.size(), "amd64")}}};
    top = index.dump();
    top_type = registry::kOciIndex;
    out.index_digest = registry::DigestOf(top);
  }
  for (const std::string& tag : tags) {
    auto d = PushManifest(base, repository, tag, top, top_type, auth);
    if (!d.ok()) return d.status();
  }
  return out;
}

}  // namespace berth::test
