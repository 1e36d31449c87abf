// Hostile clients against the streaming server's limits: malformed header blocks, stream and
// port-forward floods, slow handshakes, oversized requests and messages, no threads left; the
// server keeps serving others with bounded threads and descriptors.
#include "server/streaming/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/streaming/server_test_util.h"
#include "server/streaming/spdy.h"

namespace berth::streaming {
namespace {

using namespace server_test;  // NOLINT: the shared fixture and clients of these tests

// A SYN_STREAM whose header block claims a key of 0xfffffffc bytes (4 + that wraps to 0 in 32
// bits), compressed on `c`'s own context so the server inflates it.
std::string WrappingHeaderBlockFrame(SpdyClient& c) {
  // A fresh context, as the server's is: this is the connection's first header block.
  std::string raw;
  auto put32 = [&](uint32_t v) {
    for (int shift : {24, 16, 8, 0}) raw.push_back(static_cast<char>(v >> shift));
  };
  put32(1);
  put32(0xfffffffc);
  raw += "streamtype";
  z_stream z{};
  deflateInit(&z, Z_DEFAULT_COMPRESSION);
  deflateSetDictionary(&z, spdy::kHeaderDictionary, spdy::kHeaderDictionarySize);
  std::string block(1024, '\0');
  z.next_in = reinterpret_cast<Bytef*>(raw.data());
  z.avail_in = raw.size();
  z.next_out = reinterpret_cast<Bytef*>(block.data());
  z.avail_out = block.size();
  deflate(&z, Z_SYNC_FLUSH);
  block.resize(block.size() - z.avail_out);
  deflateEnd(&z);
  uint32_t id = 0;
  c.SynStream({}, &id).IgnoreError();  // only to take the next stream id
  return spdy::SynStreamFrame(id, 0, 0, block);
}

TEST_F(StreamingServerTest, AHeaderBlockWithAWrappingLengthEndsOnlyItsConnection) {
  SpdyClient bad;
  ASSERT_EQ(*bad.Connect(Exec({"/bin/true"}, false, true, false), "v4.channel.k8s.io"), 101);
  ASSERT_TRUE(bad.SendRaw(WrappingHeaderBlockFrame(bad)));
  EXPECT_TRUE(bad.ReadUntilClosed(absl::Seconds(10)));
  EXPECT_TRUE(bad.goaway());
  EXPECT_EQ(EchoThroughExec(*server_, "still-here"), "still-here\n");
}

TEST_F(StreamingServerTest, DuplicateAndUnknownRemoteCommandStreamsAreReset) {
  SpdyClient c;
  ASSERT_EQ(*c.Connect(Exec({"/bin/cat"}, true, true, false), "v4.channel.k8s.io"), 101);
  Streams s = OpenStreams(c, true, true, false, false);
  uint32_t dup = 0, bogus = 0;
  ASSERT_TRUE(c.SendRaw(*c.SynStream({{"streamtype", "stdout"}}, &dup)));
  ASSERT_TRUE(c.SendRaw(*c.SynStream({{"streamtype", "bogus"}}, &bogus)));
  ASSERT_TRUE(Eventually([&] {
    c.ReadAvailable();
    return c.reset(dup) && c.reset(bogus);
  }));
  ASSERT_TRUE(c.Send(s.in, "first stdout wins\n", true));
  ASSERT_TRUE(c.ReadUntilFin({s.error, s.out}));
  EXPECT_EQ(c.stream(s.out).bytes, "first stdout wins\n");
  EXPECT_EQ(c.stream(dup).bytes, "");
}

TEST(StreamingServerLimitsTest, PortForwardFloodsAreRefusedAndHalfOpenPairsReleasedOnTimeout) {
  test::ProcessBackend backend;
  std::unique_ptr<Server> server =
      *Server::Start(ServerOptions{.stream_creation_timeout = absl::Seconds(3)}, &backend);
  // The idle server's own: its accept thread, the listening socket and asio's reactor.
  const size_t threads0 = Threads(), fds0 = Fds();
  SpdyClient c;
  ASSERT_EQ(*c.Connect(server->GetPortForwardURL({"pod", {}}), "portforward.k8s.io"), 101);
  // 5,000 error streams with distinct request ids, none ever paired: ~135 KB from the client.
  constexpr int kStreams = 5000;
  size_t max_threads = 0, max_fds = 0;
  uint32_t first = 0;
  for (int i = 0; i < kStreams;) {
    std::string batch;
    for (int end = i + 250; i < end; ++i) {
      uint32_t id = 0;
      batch += *c.SynStream(
          {{"streamtype", "error"}, {"port", "80"}, {"requestid", std::to_string(i)}}, &id);
      if (i == 0) first = id;
    }
    ASSERT_TRUE(c.SendRaw(batch));
    c.ReadAvailable();
    max_threads = std::max(max_threads, Threads());
    max_fds = std::max(max_fds, Fds());
  }
  const size_t pairs = ServerOptions{}.max_port_forwards_per_connection;
  ASSERT_TRUE(Eventually([&] {
    c.ReadAvailable();
    max_threads = std::max(max_threads, Threads());
    max_fds = std::max(max_fds, Fds());
    return c.resets() >= kStreams - pairs;
  })) << c.resets();
  EXPECT_EQ(c.resets(), kStreams - pairs);
  // The connection's thread and its reaper; each held pair a socketpair and no thread.
  EXPECT_LE(max_threads, threads0 + 4);
  EXPECT_LE(max_fds, fds0 + 2 * pairs + 8);
  // The half-open pairs go when the stream-creation timeout passes, though the client stays:
  // what is left is its connection (the client's end, the server's and its duplicate).
  EXPECT_TRUE(Eventually([&] {
    c.ReadAvailable();
    return Fds() <= fds0 + 3;
  })) << Fds()
      << " descriptors, " << fds0 << " before";
  EXPECT_TRUE(absl::StrContains(c.stream(first).bytes, "timed out")) << c.stream(first).bytes;
  // With the pairs gone the connection takes new ones.
  EchoListener echo;
  const std::string port = std::to_string(echo.port());
  absl::StatusOr<uint32_t> err =
      c.Open({{"streamtype", "error"}, {"port", port}, {"requestid", "x"}});
  absl::StatusOr<uint32_t> data =
      c.Open({{"streamtype", "data"}, {"port", port}, {"requestid", "x"}});
  ASSERT_TRUE(err.ok() && data.ok());
  ASSERT_TRUE(c.Send(*data, "after the flood", true));
  ASSERT_TRUE(c.ReadUntilFin({*data, *err}));
  EXPECT_EQ(c.stream(*data).bytes, "after the flood");
}

TEST(StreamingServerLimitsTest, StreamsBeyondTheConnectionLimitAreResetWithoutAReply) {
  test::ProcessBackend backend;
  std::unique_ptr<Server> server = *Server::Start(
      ServerOptions{.max_streams_per_connection = 10, .max_port_forwards_per_connection = 100},
      &backend);
  SpdyClient c;
  ASSERT_EQ(*c.Connect(server->GetPortForwardURL({"pod", {}}), "portforward.k8s.io"), 101);
  std::vector<uint32_t> ids(20);
  std::string frames;
  for (int i = 0; i < 20; ++i) {
    frames += *c.SynStream({{"streamtype", "error"}, {"requestid", std::to_string(i)}}, &ids[i]);
  }
  ASSERT_TRUE(c.SendRaw(frames));
  ASSERT_TRUE(Eventually([&] {
    c.ReadAvailable();
    return c.replies() + c.resets() >= 20;
  }));
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(c.replied(ids[i]), i < 10) << i;
    EXPECT_EQ(c.reset(ids[i]), i >= 10) << i;
  }
}

TEST(StreamingServerLimitsTest, TheServerWidePortForwardLimitSpansConnections) {
  test::ProcessBackend backend;
  std::unique_ptr<Server> server = *Server::Start(ServerOptions{.max_port_forwards = 3}, &backend);
  SpdyClient a, b;
  ASSERT_EQ(*a.Connect(server->GetPortForwardURL({"pod", {}}), "portforward.k8s.io"), 101);
  ASSERT_EQ(*b.Connect(server->GetPortForwardURL({"pod", {}}), "portforward.k8s.io"), 101);
  for (const char* rid : {"1", "2"})
    ASSERT_TRUE(a.Open({{"streamtype", "error"}, {"requestid", rid}}).ok());
  // The reply to a stream goes out before the server takes its slot: wait until it has.
  ASSERT_TRUE(a.Ping());
  uint32_t held = 0, refused = 0;
  ASSERT_TRUE(b.SendRaw(*b.SynStream({{"streamtype", "error"}, {"requestid", "1"}}, &held)));
  ASSERT_TRUE(b.SendRaw(*b.SynStream({{"streamtype", "error"}, {"requestid", "2"}}, &refused)));
  ASSERT_TRUE(Eventually([&] {
    b.ReadAvailable();
    return b.reset(refused);
  }));
  EXPECT_FALSE(b.reset(held));
  // WebSocket port-forwards count too: no room for one more port.
  std::string path;
  absl::StatusOr<UniqueFd> fd = test::ConnectToUrl(server->GetPortForwardURL({"pod", {80}}), &path);
  ASSERT_TRUE(fd.ok());
  ASSERT_TRUE(
      SendAll(fd->get(),
              absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n",
                           "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")));
  std::string response;
  ASSERT_TRUE(ReadUntilEof(fd->get(), absl::Seconds(10), &response));
  EXPECT_TRUE(absl::StartsWith(response, "HTTP/1.1 503")) << response;
}

