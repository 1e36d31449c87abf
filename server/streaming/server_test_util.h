// What the streaming server's end-to-end tests share: a fixture with a server over a backend of
// real processes, remotecommand streams opened as client-go does, a loopback echo listener, a
// WebSocket client of the channel protocols, and helpers for the hostile-client tests.
#ifndef BERTH_SERVER_STREAMING_SERVER_TEST_UTIL_H_
#define BERTH_SERVER_STREAMING_SERVER_TEST_UTIL_H_

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

namespace berth::streaming::server_test {

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
inline Streams OpenStreams(SpdyClient& c, bool in, bool out, bool err, bool resize) {
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

inline std::string Channel(const std::vector<ws::Message>& msgs, uint8_t channel) {
  std::string out;
  for (const auto& m : msgs) {
    if (m.channel == channel) out += m.data;
  }
  return out;
}

// What the process holds: the server's threads and descriptors are most of it in these tests.
inline size_t CountEntries(const char* dir) {
  size_t n = 0;
  for (auto it = std::filesystem::directory_iterator(dir);
       it != std::filesystem::directory_iterator(); ++it) {
    ++n;
  }
  return n;
}
inline size_t Threads() { return CountEntries("/proc/self/task"); }
inline size_t Fds() { return CountEntries("/proc/self/fd"); }

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
inline UniqueFd ConnectFrom(const char* source, int port) {
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
inline bool ReadUntilEof(int fd, absl::Duration timeout, std::string* got = nullptr) {
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

inline bool SendAll(int fd, const std::string& bytes) {
  return send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
}

// A well-behaved client's exec: its output, or "" if it did not get through.
inline std::string EchoThroughExec(Server& server, const std::string& word) {
  SpdyClient c;
  absl::StatusOr<int> code =
      c.Connect(server.GetExecURL({"good", {"/bin/echo", word}, false, false, true, false}),
                "v4.channel.k8s.io");
  if (!code.ok() || *code != 101) return "";
  Streams s = OpenStreams(c, false, true, false, false);
  if (!c.ReadUntilFin({s.error, s.out})) return "";
  return c.stream(s.out).bytes;
}

}  // namespace berth::streaming::server_test

#endif  // BERTH_SERVER_STREAMING_SERVER_TEST_UTIL_H_
