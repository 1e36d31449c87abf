// Streaming server: accepts connections, checks the one-time token and the upgrade, negotiates
// the protocol and hands the connection to a SPDY or WebSocket session on its own thread.
#include "server/streaming/server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <list>
#include <map>
#include <sstream>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/websocket/rfc6455.hpp"
#include "glog/logging.h"
#include "server/streaming/handshake.h"
#include "server/streaming/session.h"
#include "server/streaming/threads.h"
#include "server/streaming/token_cache.h"
#include "server/streaming/ws_channel.h"
#include "util/fd.h"

namespace berth::streaming {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// A handshake in flight this long is slower than any real client's; under pressure it makes
// room for a new connection.
constexpr absl::Duration kSlowHandshake = absl::Seconds(1);

// Writes a whole response on `fd`, best effort: the connection closes right after.
void Respond(int fd, http::status status, const std::string& body) {
  http::response<http::string_body> res{status, 11};
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.set(http::field::connection, "close");
  res.body() = body;
  res.prepare_payload();
  std::ostringstream out;
  out << res;
  const std::string wire = out.str();
  WriteAll(fd, wire.data(), wire.size());
}

// Answers a request the server will not serve, then closes gracefully: closing with the
// client's bytes unread would reset the connection, and a reset can discard the answer before
// the client reads it. The wait is bounded so that it cannot be used to hold the connection.
void Refuse(int fd, http::status status, const std::string& body) {
  Respond(fd, status, body);
  ::shutdown(fd, SHUT_WR);
  const absl::Time deadline = absl::Now() + absl::Milliseconds(500);
  char buf[4096];
  for (size_t drained = 0; drained < (64 << 10);) {
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    pollfd p{fd, POLLIN, 0};
    if (ms <= 0 || poll(&p, 1, static_cast<int>(ms)) <= 0) return;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return;
    drained += static_cast<size_t>(n);
  }
}

// Reads the upgrade request into `parser`: one deadline for all of it, not per read, so a client
// trickling a byte at a time cannot hold the connection past it.
absl::Status ReadHandshake(int fd, absl::Time deadline, HandshakeParser* parser) {
  char buf[4096];
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("the upgrade request did not arrive in time");
    }
    pollfd p{fd, POLLIN, 0};
    const int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1)));
    int r = poll(&p, 1, static_cast<int>(std::min<int64_t>(ms, 1000)));
    if (r < 0 && errno != EINTR) return absl::UnavailableError(strerror(errno));
    if (r <= 0) continue;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return absl::UnavailableError("the client left during the upgrade request");
    absl::StatusOr<bool> done = parser->Feed(absl::string_view(buf, static_cast<size_t>(n)));
    if (!done.ok()) return done.status();
    if (*done) return absl::OkStatus();
  }
}

}  // namespace

struct Server::Impl {
  Impl(ServerOptions o, Backend* b)
      : options(std::move(o)),
        backend(b),
        tokens(options.token_ttl, options.max_tokens),
        port_forwards(options.max_port_forwards) {}

  const ServerOptions options;
  Backend* const backend;
  TokenCache tokens;
  internal::Limiter port_forwards;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread accept_thread;
  std::atomic<bool> stopping{false};

  struct Connection {
    // A duplicate of the connection's socket, so the destructor (or a newer connection that
    // displaces a slow handshake) can shut it down without racing the session closing (and the
    // kernel reusing) the original descriptor.
    UniqueFd shutdown_handle;
    std::thread thread;
    std::string peer;  // the client's address
    absl::Time accepted;
    bool handshaking = true;  // counted in handshakes until the request was read
    bool done = false;
  };
  using ConnectionRef = std::list<Connection>::iterator;
  absl::Mutex mu;
  std::list<Connection> connections ABSL_GUARDED_BY(mu);  // in order of arrival
  size_t handshakes ABSL_GUARDED_BY(mu) = 0;
  std::map<std::string, size_t> handshakes_by_peer ABSL_GUARDED_BY(mu);
  std::map<std::string, size_t> sessions_by_target ABSL_GUARDED_BY(mu);

