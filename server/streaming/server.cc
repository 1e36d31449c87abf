// Streaming server: one thread per connection reads frames; sessions run the backend call on
// their own thread and pump its output back as SPDY data frames or WebSocket channel messages.
#include "server/streaming/server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <set>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "boost/asio.hpp"
#include "boost/beast.hpp"
#include "boost/beast/websocket.hpp"
#include "glog/logging.h"
#include "nlohmann/json.hpp"
#include "server/streaming/spdy.h"
#include "util/fd.h"

namespace berth::streaming {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using json = nlohmann::json;

// remotecommand protocol versions, most capable first.
constexpr const char* kRemoteCommandProtocols[] = {"v4.channel.k8s.io", "v3.channel.k8s.io",
                                                   "v2.channel.k8s.io", "channel.k8s.io"};
constexpr const char* kWebSocketProtocols[] = {"v5.channel.k8s.io", "v4.channel.k8s.io",
                                               "v3.channel.k8s.io", "v2.channel.k8s.io",
                                               "channel.k8s.io"};
constexpr const char* kPortForwardProtocol = "portforward.k8s.io";

int ProtocolVersion(const std::string& p) {
  if (absl::StartsWith(p, "v5.")) return 5;
  if (absl::StartsWith(p, "v4.")) return 4;
  if (absl::StartsWith(p, "v3.")) return 3;
  if (absl::StartsWith(p, "v2.")) return 2;
  return 1;
}

// The Status a v4+ client reads on the error stream.
std::string ExitStatusJson(const absl::StatusOr<int>& result, const std::vector<std::string>& cmd) {
  if (!result.ok()) {
    return json{{"metadata", json::object()},
                {"status", "Failure"},
                {"message", std::string(result.status().message())},
                {"reason", "InternalError"},
                {"code", 500}}
        .dump();
  }
  if (*result == 0) return json{{"metadata", json::object()}, {"status", "Success"}}.dump();
  return json{{"metadata", json::object()},
              {"status", "Failure"},
              {"message", absl::StrCat("command terminated with non-zero exit code: error executing "
                                       "command [", absl::StrJoin(cmd, " "), "], exit code ",
                                       *result)},
              {"reason", "NonZeroExitCode"},
              {"details", {{"causes", {{{"reason", "ExitCode"}, {"message", std::to_string(*result)}}}}}}}
      .dump();
}

// Runs the session's exec or attach; attach has no exit code of its own (0 once it ends).
absl::StatusOr<int> RunBackend(Backend* backend, const Request& r, const runtime::StreamIO& io) {
  if (r.kind == Request::kExec) return backend->Exec(r.container_id, r.cmd, io);
  absl::Status st = backend->Attach(r.container_id, io);
  if (!st.ok()) return st;
  return 0;
}

// Pulls whole JSON objects ({"Width":..,"Height":..}) out of a byte stream.
class ResizeDecoder {
 public:
  explicit ResizeDecoder(std::shared_ptr<runtime::ResizeQueue> q) : q_(std::move(q)) {}
  void Feed(const char* data, size_t n) {
    buf_.append(data, n);
    for (;;) {
      size_t start = buf_.find('{');
      if (start == std::string::npos) {
        buf_.clear();
        return;
      }
      size_t end = buf_.find('}', start);
      if (end == std::string::npos) return;
      json j = json::parse(buf_.substr(start, end - start + 1), nullptr, false);
      buf_.erase(0, end + 1);
      if (j.is_object()) {
        q_->Push(static_cast<uint16_t>(j.value("Width", 0)), static_cast<uint16_t>(j.value("Height", 0)));
      }
    }
  }

