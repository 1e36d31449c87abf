// The streaming server end to end over loopback, with a backend of real processes: SPDY and
// WebSocket exec (output, stdin, exit codes, tty resize), attach, port-forward, token rules,
// protocol negotiation and concurrent sessions; and hostile clients (malformed header blocks,
// stream floods, slow handshakes, oversized requests) against the server's limits.
#include "server/streaming/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "boost/asio.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/websocket.hpp"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/streaming/spdy.h"
#include "server/streaming/threads.h"
#include "server/streaming/ws_channel.h"
#include "test/streaming/process_backend.h"
#include "test/streaming/spdy_client.h"
#include "util/fd.h"

namespace berth::streaming {
namespace {

using json = nlohmann::json;
using test::SpdyClient;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = boost::asio::ip::tcp;

class StreamingServerTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options = {}) {
    absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(options, &backend_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }
  void SetUp() override { StartServer(); }

  std::string Exec(std::vector<std::string> cmd, bool in, bool out, bool err, bool tty = false) {
    return server_->GetExecURL(ExecRequest{"c1", std::move(cmd), tty, in, out, err});
  }

  test::ProcessBackend backend_;
  std::unique_ptr<Server> server_;
};

// Opens the remotecommand streams as client-go does (error first) and returns their ids.
struct Streams {
  uint32_t error = 0, in = 0, out = 0, err = 0, resize = 0;
};
Streams OpenStreams(SpdyClient& c, bool in, bool out, bool err, bool resize) {
  Streams s;
  auto open = [&](const char* type) {
    absl::StatusOr<uint32_t> id = c.Open({{"streamtype", type}});
    EXPECT_TRUE(id.ok()) << id.status();
    return id.value_or(0);
  };
  s.error = open("error");
  if (in) s.in = open("stdin");
  if (out) s.out = open("stdout");
  if (err) s.err = open("stderr");
  if (resize) s.resize = open("resize");
  return s;
}

TEST_F(StreamingServerTest, UrlsNameTheKindAndAFreshTokenOnTheServersAddress) {
  std::string a = Exec({"true"}, false, true, false);
  std::string b = Exec({"true"}, false, true, false);
  std::string prefix = absl::StrCat("http://127.0.0.1:", server_->port(), "/exec/");
  EXPECT_TRUE(absl::StartsWith(a, prefix)) << a;
  EXPECT_NE(a, b);
  EXPECT_GE(a.size() - prefix.size(), 11u);  // 8+ random bytes in base64
  EXPECT_TRUE(absl::StartsWith(server_->GetAttachURL({"c1"}),
                               absl::StrCat(server_->base_url(), "/attach/")));
  EXPECT_TRUE(absl::StartsWith(server_->GetPortForwardURL({"pod", {80}}),
                               absl::StrCat(server_->base_url(), "/portforward/")));
}

TEST_F(StreamingServerTest, ExecDeliversStdoutAndStderrOnTheirStreamsAndSuccessOnTheErrorStream) {
  SpdyClient c;
  ASSERT_EQ(*c.Connect(Exec({"/bin/sh", "-c", "echo out; echo err >&2"}, false, true, true),
                       "v4.channel.k8s.io,v3.channel.k8s.io"),
            101);
  EXPECT_TRUE(absl::StrContains(c.response_head(), "X-Stream-Protocol-Version: v4.channel.k8s.io"))
      << c.response_head();
  Streams s = OpenStreams(c, false, true, true, false);
  ASSERT_TRUE(c.ReadUntilFin({s.error, s.out, s.err}));
  EXPECT_EQ(c.stream(s.out).bytes, "out\n");
  EXPECT_EQ(c.stream(s.err).bytes, "err\n");
  json status = json::parse(c.stream(s.error).bytes);
  EXPECT_EQ(status["status"], "Success");
}

TEST_F(StreamingServerTest, ExecPipesStdinToTheCommandUntilTheClientClosesIt) {
  SpdyClient c;
  ASSERT_EQ(*c.Connect(Exec({"/bin/cat"}, true, true, false), "v4.channel.k8s.io"), 101);
  Streams s = OpenStreams(c, true, true, false, false);
  ASSERT_TRUE(c.Send(s.in, "hello "));
  ASSERT_TRUE(c.Send(s.in, "world\n", /*fin=*/true));
  ASSERT_TRUE(c.ReadUntilFin({s.error, s.out}));
  EXPECT_EQ(c.stream(s.out).bytes, "hello world\n");
}

TEST_F(StreamingServerTest, NonZeroExitBecomesANonZeroExitCodeStatusWithTheCode) {
  SpdyClient c;
  ASSERT_EQ(*c.Connect(Exec({"/bin/sh", "-c", "exit 3"}, false, true, false), "v4.channel.k8s.io"),
            101);
  Streams s = OpenStreams(c, false, true, false, false);
  ASSERT_TRUE(c.ReadUntilFin({s.error, s.out}));
  json status = json::parse(c.stream(s.error).bytes);
  EXPECT_EQ(status["status"], "Failure");
  EXPECT_EQ(status["reason"], "NonZeroExitCode");
  EXPECT_TRUE(absl::StrContains(status["message"].get<std::string>(),
                                "command terminated with non-zero exit code"));
  EXPECT_EQ(status["details"]["causes"][0]["reason"], "ExitCode");
  EXPECT_EQ(status["details"]["causes"][0]["message"], "3");
}

TEST_F(StreamingServerTest, ProtocolsBeforeV4ReportAFailedExitAsTextAndSuccessAsNothing) {
  for (const char* protocol : {"v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"}) {
    SCOPED_TRACE(protocol);
    SpdyClient fail;
    ASSERT_EQ(*fail.Connect(Exec({"/bin/sh", "-c", "exit 5"}, false, true, false), protocol), 101);
    Streams s = OpenStreams(fail, false, true, false, false);
    ASSERT_TRUE(fail.ReadUntilFin({s.error, s.out}));
    EXPECT_TRUE(absl::StrContains(fail.stream(s.error).bytes, "exit code 5"))
        << fail.stream(s.error).bytes;

    SpdyClient ok;
    ASSERT_EQ(*ok.Connect(Exec({"/bin/echo", "hi"}, false, true, false), protocol), 101);
    s = OpenStreams(ok, false, true, false, false);
    ASSERT_TRUE(ok.ReadUntilFin({s.error, s.out}));
    EXPECT_EQ(ok.stream(s.out).bytes, "hi\n");
    EXPECT_EQ(ok.stream(s.error).bytes, "");
  }
}

TEST_F(StreamingServerTest, TtyExecSeesTheClientsTerminalSizeAndItsResizes) {
  SpdyClient c;
  ASSERT_EQ(*c.Connect(Exec({"/bin/sh", "-c", "stty size; while read l; do stty size; done"},
                            true, true, false, /*tty=*/true),
                       "v4.channel.k8s.io"),
            101);
  Streams s = OpenStreams(c, true, true, false, true);
  ASSERT_TRUE(c.Send(s.resize, R"({"Width":100,"Height":30})"));
  ASSERT_TRUE(c.ReadUntilContains(s.out, "30 100")) << c.stream(s.out).bytes;
  ASSERT_TRUE(c.Send(s.resize, R"({"Width":120,"Height":40})"));
  // The resize and the next line race inside the pty; a few lines make sure one comes after.
  bool resized = false;
  for (int i = 0; i < 100 && !resized; ++i) {
    ASSERT_TRUE(c.Send(s.in, "\n"));
    resized = c.ReadUntilContains(s.out, "40 120", absl::Milliseconds(200));
  }
  EXPECT_TRUE(resized) << c.stream(s.out).bytes;
  ASSERT_TRUE(c.Send(s.in, "\x04"));  // ^D: end of input for the shell on the terminal
  ASSERT_TRUE(c.ReadUntilFin({s.error, s.out}));
  EXPECT_EQ(json::parse(c.stream(s.error).bytes)["status"], "Success");
}

TEST_F(StreamingServerTest, AttachJoinsTheMainProcessesStdio) {
  SpdyClient c;
  ASSERT_EQ(*c.Connect(server_->GetAttachURL({"c1", false, true, true, false}),
                       "v4.channel.k8s.io"),
            101);
  Streams s = OpenStreams(c, true, true, false, false);
  ASSERT_TRUE(c.Send(s.in, "attached\n", true));
  ASSERT_TRUE(c.ReadUntilFin({s.error, s.out}));
  EXPECT_EQ(c.stream(s.out).bytes, "attached\n");
}

// A loopback TCP listener that echoes every byte back, one connection at a time, until closed.
class EchoListener {
 public:
  EchoListener() {
    fd_.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
    listen(fd_.get(), 16);
    socklen_t len = sizeof(a);
    getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        UniqueFd conn(accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!conn.valid()) return;
        char buf[4096];
        for (;;) {
          ssize_t n = read(conn.get(), buf, sizeof(buf));
          if (n <= 0) break;
          if (write(conn.get(), buf, n) != n) break;
        }
      }
    });
  }
  ~EchoListener() {
    shutdown(fd_.get(), SHUT_RDWR);
    thread_.join();
  }
  int port() const { return port_; }

 private:
  UniqueFd fd_;
  int port_ = 0;
  std::thread thread_;
};