TEST(StreamingServerLimitsTest, ASlowHandshakeIsCutOffAtOneDeadlineNotPerRead) {
  test::ProcessBackend backend;
  std::unique_ptr<Server> server =
      *Server::Start(ServerOptions{.handshake_timeout = absl::Seconds(1)}, &backend);
  std::string path;
  absl::StatusOr<UniqueFd> fd = test::ConnectToUrl(server->GetExecURL({"c1", {"true"}}), &path);
  ASSERT_TRUE(fd.ok());
  const std::string request = absl::StrCat("POST ", path, " HTTP/1.1\r\nHost: localhost\r\n",
                                           "X-Padding: ", std::string(200, 'p'));
  // A byte every 100 ms: each read is quick, the whole request never ends.
  const absl::Time start = absl::Now();
  std::string response;
  bool closed = false;
  for (size_t i = 0; i < request.size() && absl::Now() - start < absl::Seconds(4); ++i) {
    if (!SendAll(fd->get(), request.substr(i, 1))) break;
    if (ReadUntilEof(fd->get(), absl::Milliseconds(100), &response)) {
      closed = true;
      break;
    }
  }
  EXPECT_TRUE(closed || ReadUntilEof(fd->get(), absl::Seconds(1), &response));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_TRUE(absl::StartsWith(response, "HTTP/1.1 408")) << response;
}