 private:
  std::shared_ptr<runtime::ResizeQueue> q_;
  std::string buf_;
};

// The pipes between a session and the backend.
struct Pipes {
  UniqueFd in_r, in_w, out_r, out_w, err_r, err_w;
  static absl::StatusOr<Pipes> Make(bool in, bool out, bool err) {
    Pipes p;
    int fds[2];
    auto mk = [&](bool want, UniqueFd* r, UniqueFd* w) {
      if (!want) return true;
      if (pipe2(fds, O_CLOEXEC) != 0) return false;
      r->reset(fds[0]);
      w->reset(fds[1]);
      return true;
    };
    if (!mk(in, &p.in_r, &p.in_w) || !mk(out, &p.out_r, &p.out_w) || !mk(err, &p.err_r, &p.err_w)) {
      return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
    }
    return p;
  }
};

// Reads `fd` to EOF, handing each chunk to `send`.
void Pump(int fd, const std::function<bool(const char*, size_t)>& send) {
  char buf[32768];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    if (!send(buf, n)) return;
  }
}

// Runs the session's backend call while pumps copy its stdout and stderr to `send` (stream 1 is
// stdout, 2 stderr); returns when the call has ended and both pumps have drained.
absl::StatusOr<int> RunWithPumps(Backend* backend, const Request& r, Pipes& pipes,
                                 std::shared_ptr<runtime::ResizeQueue> resize,
                                 const std::function<bool(int, const char*, size_t)>& send) {
  std::thread out_pump, err_pump;
  if (pipes.out_r.valid()) {
    out_pump = std::thread([&] { Pump(pipes.out_r.get(), [&](const char* d, size_t n) { return send(1, d, n); }); });
  }
  if (pipes.err_r.valid()) {
    err_pump = std::thread([&] { Pump(pipes.err_r.get(), [&](const char* d, size_t n) { return send(2, d, n); }); });
  }
  runtime::StreamIO io;
  io.in = pipes.in_r.valid() ? pipes.in_r.get() : -1;
  io.out = pipes.out_w.valid() ? pipes.out_w.get() : -1;
  io.err = pipes.err_w.valid() ? pipes.err_w.get() : -1;
  io.tty = r.tty;
  io.resize = std::move(resize);
  absl::StatusOr<int> result = RunBackend(backend, r, io);
  // Our write ends close so the pumps see EOF once the process's copies are gone too.
  pipes.out_w.reset();
  pipes.err_w.reset();
  pipes.in_r.reset();
  if (out_pump.joinable()) out_pump.join();
  if (err_pump.joinable()) err_pump.join();
  return result;
}

}  // namespace

struct Server::Impl {
  ServerOptions options;
  Backend* backend;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread accept_thread;
  std::atomic<bool> stopping{false};

  absl::Mutex mu;
  struct Pending {
    Request request;
    absl::Time expires;
  };
  absl::flat_hash_map<std::string, Pending> tokens ABSL_GUARDED_BY(mu);
  std::set<int> live_fds ABSL_GUARDED_BY(mu);
  int connections ABSL_GUARDED_BY(mu) = 0;

  std::string NewToken(const Request& r) {
    static thread_local absl::BitGen gen;
    std::string raw(16, '\0');
    for (char& c : raw) c = static_cast<char>(absl::Uniform<uint8_t>(gen));
    std::string tok = absl::WebSafeBase64Escape(raw);
    absl::MutexLock l(&mu);
    const absl::Time now = absl::Now();
    if (tokens.size() >= options.max_tokens) {
      for (auto it = tokens.begin(); it != tokens.end();) {
        if (it->second.expires < now) {
          tokens.erase(it++);
        } else {
          ++it;
        }
      }
    }
    if (tokens.size() >= options.max_tokens) tokens.erase(tokens.begin());
    tokens[tok] = Pending{r, now + options.token_ttl};
    return tok;
  }

  std::optional<Request> Take(const std::string& tok) {
    absl::MutexLock l(&mu);
    auto it = tokens.find(tok);
    if (it == tokens.end()) return std::nullopt;
    Pending p = std::move(it->second);
    tokens.erase(it);
    if (p.expires < absl::Now()) return std::nullopt;
    return p.request;
  }