  void AcceptLoop();
  void ReapFinished();
  bool MakeRoomForHandshake(const std::string& peer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void EndHandshake(Connection& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void HandleConnection(tcp::socket sock, ConnectionRef self);
  void Serve(tcp::socket sock, HandshakeParser& parser);
};

void Server::Impl::ReapFinished() {
  std::list<Connection> finished;
  {
    absl::MutexLock l(&mu);
    for (auto it = connections.begin(); it != connections.end();) {
      if (it->done) {
        finished.splice(finished.end(), connections, it++);
      } else {
        ++it;
      }
    }
  }
  for (Connection& c : finished) c.thread.join();
}

void Server::Impl::EndHandshake(Connection& c) {
  if (!c.handshaking) return;
  c.handshaking = false;
  --handshakes;
  auto it = handshakes_by_peer.find(c.peer);
  if (it != handshakes_by_peer.end() && --it->second == 0) handshakes_by_peer.erase(it);
}

bool Server::Impl::MakeRoomForHandshake(const std::string& peer) {
  auto from_peer = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto it = handshakes_by_peer.find(peer);
    return it == handshakes_by_peer.end() ? size_t{0} : it->second;
  };
  const bool peer_full = from_peer() >= options.max_handshakes_per_address;
  if (!peer_full && handshakes < options.max_handshakes) return true;
  // The oldest handshake that counts against the limit reached (the list is in order of
  // arrival), if it has been slow enough to give up on.
  for (Connection& c : connections) {
    if (!c.handshaking || (peer_full && c.peer != peer)) continue;
    if (absl::Now() - c.accepted < kSlowHandshake) return false;
    if (c.shutdown_handle.valid()) ::shutdown(c.shutdown_handle.get(), SHUT_RDWR);
    EndHandshake(c);
    return from_peer() < options.max_handshakes_per_address && handshakes < options.max_handshakes;
  }
  return false;
}

void Server::Impl::AcceptLoop() {
  for (;;) {
    tcp::socket sock(io);
    boost::system::error_code ec;
    acceptor.accept(sock, ec);
    if (stopping.load()) return;
    ReapFinished();
    if (ec) {
      LOG(WARNING) << "streaming: accept: " << ec.message();
      // Out of descriptors, for instance: don't spin.
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    const int fd = sock.native_handle();
    tcp::endpoint remote = sock.remote_endpoint(ec);
    std::string peer = ec ? "" : remote.address().to_string();
    const char* refusal = nullptr;
    {
      absl::MutexLock l(&mu);
      if (connections.size() >= options.max_connections) {
        refusal = "too many streaming connections\n";
      } else if (!MakeRoomForHandshake(peer)) {
        refusal = "too many streaming requests in progress\n";
      } else {
        connections.emplace_back();
        auto it = std::prev(connections.end());
        it->shutdown_handle.reset(fcntl(fd, F_DUPFD_CLOEXEC, 0));
        it->peer = peer;
        it->accepted = absl::Now();
        ++handshakes;
        ++handshakes_by_peer[peer];
        const bool started = StartThread(&it->thread, [this, it, s = std::move(sock)]() mutable {
          HandleConnection(std::move(s), it);
          absl::MutexLock l(&mu);
          EndHandshake(*it);
          // The duplicate would keep the connection open: end it now, as closing the original did,
          // and give its descriptor back without waiting to be reaped.
          if (it->shutdown_handle.valid()) ::shutdown(it->shutdown_handle.get(), SHUT_RDWR);
          it->shutdown_handle.reset();
          it->done = true;
        });
        if (!started) {
          // The socket went with the thread that never ran; its duplicate is still open.
          Respond(it->shutdown_handle.get(), http::status::service_unavailable,
                  "streaming server is out of threads\n");
          EndHandshake(*it);
          connections.erase(it);
        }
      }
    }
    if (refusal) {
      // Take what already arrived, so that closing does not reset the connection under the
      // answer; the accept thread does not wait for more.
      char buf[4096];
      for (int i = 0; i < 16 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0; ++i) {
      }
      Respond(fd, http::status::service_unavailable, refusal);
      ::shutdown(fd, SHUT_WR);
    }
  }
}

void Server::Impl::HandleConnection(tcp::socket sock, ConnectionRef self) {
  const int fd = sock.native_handle();
  HandshakeParser parser(options.max_handshake_bytes);
  absl::Status read = ReadHandshake(fd, absl::Now() + options.handshake_timeout, &parser);
  {
    absl::MutexLock l(&mu);
    if (!self->handshaking) return;  // displaced by a newer connection
    EndHandshake(*self);
  }
  if (!read.ok()) {
    if (absl::IsDeadlineExceeded(read)) {
      Refuse(fd, http::status::request_timeout, "the upgrade request took too long\n");
    } else if (absl::IsResourceExhausted(read)) {
      Refuse(fd, http::status::request_header_fields_too_large, std::string(read.message()) + "\n");
    } else if (absl::IsInvalidArgument(read)) {
      Refuse(fd, http::status::bad_request, std::string(read.message()) + "\n");
    }
    return;
  }
  Serve(std::move(sock), parser);
}

void Server::Impl::Serve(tcp::socket sock, HandshakeParser& parser) {
  const int fd = sock.native_handle();
  HttpRequest& req = parser.request();
  std::optional<Route> route =
      RouteTarget(absl::string_view(req.target().data(), req.target().size()));
  if (!route) {
    Refuse(fd, http::status::not_found, "not found\n");
    return;
  }
  std::optional<Request> r = tokens.Consume(route->token);
  if (!r || r->kind != route->kind) {
    Refuse(fd, http::status::not_found, "unknown or expired token\n");
    return;
  }
  // One container's or pod's sessions cannot take every connection the server has.
  const std::string target = r->kind == Request::kPortForward
                                 ? absl::StrCat("pod ", r->pod_id)
                                 : absl::StrCat("container ", r->container_id);
  bool admitted = false;
  {
    absl::MutexLock l(&mu);
    size_t& n = sessions_by_target[target];
    admitted = n < options.max_connections_per_target;
    if (admitted) {
      ++n;
    } else if (n == 0) {
      sessions_by_target.erase(target);
    }
  }
  if (!admitted) {
    Refuse(fd, http::status::too_many_requests,
           absl::StrCat("too many streaming sessions for ", target, "\n"));
    return;
  }
  auto release = absl::MakeCleanup([this, &target] {
    absl::MutexLock l(&mu);
    auto it = sessions_by_target.find(target);
    if (it != sessions_by_target.end() && --it->second == 0) sessions_by_target.erase(it);
  });
  internal::SessionOptions session;
  session.backend = backend;
  session.stream_creation_timeout = options.stream_creation_timeout;
  session.max_streams_per_connection = options.max_streams_per_connection;
  session.max_port_forwards_per_connection = options.max_port_forwards_per_connection;
  session.port_forwards = &port_forwards;
  session.max_message_bytes = options.max_message_bytes;

  if (beast::websocket::is_upgrade(req)) {
    std::vector<std::string> offered = HeaderValues(req, "Sec-WebSocket-Protocol");
    std::optional<ws::Protocol> protocol = r->kind == Request::kPortForward
                                               ? ws::NegotiatePortForward(offered)
                                               : ws::NegotiateRemoteCommand(offered);
    if (!protocol) {
      Refuse(fd, http::status::bad_request,
             absl::StrCat("none of the offered subprotocols (", absl::StrJoin(offered, ", "),
                          ") is supported\n"));
      return;
    }
    // The parser holds only the handshake: a WebSocket client waits for 101 to send more.
    internal::ServeWebSocket(std::move(sock), req, *r, *protocol, session);
    return;
  }
  if (!absl::EqualsIgnoreCase(
          absl::string_view(req[http::field::upgrade].data(), req[http::field::upgrade].size()),
          "SPDY/3.1")) {
    Refuse(fd, http::status::bad_request, "an upgrade to SPDY/3.1 or WebSocket is required\n");
    return;
  }
  std::vector<std::string> offered = HeaderValues(req, "X-Stream-Protocol-Version");
  std::string protocol = NegotiateSpdy(r->kind, offered);
  if (protocol.empty()) {
    Refuse(fd, http::status::forbidden,
           absl::StrCat("none of the offered protocols (", absl::StrJoin(offered, ", "),
                        ") is supported\n"));
    return;
  }
  http::response<http::empty_body> res{http::status::switching_protocols, 11};
  res.set(http::field::connection, "Upgrade");
  res.set(http::field::upgrade, "SPDY/3.1");
  res.set("X-Stream-Protocol-Version", protocol);
  boost::system::error_code ec;
  http::write(sock, res, ec);
  if (ec) return;
  // SPDY clients may send frames right behind the upgrade request.
  internal::ServeSpdy(sock, parser.TakeLeftover(), *r, protocol, session);
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options, Backend* backend) {
  if (backend == nullptr) return absl::InvalidArgumentError("streaming server needs a backend");
  // Writes to a departed client's socket or pipe must fail with EPIPE, not kill berthd.
  signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<Server> server(new Server());
  server->impl_ = std::make_unique<Impl>(options, backend);
  Impl& impl = *server->impl_;
  boost::system::error_code ec;
  asio::ip::address addr = asio::ip::make_address(options.address, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("streaming address \"", options.address, "\": ", ec.message()));
  }
  tcp::endpoint ep(addr, static_cast<uint16_t>(options.port));
  impl.acceptor.open(ep.protocol(), ec);
  if (!ec) impl.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl.acceptor.bind(ep, ec);
  if (!ec) impl.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("streaming server on ", options.address, ":",
                                               options.port, ": ", ec.message()));
  }
  server->port_ = impl.acceptor.local_endpoint().port();
  if (!options.base_url.empty()) {
    server->base_url_ = std::string(absl::StripSuffix(options.base_url, "/"));
  } else {
    std::string host = addr.to_string();
    if (addr.is_v6()) host = absl::StrCat("[", host, "]");
    server->base_url_ = absl::StrCat("http://", host, ":", server->port_);
  }
  if (!StartThread(&impl.accept_thread, [&impl] { impl.AcceptLoop(); })) {
    return absl::ResourceExhaustedError("streaming server: no thread to accept connections on");
  }
  return server;
}