TEST(StreamingServerLimitsTest, SlowClientsFromOneAddressCannotKeepOthersOut) {
  test::ProcessBackend backend;
  std::unique_ptr<Server> server = *Server::Start(
      ServerOptions{.max_handshakes_per_address = 4, .max_connections = 8}, &backend);
  // Twelve connections from 127.0.0.2 that start a request and stall.
  std::vector<UniqueFd> slow;
  for (int i = 0; i < 12; ++i) {
    slow.push_back(ConnectFrom("127.0.0.2", server->port()));
    SendAll(slow.back().get(), "P");
  }
  // Those beyond the address's share were turned away at once.
  int refused = 0;
  for (auto& fd : slow) refused += ReadUntilEof(fd.get(), absl::Milliseconds(200));
  EXPECT_EQ(refused, 8);
  EXPECT_EQ(EchoThroughExec(*server, "served"), "served\n");
  // Once they have been slow for a while, a newcomer from that address displaces the oldest.
  absl::SleepFor(absl::Milliseconds(1100));
  UniqueFd newcomer = ConnectFrom("127.0.0.2", server->port());
  EXPECT_TRUE(ReadUntilEof(slow[0].get(), absl::Seconds(5)));
  EXPECT_FALSE(ReadUntilEof(newcomer.get(), absl::Milliseconds(200)));
}

TEST_F(StreamingServerTest, AnUpgradeRequestOverTheSizeLimitIs431) {
  std::string path;
  absl::StatusOr<UniqueFd> fd = test::ConnectToUrl(Exec({"true"}, false, true, false), &path);
  ASSERT_TRUE(fd.ok());
  std::string request = absl::StrCat("POST ", path, " HTTP/1.1\r\nHost: localhost\r\n",
                                     "X-Padding: ", std::string(20 << 10, 'p'), "\r\n\r\n");
  SendAll(fd->get(), request);
  std::string response;
  ASSERT_TRUE(ReadUntilEof(fd->get(), absl::Seconds(10), &response));
  EXPECT_TRUE(absl::StartsWith(response, "HTTP/1.1 431")) << response;
}