TEST_F(StreamingServerTest, SpdyPortForwardCarriesBytesBothWaysAndEndsWithTheConnection) {
  EchoListener echo;
  SpdyClient c;
  ASSERT_EQ(*c.Connect(server_->GetPortForwardURL({"pod", {echo.port()}}), "portforward.k8s.io"),
            101);
  const std::string port = std::to_string(echo.port());
  absl::StatusOr<uint32_t> err =
      c.Open({{"streamtype", "error"}, {"port", port}, {"requestid", "0"}});
  ASSERT_TRUE(err.ok());
  ASSERT_TRUE(c.Send(*err, "", true));  // client-go closes its side of the error stream at once
  absl::StatusOr<uint32_t> data =
      c.Open({{"streamtype", "data"}, {"port", port}, {"requestid", "0"}});
  ASSERT_TRUE(data.ok());
  ASSERT_TRUE(c.Send(*data, "ping"));
  ASSERT_TRUE(c.ReadUntilContains(*data, "ping"));
  ASSERT_TRUE(c.Send(*data, "pong", true));
  ASSERT_TRUE(c.ReadUntilFin({*data, *err}));
  EXPECT_EQ(c.stream(*data).bytes, "pingpong");
  EXPECT_EQ(c.stream(*err).bytes, "");
  EXPECT_EQ(backend_.forwards(), 1);
}

