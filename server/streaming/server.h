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
  // How long a SPDY client has to open the streams its request implies (kubelet: 30s); a
  // port-forward pair still missing one of its streams by then is dropped.
  absl::Duration stream_creation_timeout = absl::Seconds(30);

  // Limits on what clients can make the server hold. Every connection is a thread and two
  // descriptors; a SPDY/WebSocket session adds a few threads (a remotecommand one 3, each running
  // port-forward 2, each half-open SPDY pair a socketpair); these bound the sum.
  //
  // How long a client has to send its whole upgrade request once connected (one deadline for
  // all of it, however slowly it trickles in), and how large the request may be.
  absl::Duration handshake_timeout = absl::Seconds(30);
  size_t max_handshake_bytes = 16 << 10;
  // Upgrade requests being read at once, in all and from one client address. When full, a new
  // connection displaces the oldest request that has been in flight for over a second (a real
  // client sends its few hundred bytes at once), else it is answered 503: slow clients cannot
  // keep others out.
  size_t max_handshakes = 128;
  size_t max_handshakes_per_address = 32;
  // Connections served at once; more are answered 503.
  size_t max_connections = 1024;
  // Sessions at once for one container (exec, attach) or one pod (port-forward); more: 429.
  size_t max_connections_per_target = 128;
  // Streams one SPDY connection may have open; more are refused with RST_STREAM.
  size_t max_streams_per_connection = 256;
  // Port-forward pairs (SPDY) or ports (WebSocket, at most 127) on one connection, and in the
  // whole server. SPDY streams beyond them are refused with RST_STREAM.
  size_t max_port_forwards_per_connection = 128;
  size_t max_port_forwards = 1024;
  // The longest WebSocket message accepted, however framed (SPDY data frames stop at 16 MiB).
  size_t max_message_bytes = 16 << 20;
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
