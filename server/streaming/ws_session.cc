// WebSocket sessions (Beast): remotecommand over channel.k8s.io v1/v4/v5 (binary or base64) and
// port-forward with per-port channel pairs, one reading thread plus the session's threads.
#include <sys/socket.h>

#include <algorithm>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/buffer.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/websocket.hpp"
#include "glog/logging.h"
#include "server/streaming/session.h"
#include "server/streaming/threads.h"

namespace berth::streaming::internal {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = boost::asio::ip::tcp;

// A WebSocket with channel framing; Send may be called from any thread.
class ChannelSocket {
 public:
  ChannelSocket(tcp::socket sock, ws::Codec codec, size_t max_message)
      : ws_(std::move(sock)), codec_(codec) {
    // Beast refuses longer messages (however fragmented, whatever their 64-bit length says)
    // before buffering them, and enforces masking and the 125-byte control frame limit.
    ws_.read_message_max(max_message);
  }

  bool Accept(const http::request<http::string_body>& req, const std::string& protocol) {
    ws_.set_option(websocket::stream_base::decorator([protocol](websocket::response_type& res) {
      if (!protocol.empty()) res.set(http::field::sec_websocket_protocol, protocol);
    }));
    boost::system::error_code ec;
    ws_.accept(req, ec);
    if (ec) return false;
    // base64 protocols exist for clients (browsers) that can only handle text frames.
    ws_.binary(codec_ == ws::Codec::kBinary);
    return true;
  }

  bool Send(uint8_t channel, const char* d, size_t n) {
    std::string msg = ws::Encode(codec_, channel, absl::string_view(d, n));
    absl::MutexLock l(&mu_);
    if (closed_) return false;
    boost::system::error_code ec;
    ws_.write(boost::asio::buffer(msg), ec);
    return !ec;
  }

  // Blocks for the next channel message; false once the connection is over.
  bool Read(ws::Message* m) {
    for (;;) {
      beast::flat_buffer buf;
      boost::system::error_code ec;
      ws_.read(buf, ec);
      if (ec) return false;
      std::string raw = beast::buffers_to_string(buf.data());
      if (raw.empty()) continue;
      absl::StatusOr<ws::Message> msg = ws::Decode(codec_, raw);
      if (!msg.ok()) {
        LOG(WARNING) << "streaming: " << msg.status();
        continue;
      }
      *m = std::move(*msg);
      return true;
    }
  }

  // Ends a Read blocked in another thread. Beast's synchronous close reads the peer's reply, so
  // it must run on the reading thread: a writer that is done calls this, and the reader closes.
  void StopReading() { ::shutdown(native_handle(), SHUT_RD); }

  // Sends the close frame; only on the reading thread, once Read returned false.
  void Close() {
    absl::MutexLock l(&mu_);
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    ws_.close(websocket::close_code::normal, ec);
  }
  int native_handle() { return ws_.next_layer().native_handle(); }

