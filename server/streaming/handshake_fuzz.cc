// libFuzzer target: the streaming server's upgrade request handling without sockets. The input
// arrives in chunks (sizes from its first byte, as reads would cut it) into the bounded parser;
// a complete request is routed and its protocols negotiated as Server does.
#include <cstddef>
#include <cstdint>
#include <string>

#include "boost/beast/websocket/rfc6455.hpp"
#include "server/streaming/handshake.h"
#include "server/streaming/ws_channel.h"

namespace {

namespace streaming = berth::streaming;

constexpr size_t kMaxBytes = 4096;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] % 64;
  const char* p = reinterpret_cast<const char*>(data) + 1;
  size_t left = size - 1;
  streaming::HandshakeParser parser(kMaxBytes);
  size_t fed = 0;
  bool done = false;
  while (left > 0 && !done) {
    const size_t n = std::min(chunk, left);
    absl::StatusOr<bool> r = parser.Feed(absl::string_view(p, n));
    p += n;
    left -= n;
    fed += n;
    if (!r.ok()) return 0;
    done = *r;
    // Bounded: a request that neither completes nor fails cannot go on past the limit.
    if (!done && fed > 3 * kMaxBytes + 64) __builtin_trap();
  }
  if (!done) return 0;
  streaming::HttpRequest& req = parser.request();
  std::optional<streaming::Route> route =
      streaming::RouteTarget(absl::string_view(req.target().data(), req.target().size()));
  const streaming::Request::Kind kind = route ? route->kind : streaming::Request::kExec;
  streaming::NegotiateSpdy(kind, streaming::HeaderValues(req, "X-Stream-Protocol-Version"));
  std::vector<std::string> offered = streaming::HeaderValues(req, "Sec-WebSocket-Protocol");
  if (boost::beast::websocket::is_upgrade(req)) {
    streaming::ws::NegotiateRemoteCommand(offered);
    streaming::ws::NegotiatePortForward(offered);
  }
  std::string leftover = parser.TakeLeftover();
  if (leftover.size() > size) __builtin_trap();
  return 0;
}