  void AcceptLoop() {
    for (;;) {
      tcp::socket sock(io);
      boost::system::error_code ec;
      acceptor.accept(sock, ec);
      if (stopping.load()) return;
      if (ec) continue;
      int fd = sock.native_handle();
      {
        absl::MutexLock l(&mu);
        ++connections;
        live_fds.insert(fd);
      }
      std::thread([this, s = std::move(sock), fd]() mutable {
        HandleConnection(std::move(s));
        absl::MutexLock l(&mu);
        live_fds.erase(fd);
        --connections;
      }).detach();
    }
  }

  void HandleConnection(tcp::socket sock);
  void ServeSpdy(tcp::socket& sock, const std::string& leftover, const Request& r,
                 const std::string& protocol);
  void ServeWebSocket(tcp::socket sock, http::request<http::string_body>& req, const Request& r);
  void ServeWebSocketPortForward(tcp::socket sock, http::request<http::string_body>& req,
                                 const Request& r, const std::vector<std::string>& offered);
};

namespace {

void Respond(tcp::socket& sock, http::status status, const std::string& body) {
  http::response<http::string_body> res{status, 11};
  res.set(http::field::content_type, "text/plain");
  res.body() = body;
  res.prepare_payload();
  boost::system::error_code ec;
  http::write(sock, res, ec);
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

// One SPDY connection: frame reading on the connection's thread, writes from any thread.
class SpdyConnection {
 public:
  SpdyConnection(int fd, std::string leftover) : fd_(fd), buf_(std::move(leftover)) {}

  struct Stream {
    uint32_t id = 0;
    spdy::Headers headers;
    std::string type;
    bool remote_fin = false;
  };

  bool Send(const std::string& frame) {
    absl::MutexLock l(&write_mu_);
    return WriteAll(fd_, frame.data(), frame.size());
  }
  bool SendData(uint32_t id, const char* data, size_t n, bool fin = false) {
    while (n > spdy::kMaxFrameLength) {
      if (!Send(spdy::DataFrame(id, 0, data, spdy::kMaxFrameLength))) return false;
      data += spdy::kMaxFrameLength;
      n -= spdy::kMaxFrameLength;
    }
    return Send(spdy::DataFrame(id, fin ? spdy::kFlagFin : 0, data, n));
  }
  void Fin(uint32_t id) { SendData(id, "", 0, true); }

  // Reads frames until the connection ends. on_stream runs for each new stream (after the
  // reply); on_data for its bytes (fin marks the peer's end of that stream).
  void Run(const std::function<void(const Stream&)>& on_stream,
           const std::function<void(uint32_t, const char*, size_t, bool)>& on_data) {
    char tmp[65536];
    for (;;) {
      spdy::Frame f;
      absl::StatusOr<size_t> used = spdy::ParseFrame(buf_.data(), buf_.size(), &f);
      if (!used.ok()) {
        LOG(WARNING) << "streaming: " << used.status();
        return;
      }
      if (*used == 0) {
        ssize_t n = read(fd_, tmp, sizeof(tmp));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        buf_.append(tmp, n);
        continue;
      }
      buf_.erase(0, *used);
      if (!f.control) {
        on_data(f.stream_id, f.payload.data(), f.payload.size(), f.flags & spdy::kFlagFin);
        continue;
      }
      switch (f.type) {
        case spdy::kSynStream: {
          absl::StatusOr<spdy::SynStream> s = spdy::ParseSynStream(f);
          if (!s.ok()) return;
          absl::StatusOr<spdy::Headers> h = inflate_.Decompress(s->header_block);
          if (!h.ok()) {
            LOG(WARNING) << "streaming: " << h.status();
            return;
          }
          Stream st;
          st.id = s->stream_id;
          st.headers = *h;
          st.type = spdy::HeaderValue(*h, "streamtype");
          absl::StatusOr<std::string> reply;
          {
            absl::MutexLock l(&write_mu_);
            reply = deflate_.Compress({});
          }
          if (!reply.ok() || !Send(spdy::SynReplyFrame(st.id, 0, *reply))) return;
          on_stream(st);
          if (f.flags & spdy::kFlagFin) on_data(st.id, "", 0, true);
          break;
        }
        case spdy::kPing: {
          absl::StatusOr<uint32_t> id = spdy::ParseStreamIdPrefix(f);
          if (id.ok()) Send(spdy::PingFrame(*id));
          break;
        }
        case spdy::kRstStream: {
          absl::StatusOr<uint32_t> id = spdy::ParseStreamIdPrefix(f);
          if (id.ok()) on_data(*id, "", 0, true);
          break;
        }
        case spdy::kGoAway:
          return;
        case spdy::kHeaders: {
          // Keep the decompression context in step even though berth needs no trailers.
          if (f.payload.size() > 4) inflate_.Decompress(f.payload.substr(4)).IgnoreError();
          break;
        }
        default:
          break;  // SETTINGS, WINDOW_UPDATE: spdystream does no flow control
      }
    }
  }

 private:
  int fd_;
  std::string buf_;
  absl::Mutex write_mu_;
  spdy::HeaderCompressor deflate_ ABSL_GUARDED_BY(write_mu_);
  spdy::HeaderDecompressor inflate_;
};

}  // namespace

void Server::Impl::HandleConnection(tcp::socket sock) {
  beast::flat_buffer buffer;
  http::request<http::string_body> req;
  boost::system::error_code ec;
  http::read(sock, buffer, req, ec);
  if (ec) return;
  std::string target(req.target());
  std::vector<std::string> parts = absl::StrSplit(target.substr(0, target.find('?')), '/', absl::SkipEmpty());
  if (parts.size() != 2) {
    Respond(sock, http::status::not_found, "not found\n");
    return;
  }
  std::optional<Request> r = Take(parts[1]);
  const std::map<std::string, Request::Kind> kinds = {
      {"exec", Request::kExec}, {"attach", Request::kAttach}, {"portforward", Request::kPortForward}};
  auto kind = kinds.find(parts[0]);
  if (!r || kind == kinds.end() || kind->second != r->kind) {
    Respond(sock, http::status::not_found, "unknown or expired token\n");
    return;
  }
  if (websocket::is_upgrade(req)) {
    // The bytes Beast buffered belong to the handshake only: a WebSocket client waits for 101.
    ServeWebSocket(std::move(sock), req, *r);
    return;
  }
  if (!absl::EqualsIgnoreCase(std::string(req[http::field::upgrade]), "SPDY/3.1")) {
    Respond(sock, http::status::bad_request, "an upgrade to SPDY/3.1 or WebSocket is required\n");
    return;
  }
  std::vector<std::string> offered = HeaderList(req, "X-Stream-Protocol-Version");
  std::string protocol;
  if (r->kind == Request::kPortForward) {
    protocol = kPortForwardProtocol;
    if (!offered.empty() &&
        std::find(offered.begin(), offered.end(), kPortForwardProtocol) == offered.end()) {
      protocol.clear();
    }
  } else if (offered.empty()) {
    protocol = "channel.k8s.io";
  } else {
    for (const auto& o : offered) {
      for (const char* p : kRemoteCommandProtocols) {
        if (o == p && protocol.empty()) protocol = p;
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
  std::string leftover(static_cast<const char*>(buffer.data().data()), buffer.data().size());
  ServeSpdy(sock, leftover, *r, protocol);
}

void Server::Impl::ServeSpdy(tcp::socket& sock, const std::string& leftover, const Request& r,
                             const std::string& protocol) {
  const int fd = sock.native_handle();
  SpdyConnection conn(fd, leftover);

  if (r.kind == Request::kPortForward) {
    // Streams come in pairs (error, data) per request id; each data stream is one connection.
    struct Forward {
      uint32_t error_stream = 0, data_stream = 0;
      int32_t port = 0;
      UniqueFd local;  // our end of the socketpair the backend copies to
      std::thread worker;
    };
    absl::Mutex mu;
    std::map<std::string, std::shared_ptr<Forward>> by_request;
    std::map<uint32_t, std::shared_ptr<Forward>> by_data_stream;
    auto on_stream = [&](const SpdyConnection::Stream& s) {
      std::string rid = spdy::HeaderValue(s.headers, "requestid");
      int32_t port = 0;
      absl::SimpleAtoi(spdy::HeaderValue(s.headers, "port"), &port);
      absl::MutexLock l(&mu);
      auto& fwd = by_request[rid];
      if (!fwd) fwd = std::make_shared<Forward>();
      if (s.type == "error") {
        fwd->error_stream = s.id;
        return;
      }
      if (s.type != "data") return;
      fwd->data_stream = s.id;
      fwd->port = port;
      by_data_stream[s.id] = fwd;
      int pair[2];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return;
      fwd->local.reset(pair[0]);
      auto remote = std::make_shared<UniqueFd>(pair[1]);
      bool allowed = r.ports.empty() ||
                     std::find(r.ports.begin(), r.ports.end(), port) != r.ports.end();
      fwd->worker = std::thread([this, &conn, &r, fwd, remote, allowed] {
        std::thread pump([&conn, fwd] {
          Pump(fwd->local.get(), [&](const char* d, size_t n) {
            return conn.SendData(fwd->data_stream, d, n);
          });
          conn.Fin(fwd->data_stream);
        });
        absl::Status st = allowed ? backend->PortForward(r.pod_id, fwd->port, remote->get())
                                  : absl::PermissionDeniedError(absl::StrCat(
                                        "port ", fwd->port, " was not requested"));
        remote->reset();  // the pump sees EOF once the backend is done
        if (!st.ok() && fwd->error_stream) {
          std::string msg = absl::StrCat("error forwarding port ", fwd->port, " to pod ", r.pod_id,
                                         ": ", st.message());
          conn.SendData(fwd->error_stream, msg.data(), msg.size());
        }
        if (fwd->error_stream) conn.Fin(fwd->error_stream);
        pump.join();
      });
    };
    auto on_data = [&](uint32_t id, const char* d, size_t n, bool fin) {
      std::shared_ptr<Forward> fwd;
      {
        absl::MutexLock l(&mu);
        auto it = by_data_stream.find(id);
        if (it == by_data_stream.end()) return;
        fwd = it->second;
      }
      if (n > 0) WriteAll(fwd->local.get(), d, n);
      if (fin) shutdown(fwd->local.get(), SHUT_WR);
    };
    conn.Run(on_stream, on_data);
    // The client went away: end every forward still running.
    std::vector<std::shared_ptr<Forward>> all;
    {
      absl::MutexLock l(&mu);
      for (auto& [id, f] : by_data_stream) all.push_back(f);
    }
    for (auto& f : all) {
      if (f->local.valid()) shutdown(f->local.get(), SHUT_RDWR);
    }
    for (auto& f : all) {
      if (f->worker.joinable()) f->worker.join();
    }
    return;
  }

  // remotecommand: wait for the streams the request implies, then run the session.
  const int version = ProtocolVersion(protocol);
  const bool want_stderr = r.stderr && !r.tty;
  const bool want_resize = r.tty && version >= 3;
  absl::StatusOr<Pipes> pipes = Pipes::Make(r.stdin, r.stdout, want_stderr);
  if (!pipes.ok()) return;
  auto resize = std::make_shared<runtime::ResizeQueue>();
  ResizeDecoder resize_decoder(resize);
  absl::Mutex mu;
  std::map<std::string, uint32_t> streams ABSL_GUARDED_BY(mu);
  std::map<uint32_t, std::string> types ABSL_GUARDED_BY(mu);
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return streams.count("error") && (!r.stdin || streams.count("stdin")) &&
           (!r.stdout || streams.count("stdout")) && (!want_stderr || streams.count("stderr")) &&
           (!want_resize || streams.count("resize"));
  };
  std::atomic<bool> done{false};
  std::thread session([&] {
    {
      absl::MutexLock l(&mu);
      if (!mu.AwaitWithTimeout(absl::Condition(&ready), options.stream_creation_timeout)) {
        LOG(WARNING) << "streaming: the client did not open its streams in time";
        shutdown(fd, SHUT_RDWR);
        return;
      }
    }
    uint32_t out_id, err_id = 0, error_id;
    {
      absl::MutexLock l(&mu);
      out_id = r.stdout ? streams["stdout"] : 0;
      if (want_stderr) err_id = streams["stderr"];
      error_id = streams["error"];
    }
    absl::StatusOr<int> result =
        RunWithPumps(backend, r, *pipes, resize, [&](int stream, const char* d, size_t n) {
          return conn.SendData(stream == 1 ? out_id : err_id, d, n);
        });
    if (version >= 4) {
      std::string status = ExitStatusJson(result, r.cmd);
      conn.SendData(error_id, status.data(), status.size());
    } else if (!result.ok() || *result != 0) {
      std::string msg = result.ok() ? absl::StrCat("command terminated with non-zero exit code: ", *result)
                                    : std::string(result.status().message());
      conn.SendData(error_id, msg.data(), msg.size());
    }
    conn.Fin(error_id);
    if (out_id) conn.Fin(out_id);
    if (err_id) conn.Fin(err_id);
    done = true;
    resize->Close();
    // Closing our side ends the client's read loop and then the connection.
    shutdown(fd, SHUT_WR);
  });
  auto on_stream = [&](const SpdyConnection::Stream& s) {
    absl::MutexLock l(&mu);
    streams[s.type] = s.id;
    types[s.id] = s.type;
  };
  auto on_data = [&](uint32_t id, const char* d, size_t n, bool fin) {
    std::string type;
    {
      absl::MutexLock l(&mu);
      auto it = types.find(id);
      if (it == types.end()) return;
      type = it->second;
    }
    if (type == "stdin") {
      if (n > 0 && pipes->in_w.valid()) WriteAll(pipes->in_w.get(), d, n);
      if (fin) pipes->in_w.reset();
    } else if (type == "resize") {
      resize_decoder.Feed(d, n);
    }
  };
  conn.Run(on_stream, on_data);
  // The client is gone (or finished): stdin ends, and the session winds down on its own.
  pipes->in_w.reset();
  resize->Close();
  session.join();
}

// WebSocket port-forward as kubelet serves it: ports from the query (else the CRI request),
// channel 2i carries port i's data and 2i+1 its errors; with v4 each channel opens with the
// port number (2 bytes, little endian).
void Server::Impl::ServeWebSocketPortForward(tcp::socket sock, http::request<http::string_body>& req,
                                             const Request& r, const std::vector<std::string>& offered) {
  std::string protocol;
  for (const auto& o : offered) {
    if ((o == "v4.channel.k8s.io" || o == "portforward.k8s.io" || o == "channel.k8s.io") && protocol.empty()) {
      protocol = o;
    }
  }
  std::vector<int32_t> ports;
  std::string target(req.target());
  if (size_t q = target.find('?'); q != std::string::npos) {
    for (absl::string_view kv : absl::StrSplit(target.substr(q + 1), '&')) {
      int32_t p = 0;
      if (absl::StartsWith(kv, "port=") && absl::SimpleAtoi(kv.substr(5), &p)) ports.push_back(p);
    }
  }
  if (ports.empty()) ports = r.ports;
  websocket::stream<tcp::socket> ws(std::move(sock));
  ws.set_option(websocket::stream_base::decorator([protocol](websocket::response_type& res) {
    if (!protocol.empty()) res.set(http::field::sec_websocket_protocol, protocol);
  }));
  boost::system::error_code ec;
  ws.accept(req, ec);
  if (ec) return;
  ws.binary(true);
  absl::Mutex write_mu;
  auto send = [&](uint8_t channel, const char* d, size_t n) {
    std::string msg(1, static_cast<char>(channel));
    msg.append(d, n);
    absl::MutexLock l(&write_mu);
    boost::system::error_code wec;
    ws.write(asio::buffer(msg), wec);
    return !wec;
  };
  struct Port {
    int32_t port;
    UniqueFd local;
    std::thread worker;
  };
  std::vector<std::unique_ptr<Port>> fwd;
  const bool v4 = protocol == "v4.channel.k8s.io";
  for (size_t i = 0; i < ports.size(); ++i) {
    auto p = std::make_unique<Port>();
    p->port = ports[i];
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return;
    p->local.reset(pair[0]);
    auto remote = std::make_shared<UniqueFd>(pair[1]);
    const uint8_t data_ch = static_cast<uint8_t>(2 * i), err_ch = static_cast<uint8_t>(2 * i + 1);
    if (v4) {
      const char prefix[2] = {static_cast<char>(p->port & 0xff), static_cast<char>((p->port >> 8) & 0xff)};
      send(data_ch, prefix, 2);
      send(err_ch, prefix, 2);
    }
    Port* raw = p.get();
    const bool allowed = r.ports.empty() || std::find(r.ports.begin(), r.ports.end(), raw->port) != r.ports.end();
    p->worker = std::thread([this, &send, &r, raw, remote, data_ch, err_ch, allowed] {
      std::thread pump([&send, raw, data_ch] {
        Pump(raw->local.get(), [&](const char* d, size_t n) { return send(data_ch, d, n); });
      });
      absl::Status st = allowed ? backend->PortForward(r.pod_id, raw->port, remote->get())
                                : absl::PermissionDeniedError(absl::StrCat("port ", raw->port, " was not requested"));
      remote->reset();
      if (!st.ok()) {
        std::string msg = absl::StrCat("error forwarding port ", raw->port, ": ", st.message());
        send(err_ch, msg.data(), msg.size());
      }
      pump.join();
    });
    fwd.push_back(std::move(p));
  }
  beast::flat_buffer buf;
  for (;;) {
    boost::system::error_code rec;
    buf.clear();
    ws.read(buf, rec);
    if (rec) break;
    std::string msg = beast::buffers_to_string(buf.data());
    if (msg.empty()) continue;
    size_t ch = static_cast<uint8_t>(msg[0]);
    if (ch % 2 == 0 && ch / 2 < fwd.size()) {
      size_t skip = 1;
      WriteAll(fwd[ch / 2]->local.get(), msg.data() + skip, msg.size() - skip);
    }
  }
  for (auto& p : fwd) shutdown(p->local.get(), SHUT_RDWR);
  for (auto& p : fwd) p->worker.join();
}

void Server::Impl::ServeWebSocket(tcp::socket sock, http::request<http::string_body>& req,
                                  const Request& r) {
  std::vector<std::string> offered = HeaderList(req, "Sec-WebSocket-Protocol");
  std::string protocol;
  for (const auto& o : offered) {
    for (const char* p : kWebSocketProtocols) {
      if (o == p && protocol.empty()) protocol = p;
    }
  }
  if (r.kind == Request::kPortForward) {
    ServeWebSocketPortForward(std::move(sock), req, r, offered);
    return;
  }
  if (protocol.empty()) protocol = "channel.k8s.io";
  websocket::stream<tcp::socket> ws(std::move(sock));
  ws.set_option(websocket::stream_base::decorator([protocol](websocket::response_type& res) {
    res.set(http::field::sec_websocket_protocol, protocol);
  }));
  boost::system::error_code ec;
  ws.accept(req, ec);
  if (ec) return;
  ws.binary(true);
  const int version = ProtocolVersion(protocol);
  const bool want_stderr = r.stderr && !r.tty;
  absl::StatusOr<Pipes> pipes = Pipes::Make(r.stdin, r.stdout, want_stderr);
  if (!pipes.ok()) return;
  auto resize = std::make_shared<runtime::ResizeQueue>();
  ResizeDecoder resize_decoder(resize);
  absl::Mutex write_mu;
  auto send = [&](uint8_t channel, const char* d, size_t n) {
    std::string msg(1, static_cast<char>(channel));
    msg.append(d, n);
    absl::MutexLock l(&write_mu);
    boost::system::error_code wec;
    ws.write(asio::buffer(msg), wec);
    return !wec;
  };
  std::thread session([&] {
    absl::StatusOr<int> result = RunWithPumps(
        backend, r, *pipes, resize,
        [&](int stream, const char* d, size_t n) { return send(static_cast<uint8_t>(stream), d, n); });
    std::string status = version >= 4 ? ExitStatusJson(result, r.cmd)
                                      : (result.ok() && *result == 0 ? "" : "command failed");
    if (!status.empty()) send(3, status.data(), status.size());
    resize->Close();
    absl::MutexLock l(&write_mu);
    boost::system::error_code cec;
    ws.close(websocket::close_code::normal, cec);
  });
  beast::flat_buffer buf;
  for (;;) {
    boost::system::error_code rec;
    buf.clear();
    ws.read(buf, rec);
    if (rec) break;
    std::string msg = beast::buffers_to_string(buf.data());
    if (msg.empty()) continue;
    uint8_t channel = static_cast<uint8_t>(msg[0]);
    const char* d = msg.data() + 1;
    size_t n = msg.size() - 1;
    if (channel == 0 && pipes->in_w.valid() && n > 0) {
      WriteAll(pipes->in_w.get(), d, n);
    } else if (channel == 4) {
      resize_decoder.Feed(d, n);
    } else if (channel == 255 && version >= 5 && n >= 1 && d[0] == 0) {
      pipes->in_w.reset();  // v5: the client closed stdin
    }
  }
  pipes->in_w.reset();
  resize->Close();
  session.join();
}

Server::Server(PrivateKey, ServerOptions options, Backend* backend)
    : impl_(std::make_unique<Impl>()), address_(options.address) {
  impl_->options = std::move(options);
  impl_->backend = backend;
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options, Backend* backend) {
  auto server = std::make_unique<Server>(PrivateKey(), options, backend);
  Impl& impl = *server->impl_;
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(options.address, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("streaming.address \"", options.address, "\": ", ec.message()));
  }
  tcp::endpoint ep(addr, static_cast<uint16_t>(options.port));
  impl.acceptor.open(ep.protocol(), ec);
  if (!ec) impl.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl.acceptor.bind(ep, ec);
  if (!ec) impl.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("streaming server on ", options.address, ":", options.port, ": ", ec.message()));
  }
  server->port_ = impl.acceptor.local_endpoint().port();
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
  // End live sessions and wait for their threads.
  {
    absl::MutexLock l(&impl_->mu);
    for (int fd : impl_->live_fds) ::shutdown(fd, SHUT_RDWR);
  }
  absl::MutexLock l(&impl_->mu);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl_->mu) { return impl_->connections == 0; };
  impl_->mu.AwaitWithTimeout(absl::Condition(&idle), absl::Seconds(10));
}

std::string Server::base_url() const {
  std::string host = address_;
  if (host.find(':') != std::string::npos) host = absl::StrCat("[", host, "]");
  return absl::StrCat("http://", host, ":", port_);
}

std::string Server::UrlFor(const Request& request) {
  const char* path = request.kind == Request::kExec     ? "exec"
                     : request.kind == Request::kAttach ? "attach"
                                                        : "portforward";
  return absl::StrCat(base_url(), "/", path, "/", impl_->NewToken(request));
}

}  // namespace berth::streaming
