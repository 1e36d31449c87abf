// Streaming server: accepts connections, checks the one-time token and the upgrade, negotiates
// the protocol and hands the connection to a SPDY or WebSocket session on its own thread.
#include "server/streaming/server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <list>
#include <thread>

#include "absl/base/thread_annotations.h"
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
#include "server/streaming/session.h"
#include "server/streaming/token_cache.h"
#include "server/streaming/ws_channel.h"
#include "util/fd.h"

namespace berth::streaming {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// SPDY remotecommand protocols berth speaks; the client's order of preference decides.
constexpr const char* kRemoteCommandProtocols[] = {"v4.channel.k8s.io", "v3.channel.k8s.io",
                                                   "v2.channel.k8s.io", "channel.k8s.io"};
constexpr const char* kPortForwardProtocol = "portforward.k8s.io";

void Respond(tcp::socket& sock, http::status status, const std::string& body) {
  http::response<http::string_body> res{status, 11};
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.set(http::field::connection, "close");
  res.body() = body;
  res.prepare_payload();
  boost::system::error_code ec;
  http::write(sock, res, ec);
}

std::vector<std::string> HeaderList(const http::request<http::string_body>& req,
                                    http::field field) {
  std::vector<std::string> out;
  for (auto it = req.find(field); it != req.end() && it->name() == field; ++it) {
    for (absl::string_view v : absl::StrSplit(std::string(it->value()), ',', absl::SkipEmpty())) {
      out.emplace_back(absl::StripAsciiWhitespace(v));
    }
  }
  return out;
}

std::vector<std::string> HeaderList(const http::request<http::string_body>& req,
                                    const std::string& name) {
  std::vector<std::string> out;
  for (const auto& f : req) {
    if (!absl::EqualsIgnoreCase(std::string(f.name_string()), name)) continue;
    for (absl::string_view v : absl::StrSplit(std::string(f.value()), ',', absl::SkipEmpty())) {
      out.emplace_back(absl::StripAsciiWhitespace(v));
    }
  }
  return out;
}

void SetReceiveTimeout(int fd, absl::Duration d) {
  timeval tv = absl::ToTimeval(d);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

}  // namespace

struct Server::Impl {
  Impl(ServerOptions o, Backend* b)
      : options(std::move(o)), backend(b), tokens(options.token_ttl, options.max_tokens) {}

  const ServerOptions options;
  Backend* const backend;
  TokenCache tokens;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread accept_thread;
  std::atomic<bool> stopping{false};

  struct Connection {
    // A duplicate of the connection's socket, so the destructor can shut it down without racing
    // the session closing (and the kernel reusing) the original descriptor.
    UniqueFd shutdown_handle;
    std::thread thread;
    bool done = false;
  };
  absl::Mutex mu;
  std::list<Connection> connections ABSL_GUARDED_BY(mu);

  void AcceptLoop();
  void ReapFinished();
  void HandleConnection(tcp::socket sock);
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
    absl::MutexLock l(&mu);
    if (connections.size() >= options.max_connections) {
      Respond(sock, http::status::service_unavailable, "too many streaming connections\n");
      continue;
    }
    connections.emplace_back();
    auto it = std::prev(connections.end());
    it->shutdown_handle.reset(fcntl(sock.native_handle(), F_DUPFD_CLOEXEC, 0));
    it->thread = std::thread([this, it, s = std::move(sock)]() mutable {
      HandleConnection(std::move(s));
      absl::MutexLock l(&mu);
      // The duplicate would keep the connection open: end it now, as closing the original did.
      if (it->shutdown_handle.valid()) ::shutdown(it->shutdown_handle.get(), SHUT_RDWR);
      it->done = true;
    });
  }
}

