// libFuzzer target: WebSocket framing as a streaming session reads it. Beast's server stream (the
// frame parser berth uses, with the session's message limit) reads client frames from the input
// after a fixed upgrade request, and each message goes through the channel decoding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "boost/asio/io_context.hpp"
#include "boost/beast/_experimental/test/stream.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/websocket.hpp"
#include "server/streaming/ws_channel.h"

namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace ws = berth::streaming::ws;

constexpr char kUpgrade[] =
    "GET /exec/token HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n"
    "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n";

// Small enough to reach the limit's edge from small inputs; the session's default is 16 MiB.
constexpr size_t kMaxMessage = 4096;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const ws::Codec codec = data[0] & 1 ? ws::Codec::kBase64 : ws::Codec::kBinary;
  const std::string frames(reinterpret_cast<const char*>(data) + 1, size - 1);
  // The channel layer alone, on the raw bytes.
  ws::Decode(codec, frames).IgnoreError();

  boost::asio::io_context io;
  beast::test::stream client(io), server(io);
  server.connect(client);
  server.append(kUpgrade);
  server.append(frames);
  server.close_remote();  // reads end once the input is used up
  websocket::stream<beast::test::stream&> wss(server);
  wss.read_message_max(kMaxMessage);
  boost::system::error_code ec;
  wss.accept(ec);
  if (ec) return 0;
  for (;;) {
    beast::flat_buffer buf;
    wss.read(buf, ec);
    if (ec) break;
    if (buf.size() > kMaxMessage) __builtin_trap();
    absl::StatusOr<ws::Message> m = ws::Decode(codec, beast::buffers_to_string(buf.data()));
    if (m.ok() && codec == ws::Codec::kBinary && m->data.size() + 1 != buf.size()) __builtin_trap();
  }
  return 0;
}
