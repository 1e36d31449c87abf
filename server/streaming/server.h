// The CRI streaming server: exec, attach and port-forward URLs with one-time tokens, served over
// HTTP upgrades to SPDY/3.1 (Kubernetes remotecommand v1-v4 and portforward) and WebSocket
// (channel.k8s.io v4/v5 framing), as kubelet proxies them and crictl/kubectl speak them.
#ifndef BERTH_SERVER_STREAMING_SERVER_H_
#define BERTH_SERVER_STREAMING_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/stream_io.h"

namespace berth::streaming {

// What runs behind a session; the engine implements it. Calls block until the session ends.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual absl::StatusOr<int> Exec(const std::string& container_id,
                                   const std::vector<std::string>& cmd,
                                   const runtime::StreamIO& io) = 0;
  virtual absl::Status Attach(const std::string& container_id, const runtime::StreamIO& io) = 0;
  virtual absl::Status PortForward(const std::string& pod_id, int32_t port, int fd) = 0;
};

struct Request {
  enum Kind { kExec, kAttach, kPortForward } kind = kExec;
  std::string container_id;  // exec, attach
  std::vector<std::string> cmd;
  bool tty = false, stdin = false, stdout = false, stderr = false;
  std::string pod_id;  // port-forward
  std::vector<int32_t> ports;
};

struct ServerOptions {
  std::string address = "127.0.0.1";
  int port = 0;  // 0: ephemeral
  absl::Duration token_ttl = absl::Minutes(1);
  size_t max_tokens = 10000;
  absl::Duration stream_creation_timeout = absl::Seconds(30);
};

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options, Backend* backend);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The URL a CRI Exec/Attach/PortForward response carries; the token is single-use.
  std::string UrlFor(const Request& request);
  int port() const { return port_; }
  std::string base_url() const;

  struct Impl;
  struct PrivateKey {
   private:
    friend class Server;
    PrivateKey() = default;
  };
  Server(PrivateKey, ServerOptions options, Backend* backend);

 private:
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  std::string address_;
};

}  // namespace berth::streaming

#endif  // BERTH_SERVER_STREAMING_SERVER_H_