TEST(StreamingServerLimitsTest, SessionsForOneContainerAreCapped) {
  test::ProcessBackend backend;
  std::unique_ptr<Server> server =
      *Server::Start(ServerOptions{.max_connections_per_target = 1}, &backend);
  auto held_client = std::make_unique<SpdyClient>();
  SpdyClient& held = *held_client;
  ASSERT_EQ(*held.Connect(server->GetExecURL({"c1", {"/bin/cat"}, false, true, true, false}),
                          "v4.channel.k8s.io"),
            101);
  Streams s = OpenStreams(held, true, true, false, false);
  SpdyClient second;
  EXPECT_EQ(*second.Connect(server->GetExecURL({"c1", {"/bin/true"}, false, false, true, false}),
                            "v4.channel.k8s.io"),
            429);
  SpdyClient other;
  EXPECT_EQ(*other.Connect(server->GetExecURL({"c2", {"/bin/true"}, false, false, true, false}),
                           "v4.channel.k8s.io"),
            101);
  ASSERT_TRUE(held.Send(s.in, "", true));
  ASSERT_TRUE(held.ReadUntilFin({s.error, s.out}));
  held_client.reset();  // disconnect
  EXPECT_TRUE(Eventually([&] {
    SpdyClient again;
    return again
               .Connect(server->GetExecURL({"c1", {"/bin/true"}, false, false, true, false}),
                        "v4.channel.k8s.io")
               .value_or(0) == 101;
  }));
}

TEST_F(StreamingServerTest, NoThreadForAConnectionOrAForwardIsARefusalNotAnAbort) {
  FailThreadStartsForTest(1);  // the connection's own thread
  SpdyClient refused;
  EXPECT_EQ(*refused.Connect(Exec({"/bin/true"}, false, true, false), "v4.channel.k8s.io"), 503);
  EXPECT_EQ(EchoThroughExec(*server_, "next"), "next\n");

  EchoListener echo;
  const std::string port = std::to_string(echo.port());
  SpdyClient c;
  ASSERT_EQ(*c.Connect(server_->GetPortForwardURL({"pod", {}}), "portforward.k8s.io"), 101);
  absl::StatusOr<uint32_t> err =
      c.Open({{"streamtype", "error"}, {"port", port}, {"requestid", "1"}});
  ASSERT_TRUE(err.ok());
  FailThreadStartsForTest(1);  // the pair's worker
  absl::StatusOr<uint32_t> data =
      c.Open({{"streamtype", "data"}, {"port", port}, {"requestid", "1"}});
  ASSERT_TRUE(data.ok());
  ASSERT_TRUE(c.ReadUntilFin({*err, *data}));
  EXPECT_TRUE(absl::StrContains(c.stream(*err).bytes, "no thread")) << c.stream(*err).bytes;
  // The next pair on the same connection runs.
  err = c.Open({{"streamtype", "error"}, {"port", port}, {"requestid", "2"}});
  data = c.Open({{"streamtype", "data"}, {"port", port}, {"requestid", "2"}});
  ASSERT_TRUE(err.ok() && data.ok());
  ASSERT_TRUE(c.Send(*data, "ok", true));
  ASSERT_TRUE(c.ReadUntilFin({*data, *err}));
  EXPECT_EQ(c.stream(*data).bytes, "ok");
}

TEST_F(StreamingServerTest, ACommandThatIsNotUtf8StillGetsItsExitStatus) {
  // The status quotes the command: JSON serialisation of it once threw on a session thread.
  SpdyClient c;
  ASSERT_EQ(*c.Connect(Exec({"/bin/sh", "-c", "exit 3", "\xff\xfe"}, false, true, false),
                       "v4.channel.k8s.io"),
            101);
  Streams s = OpenStreams(c, false, true, false, false);
  ASSERT_TRUE(c.ReadUntilFin({s.error, s.out}));
  json status = json::parse(c.stream(s.error).bytes);
  EXPECT_EQ(status["reason"], "NonZeroExitCode");
}

