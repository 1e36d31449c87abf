// Test helper: a tiny HTTP/1.1 server (optionally TLS with a throwaway self-signed certificate)
// on 127.0.0.1 that answers from a handler and records every request, for registry, redirect
// and credential-scoping tests.
#ifndef BERTH_STORAGE_REGISTRY_FAKE_HTTP_SERVER_H_
#define BERTH_STORAGE_REGISTRY_FAKE_HTTP_SERVER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace berth::registry::testing {

struct FakeRequest {
  std::string method;
  std::string target;                          // path and query, as sent
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;
};

struct FakeResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

class FakeHttpServer {
 public:
  using Handler = std::function<FakeResponse(const FakeRequest&)>;
  // Listens on an ephemeral loopback port; one connection at a time, closed after each answer.
  static absl::StatusOr<std::unique_ptr<FakeHttpServer>> Start(Handler handler, bool tls = false);
  ~FakeHttpServer();
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  std::string host() const;      // "127.0.0.1:<port>"
  std::string base_url() const;  // "http://127.0.0.1:<port>" or "https://..."
  std::vector<FakeRequest> requests() const;

  struct Tls;
  FakeHttpServer(int listen_fd, int port, Handler handler, std::unique_ptr<Tls> tls);

 private:
  void Serve();
  void ServeOne(int fd);

  int listen_fd_;
  int port_;
  Handler handler_;
  std::unique_ptr<Tls> tls_;
  mutable absl::Mutex mu_;
  std::vector<FakeRequest> requests_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// A handler serving a registry's read side from memory: GET/HEAD /v2/<repo>/manifests/<ref> and
// /v2/<repo>/blobs/<digest>, 404 otherwise.
class StaticRegistry {
 public:
  // Returns the digest.
  std::string AddBlob(const std::string& repo, std::string bytes);
  // Served under `tag` (when not empty) and under its digest, which is returned.
  std::string AddManifest(const std::string& repo, const std::string& tag, std::string body,
                          std::string media_type);
  FakeResponse Answer(const FakeRequest& req) const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::pair<std::string, std::string>> docs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::registry::testing

#endif  // BERTH_STORAGE_REGISTRY_FAKE_HTTP_SERVER_H_