TEST_F(StreamingServerTest, SpdyPortForwardToAPortNotRequestedReportsOnTheErrorStream) {
  EchoListener echo;
  SpdyClient c;
  ASSERT_EQ(*c.Connect(server_->GetPortForwardURL({"pod", {echo.port()}}), "portforward.k8s.io"),
            101);
  const std::string other = std::to_string(echo.port() == 1 ? 2 : echo.port() - 1);
  absl::StatusOr<uint32_t> err =
      c.Open({{"streamtype", "error"}, {"port", other}, {"requestid", "7"}});
  absl::StatusOr<uint32_t> data =
      c.Open({{"streamtype", "data"}, {"port", other}, {"requestid", "7"}});
  ASSERT_TRUE(err.ok() && data.ok());
  ASSERT_TRUE(c.ReadUntilFin({*err}));
  EXPECT_TRUE(absl::StrContains(c.stream(*err).bytes, "was not in the port-forward request"))
      << c.stream(*err).bytes;
  EXPECT_EQ(backend_.forwards(), 0);
}

TEST_F(StreamingServerTest, UnknownUsedAndMisroutedTokensAre404) {
  SpdyClient unknown;
  EXPECT_EQ(*unknown.Connect(absl::StrCat(server_->base_url(), "/exec/nosuchtoken"),
                             "v4.channel.k8s.io"),
            404);
  std::string url = Exec({"true"}, false, true, false);
  {
    SpdyClient first;
    ASSERT_EQ(*first.Connect(url, "v4.channel.k8s.io"), 101);
    Streams s = OpenStreams(first, false, true, false, false);
    ASSERT_TRUE(first.ReadUntilFin({s.error, s.out}));
  }
  SpdyClient reused;
  EXPECT_EQ(*reused.Connect(url, "v4.channel.k8s.io"), 404);
  std::string exec_url = Exec({"true"}, false, true, false);
  std::string as_attach = exec_url;
  as_attach.replace(as_attach.find("/exec/"), 6, "/attach/");
  SpdyClient misrouted;
  EXPECT_EQ(*misrouted.Connect(as_attach, "v4.channel.k8s.io"), 404);
}

TEST(StreamingServerTokenTest, ExpiredTokensAre404) {
  test::ProcessBackend backend;
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start(ServerOptions{.token_ttl = absl::ZeroDuration()}, &backend);
  ASSERT_TRUE(server.ok()) << server.status();
  SpdyClient c;
  EXPECT_EQ(*c.Connect((*server)->GetExecURL({"c1", {"true"}, false, false, true, false}),
                       "v4.channel.k8s.io"),
            404);
}