Server::~Server() {
  impl_->stopping = true;
  // shutdown() wakes a thread blocked in accept(); close() alone would not.
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
  if (impl_->accept_thread.joinable()) impl_->accept_thread.join();
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
  std::list<Impl::Connection> all;
  {
    absl::MutexLock l(&impl_->mu);
    for (auto& c : impl_->connections) {
      if (c.shutdown_handle.valid()) ::shutdown(c.shutdown_handle.get(), SHUT_RDWR);
    }
    all.splice(all.end(), impl_->connections);
  }
  for (auto& c : all) c.thread.join();
}

std::string Server::UrlFor(const Request& request) {
  const char* path = request.kind == Request::kExec     ? "exec"
                     : request.kind == Request::kAttach ? "attach"
                                                        : "portforward";
  return absl::StrCat(base_url_, "/", path, "/", impl_->tokens.Insert(request));
}

namespace {

Request StdioRequest(Request::Kind kind, const std::string& id, bool tty, bool in, bool out,
                     bool err) {
  Request r;
  r.kind = kind;
  r.container_id = id;
  r.tty = tty;
  r.stdin = in;
  r.stdout = out;
  r.stderr = err;
  return r;
}

}  // namespace

std::string Server::GetExecURL(const ExecRequest& e) {
  Request r = StdioRequest(Request::kExec, e.container_id, e.tty, e.stdin, e.stdout, e.stderr);
  r.cmd = e.cmd;
  return UrlFor(r);
}

std::string Server::GetAttachURL(const AttachRequest& a) {
  return UrlFor(StdioRequest(Request::kAttach, a.container_id, a.tty, a.stdin, a.stdout, a.stderr));
}

std::string Server::GetPortForwardURL(const PortForwardRequest& p) {
  Request r;
  r.kind = Request::kPortForward;
  r.pod_id = p.pod_sandbox_id;
  r.ports = p.ports;
  return UrlFor(r);
}

}  // namespace berth::streaming
