// Internal to the streaming server: what the SPDY and WebSocket sessions share (stdio pipes to the
// backend, output pumps, exit statuses, resize decoding) and their entry points.
#ifndef BERTH_SERVER_STREAMING_SESSION_H_
#define BERTH_SERVER_STREAMING_SESSION_H_

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/http.hpp"
#include "runtime/stream_io.h"
#include "server/streaming/backend.h"
#include "server/streaming/request.h"
#include "server/streaming/ws_channel.h"
#include "util/fd.h"

namespace berth::streaming::internal {

// A count with a ceiling, shared by every connection (the server's port-forward pairs).
class Limiter {
 public:
  explicit Limiter(size_t max) : max_(max) {}
  bool TryAcquire() {
    size_t n = n_.load();
    do {
      if (n >= max_) return false;
    } while (!n_.compare_exchange_weak(n, n + 1));
    return true;
  }
  void Release() { n_.fetch_sub(1); }

 private:
  const size_t max_;
  std::atomic<size_t> n_{0};
};

// See ServerOptions for what each limit bounds.
struct SessionOptions {
  Backend* backend = nullptr;
  absl::Duration stream_creation_timeout = absl::Seconds(30);
  size_t max_streams_per_connection = 256;
  size_t max_port_forwards_per_connection = 128;
  Limiter* port_forwards = nullptr;  // server-wide; null: no server-wide limit
  size_t max_message_bytes = 16 << 20;
};

// Reads `fd` to EOF, handing each chunk to `send`; stops early when `send` fails.
void Pump(int fd, const std::function<bool(const char*, size_t)>& send);

// The pipes between a session and the backend: the backend gets the *_r of stdin and the *_w of
// stdout/stderr; the session keeps the other ends.
struct Pipes {
  UniqueFd in_r, in_w, out_r, out_w, err_r, err_w;
  static absl::StatusOr<Pipes> Make(bool in, bool out, bool err);
  engine::StreamIO BackendIO(bool tty, std::shared_ptr<engine::ResizeQueue> resize) const;
  // The backend returned: drop its ends so the pumps see EOF.
  void CloseBackendEnds();
};

// Runs the session's exec or attach; attach has no exit code of its own (0 once it ends).
absl::StatusOr<int> RunBackend(Backend* backend, const Request& r, const engine::StreamIO& io);

// Runs the session's backend call while a thread per output pipe pumps it to `send_out` and
// `send_err` (a pump drops its pipe when its send fails, so a backend still writing gets EPIPE
// instead of blocking forever); returns once the backend and both pumps are done. No thread to
// pump with: ResourceExhausted, and the backend is not called.
absl::StatusOr<int> RunWithOutputPumps(Backend* backend, const Request& r, Pipes* pipes,
                                       std::shared_ptr<engine::ResizeQueue> resize,
                                       const std::function<bool(const char*, size_t)>& send_out,
                                       const std::function<bool(const char*, size_t)>& send_err);

// What the error stream carries once the backend returned: with protocol v4+ a metav1.Status as
// JSON (kubectl reads the exit code from it); before v4, an error text, empty on success.
std::string ErrorStreamMessage(const absl::StatusOr<int>& result, const Request& r, int version);

// Pulls whole JSON objects ({"Width":..,"Height":..}) out of a byte stream into a ResizeQueue.
class ResizeDecoder {
 public:
  explicit ResizeDecoder(std::shared_ptr<engine::ResizeQueue> q) : q_(std::move(q)) {}
  void Feed(const char* data, size_t n);

 private:
  std::shared_ptr<engine::ResizeQueue> q_;
  std::string buf_;
};

// Serve one upgraded connection until it ends; they return once every thread they started
// has ended and the backend calls have returned.
void ServeSpdy(boost::asio::ip::tcp::socket& sock, std::string leftover, const Request& r,
               const std::string& protocol, const SessionOptions& options);
void ServeWebSocket(boost::asio::ip::tcp::socket sock,
                    const boost::beast::http::request<boost::beast::http::string_body>& req,
                    const Request& r, const ws::Protocol& protocol, const SessionOptions& options);

}  // namespace berth::streaming::internal

#endif  // BERTH_SERVER_STREAMING_SESSION_H_