TEST(StreamingServerLimitsTest, WebSocketMessagesOverTheLimitEndTheConnection) {
  test::ProcessBackend backend;
  std::unique_ptr<Server> server =
      *Server::Start(ServerOptions{.max_message_bytes = 1024}, &backend);
  WsClient c;
  c.Connect(server->GetExecURL({"c1", {"/bin/cat"}, false, true, true, false}),
            "v4.channel.k8s.io");
  c.Send(ws::Codec::kBinary, ws::kStdin, std::string(1000, 'a'));
  c.Send(ws::Codec::kBinary, ws::kStdin, std::string(2000, 'b'));
  std::vector<ws::Message> msgs = c.ReadAll(ws::Codec::kBinary);
  EXPECT_FALSE(absl::StrContains(Channel(msgs, ws::kStdout), "b"));
}

// The audit's scenario at once: malformed header blocks, a 5,000-stream port-forward flood and
// slow handshakes, while a well-behaved client keeps being served and the server's threads and
// descriptors stay bounded and come back once the hostile connections are gone.
TEST(StreamingServerLimitsTest, HostileClientsLeaveTheServerServingWithBoundedThreadsAndFds) {
  test::ProcessBackend backend;
  std::unique_ptr<Server> server =
      *Server::Start(ServerOptions{.stream_creation_timeout = absl::Seconds(1),
                                   .handshake_timeout = absl::Seconds(2),
                                   .max_handshakes_per_address = 8},
                     &backend);
  const size_t threads0 = Threads(), fds0 = Fds();  // the idle server's own included
  size_t max_threads = 0, max_fds = 0;
  auto sample = [&] {
    max_threads = std::max(max_threads, Threads());
    max_fds = std::max(max_fds, Fds());
  };

  // Slow handshakes from another address, a byte now and then.
  std::vector<UniqueFd> slow;
  for (int i = 0; i < 50; ++i) {
    slow.push_back(ConnectFrom("127.0.0.2", server->port()));
    SendAll(slow.back().get(), "P");
  }
  // Malformed header blocks, each on its own connection.
  for (int i = 0; i < 20; ++i) {
    SpdyClient bad;
    ASSERT_EQ(*bad.Connect(server->GetExecURL({"c1", {"/bin/true"}, false, false, true, false}),
                           "v4.channel.k8s.io"),
              101);
    bad.SendRaw(WrappingHeaderBlockFrame(bad));
    EXPECT_TRUE(bad.ReadUntilClosed(absl::Seconds(10)));
  }
  // The flood, with the well-behaved client served in between.
  auto flood_client = std::make_unique<SpdyClient>();
  SpdyClient& flood = *flood_client;
  ASSERT_EQ(*flood.Connect(server->GetPortForwardURL({"pod", {}}), "portforward.k8s.io"), 101);
  for (int i = 0; i < 5000;) {
    std::string batch;
    for (int end = i + 500; i < end; ++i) {
      uint32_t id = 0;
      batch += *flood.SynStream({{"streamtype", i % 2 ? "data" : "error"},
                                 {"port", "1"},
                                 {"requestid", std::to_string(i)}},
                                &id);
    }
    ASSERT_TRUE(flood.SendRaw(batch));
    flood.ReadAvailable();
    for (auto& fd : slow) SendAll(fd.get(), "O");
    sample();
    EXPECT_EQ(EchoThroughExec(*server, absl::StrCat("good-", i)), absl::StrCat("good-", i, "\n"));
  }
  sample();
  // Bounded: a thread per admitted handshake (8), the flood's connection and reaper, the good
  // client's few; a socketpair per held pair and two descriptors a connection.
  EXPECT_LE(max_threads, threads0 + 24);
  EXPECT_LE(max_fds, fds0 + 2 * ServerOptions{}.max_port_forwards_per_connection + 2 * 60 + 16);
  slow.clear();
  flood_client.reset();
  EXPECT_TRUE(Eventually([&] { return Threads() <= threads0; }))
      << Threads() << " threads, " << threads0 << " before";
  EXPECT_TRUE(Eventually([&] { return Fds() <= fds0; }))
      << Fds() << " descriptors, " << fds0 << " before";
  EXPECT_EQ(EchoThroughExec(*server, "after"), "after\n");
}

}  // namespace
}  // namespace berth::streaming