TEST_F(StreamingServerTest, UnsupportedProtocolsAreRefusedBeforeTheUpgrade) {
  SpdyClient c;
  EXPECT_EQ(*c.Connect(Exec({"true"}, false, true, false), "v9.channel.k8s.io"), 403);
  EXPECT_TRUE(absl::StrContains(c.ReadBody(), "v9.channel.k8s.io"));
}

TEST(StreamingServerTimeoutTest, ClientsThatNeverOpenTheirStreamsAreDisconnected) {
  test::ProcessBackend backend;
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(
      ServerOptions{.stream_creation_timeout = absl::Milliseconds(200)}, &backend);
  ASSERT_TRUE(server.ok());
  SpdyClient c;
  ASSERT_EQ(*c.Connect((*server)->GetExecURL({"c1", {"/bin/echo", "x"}, false, false, true, false}),
                       "v4.channel.k8s.io"),
            101);
  absl::StatusOr<uint32_t> error = c.Open({{"streamtype", "error"}});  // no stdout stream
  ASSERT_TRUE(error.ok());
  EXPECT_TRUE(c.ReadUntilFin({*error}));  // ends with the connection, not with a status
  EXPECT_EQ(c.stream(*error).bytes, "");
}

TEST_F(StreamingServerTest, TwentyConcurrentExecSessionsEachGetTheirOwnOutput) {
  constexpr int kSessions = 20;
  std::vector<std::string> urls;
  for (int i = 0; i < kSessions; ++i) {
    urls.push_back(Exec({"/bin/sh", "-c", "read x; echo session-$0-$x", std::to_string(i)}, true,
                        true, false));
  }
  std::vector<std::string> outputs(kSessions);
  std::vector<std::thread> threads;
  for (int i = 0; i < kSessions; ++i) {
    threads.emplace_back([&, i] {
      SpdyClient c;
      if (c.Connect(urls[i], "v4.channel.k8s.io").value_or(0) != 101) return;
      Streams s = OpenStreams(c, true, true, false, false);
      c.Send(s.in, absl::StrCat("in", i, "\n"), true);
      if (c.ReadUntilFin({s.error, s.out})) outputs[i] = c.stream(s.out).bytes;
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kSessions; ++i) {
    EXPECT_EQ(outputs[i], absl::StrCat("session-", i, "-in", i, "\n"));
  }
}

// A WebSocket client of the channel protocols.
class WsClient {
 public:
  // Returns the negotiated subprotocol.
  std::string Connect(const std::string& url, const std::string& protocols) {
    std::string path;
    absl::StatusOr<UniqueFd> fd = test::ConnectToUrl(url, &path);
    EXPECT_TRUE(fd.ok()) << fd.status();
    ws_.next_layer().assign(tcp::v4(), fd->release());
    ws_.set_option(websocket::stream_base::decorator([protocols](websocket::request_type& req) {
      if (!protocols.empty()) req.set(beast::http::field::sec_websocket_protocol, protocols);
    }));
    websocket::response_type res;
    ws_.handshake(res, "localhost", path);
    ws_.binary(true);
    return std::string(res[beast::http::field::sec_websocket_protocol]);
  }
  void Send(ws::Codec codec, uint8_t channel, const std::string& data) {
    ws_.binary(codec == ws::Codec::kBinary);
    ws_.write(boost::asio::buffer(ws::Encode(codec, channel, data)));
  }
  // Reads messages until the server closes; returns them in order.
  std::vector<ws::Message> ReadAll(ws::Codec codec) {
    std::vector<ws::Message> out;
    for (;;) {
      beast::flat_buffer buf;
      boost::system::error_code ec;
      ws_.read(buf, ec);
      if (ec) return out;
      absl::StatusOr<ws::Message> m = ws::Decode(codec, beast::buffers_to_string(buf.data()));
      EXPECT_TRUE(m.ok()) << m.status();
      if (m.ok()) out.push_back(*m);
    }
  }
  ws::Message Read(ws::Codec codec) {
    beast::flat_buffer buf;
    ws_.read(buf);
    return *ws::Decode(codec, beast::buffers_to_string(buf.data()));
  }

 private:
  boost::asio::io_context io_;
  websocket::stream<tcp::socket> ws_{io_};
};

std::string Channel(const std::vector<ws::Message>& msgs, uint8_t channel) {
  std::string out;
  for (const auto& m : msgs) {
    if (m.channel == channel) out += m.data;
  }
  return out;
}

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
  std::string req = absl::StrCat(
      "GET ", path, " HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n",
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

// What the process holds: the server's threads and descriptors are most of it in these tests.
size_t CountEntries(const char* dir) {
  size_t n = 0;
  for (auto it = std::filesystem::directory_iterator(dir); it != std::filesystem::directory_iterator();
       ++it) {
    ++n;
  }
  return n;
}
size_t Threads() { return CountEntries("/proc/self/task"); }
size_t Fds() { return CountEntries("/proc/self/fd"); }

// Waits for `pred`, polling; false if it did not hold within `timeout`.
template <typename P>
bool Eventually(P pred, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

// A TCP connection to the server from another loopback address, standing for another client.
UniqueFd ConnectFrom(const char* source, int port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in from{};
  from.sin_family = AF_INET;
  inet_pton(AF_INET, source, &from.sin_addr);
  EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&from), sizeof(from)), 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  return fd;
}

// Reads until the server closes `fd` or `timeout` passes; true on the close. What was read goes
// to *got.
bool ReadUntilEof(int fd, absl::Duration timeout, std::string* got = nullptr) {
  const absl::Time deadline = absl::Now() + timeout;
  char buf[4096];
  for (;;) {
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(ms)) <= 0) continue;
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return true;
    if (got) got->append(buf, n);
  }
}