 private:
  websocket::stream<tcp::socket> ws_;
  const ws::Codec codec_;
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

std::vector<int32_t> QueryPorts(const http::request<http::string_body>& req, bool* bad) {
  std::vector<int32_t> ports;
  std::string target(req.target());
  size_t q = target.find('?');
  if (q == std::string::npos) return ports;
  for (absl::string_view kv : absl::StrSplit(target.substr(q + 1), '&')) {
    if (!absl::StartsWith(kv, "port=")) continue;
    for (absl::string_view p : absl::StrSplit(kv.substr(5), ',')) {
      uint32_t port = 0;
      if (!absl::SimpleAtoi(p, &port) || port < 1 || port > 65535) {
        *bad = true;
        continue;
      }
      ports.push_back(static_cast<int32_t>(port));
    }
  }
  return ports;
}

void RespondBadRequest(tcp::socket& sock, const std::string& why) {
  http::response<http::string_body> res{http::status::bad_request, 11};
  res.set(http::field::content_type, "text/plain");
  res.body() = why + "\n";
  res.prepare_payload();
  boost::system::error_code ec;
  http::write(sock, res, ec);
}

// Port-forward as kubelet serves it over WebSocket: ports from the query (else the CRI request),
// channel 2i carries port i's data and 2i+1 its errors, and each channel opens with the port.
void ServePortForward(tcp::socket sock, const http::request<http::string_body>& req,
                      const Request& r, const ws::Protocol& protocol, const SessionOptions& opt) {
  bool bad = false;
  std::vector<int32_t> ports = QueryPorts(req, &bad);
  if (bad) return RespondBadRequest(sock, "invalid port in the query");
  if (ports.empty()) ports = r.ports;
  if (ports.empty()) return RespondBadRequest(sock, "query parameter \"port\" is required");
  // Two channels a port, numbered from 0 in one byte.
  if (ports.size() > std::min<size_t>(127, opt.max_port_forwards_per_connection)) {
    return RespondBadRequest(sock, "too many ports");
  }
  // The server-wide count of forwards, taken for the session's whole length.
  size_t held = 0;
  while (held < ports.size() && (!opt.port_forwards || opt.port_forwards->TryAcquire())) ++held;
  auto release = absl::MakeCleanup([&] {
    for (size_t i = 0; opt.port_forwards && i < held; ++i) opt.port_forwards->Release();
  });
  if (held < ports.size()) {
    http::response<http::string_body> res{http::status::service_unavailable, 11};
    res.set(http::field::content_type, "text/plain");
    res.body() = "too many port-forwards on this server\n";
    res.prepare_payload();
    boost::system::error_code ec;
    http::write(sock, res, ec);
    return;
  }
  ChannelSocket ws(std::move(sock), protocol.codec, opt.max_message_bytes);
  if (!ws.Accept(req, protocol.name)) return;
  struct Port {
    int32_t port = 0;
    UniqueFd local, remote;
    std::thread worker;
  };
  std::vector<std::unique_ptr<Port>> fwd;
  for (size_t i = 0; i < ports.size(); ++i) {
    auto p = std::make_unique<Port>();
    p->port = ports[i];
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) break;
    p->local.reset(pair[0]);
    p->remote.reset(pair[1]);
    const uint8_t data_ch = static_cast<uint8_t>(2 * i), err_ch = static_cast<uint8_t>(2 * i + 1);
    std::string prefix = ws::PortPrefix(static_cast<uint16_t>(p->port));
    ws.Send(data_ch, prefix.data(), prefix.size());
    ws.Send(err_ch, prefix.data(), prefix.size());
    Port* raw = p.get();
    const bool allowed =
        r.ports.empty() || std::find(r.ports.begin(), r.ports.end(), raw->port) != r.ports.end();
    const bool started = StartThread(&p->worker, [&ws, &r, &opt, raw, data_ch, err_ch, allowed] {
      std::thread pump;
      const bool pumping = StartThread(&pump, [&ws, raw, data_ch] {
        Pump(raw->local.get(), [&](const char* d, size_t n) { return ws.Send(data_ch, d, n); });
      });
      absl::Status st = !pumping ? absl::ResourceExhaustedError("no thread to forward with")
                        : allowed
                            ? opt.backend->PortForward(r.pod_id, raw->port, raw->remote.get())
                            : absl::PermissionDeniedError(absl::StrCat(
                                  "port ", raw->port, " was not in the port-forward request"));
      raw->remote.reset();
      if (!st.ok()) {
        std::string msg = absl::StrCat("error forwarding port ", raw->port, " to pod ", r.pod_id,
                                       ": ", st.message());
        ws.Send(err_ch, msg.data(), msg.size());
      }
      if (pump.joinable()) pump.join();
    });
    if (!started) {
      std::string msg = absl::StrCat("error forwarding port ", raw->port, " to pod ", r.pod_id,
                                     ": no thread to forward with");
      ws.Send(err_ch, msg.data(), msg.size());
      break;
    }
    fwd.push_back(std::move(p));
  }
  // Workers end when their port's connection ends; the session ends when all have.
  auto join_all = [&] {
    for (auto& p : fwd) p->worker.join();
    ws.StopReading();
  };
  std::thread closer;
  if (!StartThread(&closer, join_all)) {
    // Without a closer nobody would end the read loop: end the forwards now instead.
    for (auto& p : fwd) shutdown(p->local.get(), SHUT_RDWR);
    join_all();
    ws.Close();
    return;
  }
  ws::Message m;
  while (ws.Read(&m)) {
    size_t i = m.channel / 2;
    if (m.channel % 2 == 0 && i < fwd.size() && !m.data.empty()) {
      WriteAll(fwd[i]->local.get(), m.data.data(), m.data.size());
    }
  }
  for (auto& p : fwd) shutdown(p->local.get(), SHUT_RDWR);
  closer.join();
  ws.Close();
}

void ServeRemoteCommand(tcp::socket sock, const http::request<http::string_body>& req,
                        const Request& r, const ws::Protocol& protocol, const SessionOptions& opt) {
  ChannelSocket ws(std::move(sock), protocol.codec, opt.max_message_bytes);
  if (!ws.Accept(req, protocol.name)) return;
  const bool want_stderr = r.stderr && !r.tty;
  absl::StatusOr<Pipes> pipes = Pipes::Make(r.stdin, r.stdout, want_stderr);
  if (!pipes.ok()) {
    LOG(WARNING) << "streaming: " << pipes.status();
    return;
  }
  // kubelet's first message, empty, on the lowest channel the client reads: "connected".
  ws.Send(r.stdout ? ws::kStdout : want_stderr ? ws::kStderr : ws::kError, "", 0);
  auto resize = std::make_shared<engine::ResizeQueue>();
  ResizeDecoder resize_decoder(resize);
  std::thread session;
  const bool started = StartThread(&session, [&] {
    absl::StatusOr<int> result = RunWithOutputPumps(
        opt.backend, r, &*pipes, resize,
        [&](const char* d, size_t n) { return ws.Send(ws::kStdout, d, n); },
        [&](const char* d, size_t n) { return ws.Send(ws::kStderr, d, n); });
    std::string message = ErrorStreamMessage(result, r, protocol.version);
    if (!message.empty()) ws.Send(ws::kError, message.data(), message.size());
    resize->Close();
    ws.StopReading();
  });
  if (!started) {
    std::string message = ErrorStreamMessage(
        absl::ResourceExhaustedError("no thread to run the session"), r, protocol.version);
    ws.Send(ws::kError, message.data(), message.size());
    ws.StopReading();  // Close reads the peer's close frame: don't wait on a peer that sends on
    ws.Close();
    return;
  }
  ws::Message m;
  while (ws.Read(&m)) {
    if (m.channel == ws::kStdin) {
      if (pipes->in_w.valid() && !m.data.empty())
        WriteAll(pipes->in_w.get(), m.data.data(), m.data.size());
    } else if (m.channel == ws::kResize) {
      resize_decoder.Feed(m.data.data(), m.data.size());
    } else if (m.channel == ws::kClose && protocol.version >= 5) {
      for (char c : m.data) {
        if (static_cast<uint8_t>(c) == ws::kStdin) pipes->in_w.reset();
      }
    }
  }
  pipes->in_w.reset();
  resize->Close();
  session.join();
  ws.Close();
}

}  // namespace

void ServeWebSocket(tcp::socket sock, const http::request<http::string_body>& req, const Request& r,
                    const ws::Protocol& protocol, const SessionOptions& options) {
  if (r.kind == Request::kPortForward) {
    ServePortForward(std::move(sock), req, r, protocol, options);
  } else {
    ServeRemoteCommand(std::move(sock), req, r, protocol, options);
  }
}

}  // namespace berth::streaming::internal
