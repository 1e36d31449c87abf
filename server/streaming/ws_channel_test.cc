// WebSocket channel framing: binary and base64 messages round-trip, bad input is refused, the
// port prefix is little-endian, and negotiation follows the client's order.
#include "server/streaming/ws_channel.h"

#include "gtest/gtest.h"

namespace berth::streaming::ws {
namespace {

TEST(WsChannelTest, BinaryMessagesStartWithTheChannelByte) {
  std::string m = Encode(Codec::kBinary, kStderr, std::string("a\0b", 3));
  EXPECT_EQ(m, std::string("\x02"
                           "a\0b",
                           4));
  absl::StatusOr<Message> back = Decode(Codec::kBinary, m);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->channel, kStderr);
  EXPECT_EQ(back->data, std::string("a\0b", 3));
  EXPECT_EQ(Decode(Codec::kBinary, std::string(1, '\xff'))->channel, kClose);
}

TEST(WsChannelTest, Base64MessagesStartWithTheChannelDigit) {
  // The example from kubelet's documentation of base64.channel.k8s.io.
  EXPECT_EQ(Encode(Codec::kBase64, kStdout, "\n"), "1Cg==");
  absl::StatusOr<Message> back = Decode(Codec::kBase64, "0Zm9vCg==");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->channel, kStdin);
  EXPECT_EQ(back->data, "foo\n");
  std::string binary("\x00\xff\x10", 3);
  EXPECT_EQ(Decode(Codec::kBase64, Encode(Codec::kBase64, kError, binary))->data, binary);
}

TEST(WsChannelTest, EmptyAndInvalidMessagesAreErrors) {
  EXPECT_FALSE(Decode(Codec::kBinary, "").ok());
  EXPECT_FALSE(Decode(Codec::kBase64, "").ok());
  EXPECT_FALSE(Decode(Codec::kBase64, "0not base64!").ok());
}

TEST(WsChannelTest, PortPrefixIsLittleEndian) {
  EXPECT_EQ(PortPrefix(8080), std::string("\x90\x1f", 2));
  EXPECT_EQ(PortPrefix(80), std::string("\x50\x00", 2));
}

TEST(WsChannelTest, NegotiationTakesTheClientsFirstSupportedProtocol) {
  std::optional<Protocol> p =
      NegotiateRemoteCommand({"v9.channel.k8s.io", "v4.channel.k8s.io", "v5.channel.k8s.io"});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->name, "v4.channel.k8s.io");
  EXPECT_EQ(p->version, 4);
  p = NegotiateRemoteCommand({"v4.base64.channel.k8s.io"});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->codec, Codec::kBase64);
  EXPECT_EQ(NegotiateRemoteCommand({"v5.channel.k8s.io"})->version, 5);
  EXPECT_EQ(NegotiateRemoteCommand({"channel.k8s.io"})->version, 1);
}

TEST(WsChannelTest, NoOfferedProtocolMeansTheLegacyOneAndUnknownOnesAreRefused) {
  std::optional<Protocol> p = NegotiateRemoteCommand({});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->name, "");
  EXPECT_EQ(p->version, 1);
  EXPECT_FALSE(NegotiateRemoteCommand({"v9.channel.k8s.io"}).has_value());
  EXPECT_FALSE(NegotiatePortForward({"v5.channel.k8s.io"}).has_value());
  EXPECT_EQ(NegotiatePortForward({"v4.base64.channel.k8s.io"})->codec, Codec::kBase64);
  EXPECT_EQ(NegotiatePortForward({})->name, "");
}

}  // namespace
}  // namespace berth::streaming::ws
