// WebSocket channel framing of Kubernetes streaming (channel.k8s.io family): each message starts
// with its channel number, as a byte (binary protocols) or as an ASCII digit followed by base64
// (base64 protocols), and the subprotocol negotiation that picks one of them.
#ifndef BERTH_SERVER_STREAMING_WS_CHANNEL_H_
#define BERTH_SERVER_STREAMING_WS_CHANNEL_H_

#include <cstdint>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"

namespace berth::streaming::ws {

// remotecommand channel numbers.
inline constexpr uint8_t kStdin = 0, kStdout = 1, kStderr = 2, kError = 3, kResize = 4;
// v5: a message on this channel whose payload is one channel number closes that channel.
inline constexpr uint8_t kClose = 255;

enum class Codec { kBinary, kBase64 };

struct Protocol {
  std::string name;  // as echoed in Sec-WebSocket-Protocol; empty when the client named none
  int version = 1;   // remotecommand semantics: 4+ send a metav1.Status on the error channel
  Codec codec = Codec::kBinary;
};

// Picks the first of the client's offered subprotocols that berth speaks, in the client's order;
// with none offered, the legacy unnamed binary protocol. nullopt: offered, but none spoken.
std::optional<Protocol> NegotiateRemoteCommand(const std::vector<std::string>& offered);
std::optional<Protocol> NegotiatePortForward(const std::vector<std::string>& offered);

// One message for `channel`. Base64 messages are meant to be sent as text frames.
std::string Encode(Codec codec, uint8_t channel, absl::string_view data);

struct Message {
  uint8_t channel = 0;
  std::string data;
};
// Fails on an empty message (no channel) and on invalid base64.
absl::StatusOr<Message> Decode(Codec codec, absl::string_view message);

// The first bytes on each port-forward channel: the port, 16 bits little-endian.
std::string PortPrefix(uint16_t port);

}  // namespace berth::streaming::ws

#endif  // BERTH_SERVER_STREAMING_WS_CHANNEL_H_
