// The streaming server end to end over WebSocket (channel.k8s.io v4, v5, base64): exec output,
// exit status, stdin close, tty resize, port-forward port prefixes, subprotocol refusal.
#include "server/streaming/server.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/streaming/server_test_util.h"

namespace berth::streaming {
namespace {

using namespace server_test;  // NOLINT: the shared fixture and clients of these tests

TEST_F(StreamingServerTest, WebSocketV4ExecSendsOutputAndTheExitStatusOnChannels) {
  WsClient c;
  EXPECT_EQ(c.Connect(Exec({"/bin/sh", "-c", "echo out; echo err >&2; exit 2"}, false, true, true),
                      "v4.channel.k8s.io"),
            "v4.channel.k8s.io");
  std::vector<ws::Message> msgs = c.ReadAll(ws::Codec::kBinary);
  ASSERT_FALSE(msgs.empty());
  EXPECT_EQ(msgs[0].channel, ws::kStdout);  // kubelet's empty "connected" message
  EXPECT_EQ(msgs[0].data, "");
  EXPECT_EQ(Channel(msgs, ws::kStdout), "out\n");
  EXPECT_EQ(Channel(msgs, ws::kStderr), "err\n");
  json status = json::parse(Channel(msgs, ws::kError));
  EXPECT_EQ(status["reason"], "NonZeroExitCode");
  EXPECT_EQ(status["details"]["causes"][0]["message"], "2");
}

TEST_F(StreamingServerTest, WebSocketV5ClosesStdinWithTheCloseChannel) {
  WsClient c;
  EXPECT_EQ(c.Connect(Exec({"/bin/cat"}, true, true, false), "v5.channel.k8s.io,v4.channel.k8s.io"),
            "v5.channel.k8s.io");
  c.Send(ws::Codec::kBinary, ws::kStdin, "through stdin");
  c.Send(ws::Codec::kBinary, ws::kClose, std::string(1, static_cast<char>(ws::kStdin)));
  std::vector<ws::Message> msgs = c.ReadAll(ws::Codec::kBinary);
  EXPECT_EQ(Channel(msgs, ws::kStdout), "through stdin");
  EXPECT_EQ(json::parse(Channel(msgs, ws::kError))["status"], "Success");
}

TEST_F(StreamingServerTest, WebSocketBase64ExecEncodesEveryMessage) {
  WsClient c;
  EXPECT_EQ(c.Connect(Exec({"/bin/sh", "-c", "head -c 3; printf '\\001\\377'"}, true, true, false),
                      "v4.base64.channel.k8s.io"),
            "v4.base64.channel.k8s.io");
  c.Send(ws::Codec::kBase64, ws::kStdin, "abc");
  std::vector<ws::Message> msgs = c.ReadAll(ws::Codec::kBase64);
  EXPECT_EQ(Channel(msgs, ws::kStdout), "abc\x01\xff");
  EXPECT_EQ(json::parse(Channel(msgs, ws::kError))["status"], "Success");
}

TEST_F(StreamingServerTest, WebSocketTtyResizeArrivesOnChannelFour) {
  WsClient c;
  c.Connect(Exec({"/bin/sh", "-c", "stty size"}, true, true, false, true), "v4.channel.k8s.io");
  c.Send(ws::Codec::kBinary, ws::kResize, R"({"Width":91,"Height":17})");
  std::vector<ws::Message> msgs = c.ReadAll(ws::Codec::kBinary);
  EXPECT_TRUE(absl::StrContains(Channel(msgs, ws::kStdout), "17 91")) << Channel(msgs, ws::kStdout);
}

TEST_F(StreamingServerTest, WebSocketPortForwardPrefixesEachChannelWithItsPort) {
  EchoListener echo;
  WsClient c;
  std::string url = server_->GetPortForwardURL({"pod", {}});
  EXPECT_EQ(c.Connect(absl::StrCat(url, "?port=", echo.port()), "v4.channel.k8s.io"),
            "v4.channel.k8s.io");
  const std::string prefix = ws::PortPrefix(static_cast<uint16_t>(echo.port()));
  ws::Message first = c.Read(ws::Codec::kBinary), second = c.Read(ws::Codec::kBinary);
  EXPECT_EQ(first.channel, 0);
  EXPECT_EQ(first.data, prefix);
  EXPECT_EQ(second.channel, 1);
  EXPECT_EQ(second.data, prefix);
  c.Send(ws::Codec::kBinary, 0, "over websocket");
  std::string echoed;
  while (echoed.size() < strlen("over websocket")) {
    ws::Message m = c.Read(ws::Codec::kBinary);
    ASSERT_EQ(m.channel, 0);
    echoed += m.data;
  }
  EXPECT_EQ(echoed, "over websocket");
}

TEST_F(StreamingServerTest, WebSocketWithOnlyUnknownSubprotocolsIsRefused) {
  std::string path;
  absl::StatusOr<UniqueFd> fd = test::ConnectToUrl(Exec({"true"}, false, true, false), &path);
  ASSERT_TRUE(fd.ok());
  std::string req =
      absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n",
                   "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                   "Sec-WebSocket-Protocol: v9.channel.k8s.io\r\n\r\n");
  ASSERT_EQ(write(fd->get(), req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::string response;
  char buf[4096];
  for (ssize_t n; (n = read(fd->get(), buf, sizeof(buf))) > 0;) response.append(buf, n);
  EXPECT_TRUE(absl::StartsWith(response, "HTTP/1.1 400")) << response;
  EXPECT_TRUE(absl::StrContains(response, "v9.channel.k8s.io")) << response;
}

}  // namespace
}  // namespace berth::streaming
