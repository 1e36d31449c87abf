// WebSocket channel framing and subprotocol negotiation for exec/attach/port-forward.
#include "server/streaming/ws_channel.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace berth::streaming::ws {
namespace {

std::optional<Protocol> Negotiate(const std::vector<std::string>& offered,
                                  const std::vector<Protocol>& supported) {
  if (offered.empty()) return supported.front();  // the unnamed legacy protocol
  for (const std::string& o : offered) {
    for (const Protocol& p : supported) {
      if (!p.name.empty() && p.name == o) return p;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<Protocol> NegotiateRemoteCommand(const std::vector<std::string>& offered) {
  static const std::vector<Protocol> kSupported = {
      {"", 1, Codec::kBinary},
      {"v5.channel.k8s.io", 5, Codec::kBinary},
      {"v4.channel.k8s.io", 4, Codec::kBinary},
      {"v4.base64.channel.k8s.io", 4, Codec::kBase64},
      {"channel.k8s.io", 1, Codec::kBinary},
      {"base64.channel.k8s.io", 1, Codec::kBase64},
  };
  return Negotiate(offered, kSupported);
}

std::optional<Protocol> NegotiatePortForward(const std::vector<std::string>& offered) {
  // kubelet serves the unnamed protocol and the v4 ones; portforward.k8s.io is the name SPDY
  // clients use, accepted here with the same framing.
  static const std::vector<Protocol> kSupported = {
      {"", 4, Codec::kBinary},
      {"v4.channel.k8s.io", 4, Codec::kBinary},
      {"v4.base64.channel.k8s.io", 4, Codec::kBase64},
      {"portforward.k8s.io", 4, Codec::kBinary},
  };
  return Negotiate(offered, kSupported);
}

std::string Encode(Codec codec, uint8_t channel, absl::string_view data) {
  if (codec == Codec::kBase64) {
    return absl::StrCat(std::string(1, static_cast<char>('0' + channel)), absl::Base64Escape(data));
  }
  std::string msg(1, static_cast<char>(channel));
  msg.append(data.data(), data.size());
  return msg;
}

absl::StatusOr<Message> Decode(Codec codec, absl::string_view message) {
  if (message.empty()) return absl::InvalidArgumentError("empty channel message");
  Message m;
  if (codec == Codec::kBase64) {
    m.channel = static_cast<uint8_t>(message[0] - '0');
    if (!absl::Base64Unescape(message.substr(1), &m.data)) {
      return absl::InvalidArgumentError(
          absl::StrCat("channel ", m.channel, ": message is not valid base64"));
    }
    return m;
  }
  m.channel = static_cast<uint8_t>(message[0]);
  m.data = std::string(message.substr(1));
  return m;
}

std::string PortPrefix(uint16_t port) {
  return std::string{static_cast<char>(port & 0xff), static_cast<char>(port >> 8)};
}

}  // namespace berth::streaming::ws