bool SendAll(int fd, const std::string& bytes) {
  return send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
}

// A well-behaved client's exec: its output, or "" if it did not get through.
std::string EchoThroughExec(Server& server, const std::string& word) {
  SpdyClient c;
  absl::StatusOr<int> code =
      c.Connect(server.GetExecURL({"good", {"/bin/echo", word}, false, false, true, false}),
                "v4.channel.k8s.io");
  if (!code.ok() || *code != 101) return "";
  Streams s = OpenStreams(c, false, true, false, false);
  if (!c.ReadUntilFin({s.error, s.out})) return "";
  return c.stream(s.out).bytes;
}

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
  std::unique_ptr<Server> server = *Server::Start(
      ServerOptions{.stream_creation_timeout = absl::Seconds(3)}, &backend);
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
      batch += *c.SynStream({{"streamtype", "error"}, {"port", "80"}, {"requestid", std::to_string(i)}}, &id);
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
  })) << Fds() << " descriptors, " << fds0 << " before";
  EXPECT_TRUE(absl::StrContains(c.stream(first).bytes, "timed out")) << c.stream(first).bytes;
  // With the pairs gone the connection takes new ones.
  EchoListener echo;
  const std::string port = std::to_string(echo.port());
  absl::StatusOr<uint32_t> err = c.Open({{"streamtype", "error"}, {"port", port}, {"requestid", "x"}});
  absl::StatusOr<uint32_t> data = c.Open({{"streamtype", "data"}, {"port", port}, {"requestid", "x"}});
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
  std::unique_ptr<Server> server =
      *Server::Start(ServerOptions{.max_port_forwards = 3}, &backend);
  SpdyClient a, b;
  ASSERT_EQ(*a.Connect(server->GetPortForwardURL({"pod", {}}), "portforward.k8s.io"), 101);
  ASSERT_EQ(*b.Connect(server->GetPortForwardURL({"pod", {}}), "portforward.k8s.io"), 101);
  for (const char* rid : {"1", "2"}) ASSERT_TRUE(a.Open({{"streamtype", "error"}, {"requestid", rid}}).ok());
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
  ASSERT_TRUE(SendAll(fd->get(), absl::StrCat(
      "GET ", path, " HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n",
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
    return again.Connect(server->GetExecURL({"c1", {"/bin/true"}, false, false, true, false}),
                         "v4.channel.k8s.io").value_or(0) == 101;
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
  absl::StatusOr<uint32_t> err = c.Open({{"streamtype", "error"}, {"port", port}, {"requestid", "1"}});
  ASSERT_TRUE(err.ok());
  FailThreadStartsForTest(1);  // the pair's worker
  absl::StatusOr<uint32_t> data = c.Open({{"streamtype", "data"}, {"port", port}, {"requestid", "1"}});
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
  c.Connect(server->GetExecURL({"c1", {"/bin/cat"}, false, true, true, false}), "v4.channel.k8s.io");
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
  std::unique_ptr<Server> server = *Server::Start(
      ServerOptions{.stream_creation_timeout = absl::Seconds(1),
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
      batch += *flood.SynStream({{"streamtype", i % 2 ? "data" : "error"}, {"port", "1"},
                                 {"requestid", std::to_string(i)}}, &id);
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
