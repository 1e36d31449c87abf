// HandshakeParser, RouteTarget, HeaderValues and NegotiateSpdy: requests complete however they
// are cut, keep what follows them, and are refused (not asserted on) when oversized or chunked.
#include "server/streaming/handshake.h"

#include "gtest/gtest.h"

namespace berth::streaming {
namespace {

constexpr char kSpdyRequest[] =
    "POST /exec/tok HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
    "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
    "x-stream-protocol-version: v3.channel.k8s.io, channel.k8s.io\r\n"
    "Content-Length: 0\r\n\r\n";

TEST(HandshakeTest, ARequestFedByteByByteCompletesAndKeepsWhatFollows) {
  HandshakeParser p(4096);
  const std::string wire = std::string(kSpdyRequest) + "SPDY frames";
  absl::StatusOr<bool> done = false;
  size_t i = 0;
  for (; i < wire.size() && !*done; ++i) {
    done = p.Feed(wire.substr(i, 1));
    ASSERT_TRUE(done.ok()) << done.status();
  }
  ASSERT_TRUE(*done);
  EXPECT_EQ(i, strlen(kSpdyRequest));
  ASSERT_TRUE(p.Feed(wire.substr(i)).value());
  EXPECT_EQ(p.TakeLeftover(), "SPDY frames");
  EXPECT_EQ(p.request().target(), "/exec/tok");
  EXPECT_EQ(HeaderValues(p.request(), "X-Stream-Protocol-Version"),
            (std::vector<std::string>{"v4.channel.k8s.io", "v3.channel.k8s.io", "channel.k8s.io"}));
}

TEST(HandshakeTest, OversizedRequestsAreResourceExhausted) {
  HandshakeParser p(1024);
  absl::StatusOr<bool> r =
      p.Feed(std::string("GET /exec/t HTTP/1.1\r\nX-Pad: ") + std::string(2000, 'p') + "\r\n\r\n");
  EXPECT_TRUE(absl::IsResourceExhausted(r.status())) << r.status();
  HandshakeParser body(1024);
  r = body.Feed("POST /exec/t HTTP/1.1\r\nContent-Length: 5000\r\n\r\n");
  EXPECT_TRUE(absl::IsResourceExhausted(r.status())) << r.status();
}

TEST(HandshakeTest, ChunkedBodiesAreRefusedEvenInPieces) {
  // Found by handshake_fuzz: Beast 1.74 asserted (n >= 5 in parse_chunk_header) on this, fed a
  // byte at a time, and the assertion ended the process.
  const std::string wire =
      "GEX /portfforward/tok?port7= HTTP/1.1\r\nHo:s ht\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\nh\r\n";
  HandshakeParser p(4096);
  absl::Status st;
  for (size_t i = 0; i < wire.size() && st.ok(); ++i) st = p.Feed(wire.substr(i, 1)).status();
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
}

TEST(HandshakeTest, ContentLengthBodiesWithinTheLimitAreRead) {
  HandshakeParser p(4096);
  ASSERT_FALSE(p.Feed("POST /attach/t HTTP/1.1\r\nContent-Length: 4\r\n\r\nbo").value());
  ASSERT_TRUE(p.Feed("dyMORE").value());
  EXPECT_EQ(p.request().body(), "body");
  EXPECT_EQ(p.TakeLeftover(), "MORE");
}

TEST(HandshakeTest, MalformedRequestsAreInvalidArgument) {
  HandshakeParser p(4096);
  EXPECT_TRUE(absl::IsInvalidArgument(p.Feed("\x16\x03\x01 not http\r\n\r\n").status()));
}

TEST(HandshakeTest, RoutesNameAKindAndAToken) {
  EXPECT_EQ(RouteTarget("/exec/abc")->token, "abc");
  EXPECT_EQ(RouteTarget("/portforward/abc?port=80")->kind, Request::kPortForward);
  EXPECT_EQ(RouteTarget("//attach//abc")->kind, Request::kAttach);
  EXPECT_FALSE(RouteTarget("/exec").has_value());
  EXPECT_FALSE(RouteTarget("/exec/a/b").has_value());
  EXPECT_FALSE(RouteTarget("/shell/abc").has_value());
}

TEST(HandshakeTest, SpdyNegotiationFollowsTheClientsOrder) {
  EXPECT_EQ(NegotiateSpdy(Request::kExec, {"v9", "v3.channel.k8s.io", "v4.channel.k8s.io"}),
            "v3.channel.k8s.io");
  EXPECT_EQ(NegotiateSpdy(Request::kExec, {}), "channel.k8s.io");
  EXPECT_EQ(NegotiateSpdy(Request::kPortForward, {}), "portforward.k8s.io");
  EXPECT_EQ(NegotiateSpdy(Request::kPortForward, {"v4.channel.k8s.io"}), "");
  EXPECT_EQ(NegotiateSpdy(Request::kAttach, {"portforward.k8s.io"}), "");
}

}  // namespace
}  // namespace berth::streaming