void Server::Impl::HandleConnection(tcp::socket sock) {
  SetReceiveTimeout(sock.native_handle(), options.handshake_timeout);
  beast::flat_buffer buffer;
  http::request<http::string_body> req;
  boost::system::error_code ec;
  http::read(sock, buffer, req, ec);
  if (ec) return;
  SetReceiveTimeout(sock.native_handle(), absl::ZeroDuration());  // sessions may idle

  std::string target(req.target());
  std::vector<std::string> parts =
      absl::StrSplit(target.substr(0, target.find('?')), '/', absl::SkipEmpty());
  const std::map<std::string, Request::Kind> kinds = {
      {"exec", Request::kExec}, {"attach", Request::kAttach}, {"portforward", Request::kPortForward}};
  auto kind = parts.size() == 2 ? kinds.find(parts[0]) : kinds.end();
  if (kind == kinds.end()) {
    Respond(sock, http::status::not_found, "not found\n");
    return;
  }
  std::optional<Request> r = tokens.Consume(parts[1]);
  if (!r || r->kind != kind->second) {
    Respond(sock, http::status::not_found, "unknown or expired token\n");
    return;
  }
  internal::SessionOptions session{backend, options.stream_creation_timeout};

  if (beast::websocket::is_upgrade(req)) {
    std::vector<std::string> offered = HeaderList(req, http::field::sec_websocket_protocol);
    std::optional<ws::Protocol> protocol = r->kind == Request::kPortForward
                                               ? ws::NegotiatePortForward(offered)
                                               : ws::NegotiateRemoteCommand(offered);
    if (!protocol) {
      Respond(sock, http::status::bad_request,
              absl::StrCat("none of the offered subprotocols (", absl::StrJoin(offered, ", "),
                           ") is supported\n"));
      return;
    }
    // Beast's buffer holds only the handshake: a WebSocket client waits for 101 to send more.
    internal::ServeWebSocket(std::move(sock), req, *r, *protocol, session);
    return;
  }
  if (!absl::EqualsIgnoreCase(std::string(req[http::field::upgrade]), "SPDY/3.1")) {
    Respond(sock, http::status::bad_request, "an upgrade to SPDY/3.1 or WebSocket is required\n");
    return;
  }
  std::vector<std::string> offered = HeaderList(req, "X-Stream-Protocol-Version");
  std::string protocol;
  if (offered.empty()) {
    // Clients from before negotiation: the first protocol of each kind.
    protocol = r->kind == Request::kPortForward ? kPortForwardProtocol : "channel.k8s.io";
  } else {
    for (const std::string& o : offered) {
      if (!protocol.empty()) break;
      if (r->kind == Request::kPortForward) {
        if (o == kPortForwardProtocol) protocol = o;
        continue;
      }
      for (const char* p : kRemoteCommandProtocols) {
        if (o == p) protocol = p;
      }
    }
  }
  if (protocol.empty()) {
    Respond(sock, http::status::forbidden,
            absl::StrCat("none of the offered protocols (", absl::StrJoin(offered, ", "),
                         ") is supported\n"));
    return;
  }
  http::response<http::empty_body> res{http::status::switching_protocols, 11};
  res.set(http::field::connection, "Upgrade");
  res.set(http::field::upgrade, "SPDY/3.1");
  res.set("X-Stream-Protocol-Version", protocol);
  http::write(sock, res, ec);
  if (ec) return;
  // SPDY clients may send frames right behind the upgrade request.
  std::string leftover(static_cast<const char*>(buffer.data().data()), buffer.data().size());
  internal::ServeSpdy(sock, std::move(leftover), *r, protocol, session);
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
  impl.accept_thread = std::thread([&impl] { impl.AcceptLoop(); });
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

std::string Server::GetExecURL(const ExecRequest& e) {
  Request r;
  r.kind = Request::kExec;
  r.container_id = e.container_id;
  r.cmd = e.cmd;
  r.tty = e.tty;
  r.stdin = e.stdin;
  r.stdout = e.stdout;
  r.stderr = e.stderr;
  return UrlFor(r);
}

std::string Server::GetAttachURL(const AttachRequest& a) {
  Request r;
  r.kind = Request::kAttach;
  r.container_id = a.container_id;
  r.tty = a.tty;
  r.stdin = a.stdin;
  r.stdout = a.stdout;
  r.stderr = a.stderr;
  return UrlFor(r);
}

std::string Server::GetPortForwardURL(const PortForwardRequest& p) {
  Request r;
  r.kind = Request::kPortForward;
  r.pod_id = p.pod_sandbox_id;
  r.ports = p.ports;
  return UrlFor(r);
}

}  // namespace berth::streaming
