// The CRI streaming server: exec, attach and port-forward URLs with one-time tokens, served over
// HTTP upgrades to SPDY/3.1 (Kubernetes remotecommand v1-v4 and portforward.k8s.io) and WebSocket
// (channel.k8s.io v1/v4/v5, binary or base64, and port-forward), as kubelet proxies them and
// crictl/kubectl speak them.
//
// Threading: one acceptor thread; each connection gets a thread that reads its frames, and each
// session runs its backend call (and output pumps) on threads of their own, so a backend call
// that blocks for as long as the process lives never stalls another connection or the reading of
// its own. Every thread is joined before the Server is destroyed.
#ifndef BERTH_SERVER_STREAMING_SERVER_H_
#define BERTH_SERVER_STREAMING_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/streaming/backend.h"
#include "server/streaming/request.h"

namespace berth::streaming {

struct ServerOptions {
  std::string address = "127.0.0.1";  // an IPv4 or IPv6 literal
  int port = 0;                       // 0: an ephemeral port, see Server::port()
  // The scheme://host:port the URLs start with; empty: http://<address>:<port>. Set it when
  // clients reach the server through another name (e.g. the node's address).
  std::string base_url;
  absl::Duration token_ttl = absl::Minutes(1);
  size_t max_tokens = 10000;
  // How long a SPDY client has to open the streams its request implies (kubelet: 30s).
  absl::Duration stream_creation_timeout = absl::Seconds(30);
  // How long a client has to send its upgrade request once connected.
  absl::Duration handshake_timeout = absl::Seconds(30);
  // Connections served at once; more are answered 503.
  size_t max_connections = 1024;
};

class Server {
 public:
  // Binds and starts serving. `backend` must outlive the Server.
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options, Backend* backend);
  // Stops accepting, ends every connection and waits for the sessions' threads, including
  // backend calls (which return once their stdio closes, see Backend).
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The URLs the CRI Exec/Attach/PortForward responses carry: <base>/exec/<token> etc. Each
  // token is good for one connection within options.token_ttl.
  std::string GetExecURL(const ExecRequest& request);
  std::string GetAttachURL(const AttachRequest& request);
  std::string GetPortForwardURL(const PortForwardRequest& request);

  int port() const { return port_; }
  std::string base_url() const { return base_url_; }

  struct Impl;

 private:
  std::string UrlFor(const Request& request);
  Server() = default;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  std::string base_url_;
};

// The name the CRI layer's design uses for it.
using StreamingServer = Server;

}  // namespace berth::streaming

#endif  // BERTH_SERVER_STREAMING_SERVER_H_
