// Exec, attach and port-forward through CRI and berth's streaming server, spoken to by a small
// SPDY/3.1 client as kubelet/crictl would: output, stdin, exit codes, tty resize, port-forward,
// token rules and concurrent sessions.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "boost/asio.hpp"
#include "boost/beast.hpp"
#include "boost/beast/websocket.hpp"
#include "nlohmann/json.hpp"
#include "server/streaming/spdy.h"
#include "test/util/cri_fixture.h"
#include "util/fd.h"

namespace berth::test {
namespace {

namespace spdy = streaming::spdy;

// A minimal SPDY/3.1 client in the manner of k8s.io/apimachinery's spdy round tripper.
class SpdyClient {
 public:
  // Returns the HTTP status line's code; 101 means the connection is now SPDY.
  int Connect(const std::string& url, const std::string& protocol) {
    // url: http://127.0.0.1:PORT/kind/token
    std::string rest = url.substr(strlen("http://"));
    std::string hostport = rest.substr(0, rest.find('/'));
    std::string path = rest.substr(rest.find('/'));
    int port = 0;
    EXPECT_TRUE(absl::SimpleAtoi(hostport.substr(hostport.find(':') + 1), &port));
    fd_.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return -1;
    std::string req = absl::StrCat("POST ", path, " HTTP/1.1\r\nHost: ", hostport,
                                   "\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n",
                                   "X-Stream-Protocol-Version: ", protocol, "\r\n\r\n");
    Write(req);
    while (buf_.find("\r\n\r\n") == std::string::npos) {
      if (!Fill(5000)) return -1;
    }
    std::string head = buf_.substr(0, buf_.find("\r\n\r\n"));
    buf_.erase(0, head.size() + 4);
    int code = 0;
    std::vector<std::string> words = absl::StrSplit(head, ' ');
    if (words.size() > 1) (void)absl::SimpleAtoi(words[1], &code);
    if (code == 101) {
      EXPECT_TRUE(absl::StrContains(head, protocol)) << head;
    }
    return code;
  }

  uint32_t Open(const spdy::Headers& headers) {
    uint32_t id = next_id_;
    next_id_ += 2;
    Write(spdy::SynStreamFrame(id, 0, 0, *c_.Compress(headers)));
    return id;
  }
  void Send(uint32_t id, const std::string& data, bool fin = false) {
    Write(spdy::DataFrame(id, fin ? spdy::kFlagFin : 0, data.data(), data.size()));
  }

  // Reads until each of `streams` has ended; the bytes each received.
  std::map<uint32_t, std::string> ReadUntilFin(const std::set<uint32_t>& streams,
                                               int timeout_ms = 20000) {
    std::set<uint32_t> open = streams;
    while (!open.empty()) {
      spdy::Frame f;
      absl::StatusOr<size_t> used = spdy::ParseFrame(buf_.data(), buf_.size(), &f);
      EXPECT_TRUE(used.ok());
      if (!used.ok()) break;
      if (*used == 0) {
        if (!Fill(timeout_ms)) break;
        continue;
      }
      buf_.erase(0, *used);
      if (f.control) {
        if (f.type == spdy::kSynReply) {
          replies_.insert(*spdy::ParseStreamIdPrefix(f));
          d_.Decompress(f.payload.substr(4)).IgnoreError();
        }
        continue;
      }
      data_[f.stream_id] += f.payload;
      if (f.flags & spdy::kFlagFin) open.erase(f.stream_id);
    }
    return data_;
  }
  // Reads whatever comes within `ms` (for streams that do not end).
  std::string ReadFor(uint32_t id, int ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < deadline) {
      spdy::Frame f;
      absl::StatusOr<size_t> used = spdy::ParseFrame(buf_.data(), buf_.size(), &f);
      if (!used.ok()) break;
      if (*used == 0) {
        if (!Fill(50)) continue;
        continue;
      }
      buf_.erase(0, *used);
      if (!f.control) data_[f.stream_id] += f.payload;
      if (f.control && f.type == spdy::kSynReply) d_.Decompress(f.payload.substr(4)).IgnoreError();
    }
    return data_[id];
  }
  bool replied(uint32_t id) const { return replies_.count(id) > 0; }
  void Close() { fd_.reset(); }

 private:
  void Write(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t w = write(fd_.get(), s.data() + off, s.size() - off);
      if (w <= 0) return;
      off += w;
    }
  }
  bool Fill(int timeout_ms) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char tmp[16384];
    ssize_t n = read(fd_.get(), tmp, sizeof(tmp));
    if (n <= 0) return false;
    buf_.append(tmp, n);
    return true;
  }

  UniqueFd fd_;
  std::string buf_;
  spdy::HeaderCompressor c_;
  spdy::HeaderDecompressor d_;
  uint32_t next_id_ = 1;
  std::map<uint32_t, std::string> data_;
  std::set<uint32_t> replies_;
};

class StreamingTest : public CriFixture {
 protected:
  void SetUp() override {
    CriFixture::SetUp();
    pod_ = Pod("stream");
    pod_id_ = RunPod(pod_);
    ctr_ = CreateContainer(
        pod_id_, pod_, "web",
        {"/bin/sh", "-c", "echo served > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"});
    ASSERT_TRUE(Start(ctr_).ok());
  }

  std::string ExecUrl(std::vector<std::string> cmd, bool in, bool out, bool err, bool tty) {
    cri::ExecRequest req;
    req.set_container_id(ctr_);
    for (auto& c : cmd) req.add_cmd(c);
    req.set_stdin(in);
    req.set_stdout(out);
    req.set_stderr(err);
    req.set_tty(tty);
    cri::ExecResponse resp;
    grpc::Status st = berthd_->runtime().Exec(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.url();
  }

  // httpd starts with the container: wait until it listens.
  void WaitForHttpd() {
    for (int i = 0; i < 100; ++i) {
      cri::ExecSyncRequest probe;
      probe.set_container_id(ctr_);
      for (const char* a : {"wget", "-qO-", "http://127.0.0.1:8080/index.html"}) probe.add_cmd(a);
      cri::ExecSyncResponse presp;
      if (berthd_->runtime().ExecSync(Ctx().get(), probe, &presp).ok() && presp.exit_code() == 0)
        return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  cri::PodSandboxConfig pod_;
  std::string pod_id_, ctr_;
};

TEST_F(StreamingTest, ExecStreamsOutputAndReportsTheExitCode) {
  SpdyClient c;
  ASSERT_EQ(c.Connect(ExecUrl({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, false, true,
                              true, false),
                      "v4.channel.k8s.io"),
            101);
  uint32_t error = c.Open({{"streamtype", "error"}});
  uint32_t out = c.Open({{"streamtype", "stdout"}});
  uint32_t err = c.Open({{"streamtype", "stderr"}});
  auto data = c.ReadUntilFin({error, out, err});
  EXPECT_TRUE(c.replied(out));
  EXPECT_EQ(data[out], "out\n");
  EXPECT_EQ(data[err], "err\n");
  nlohmann::json status = nlohmann::json::parse(data[error], nullptr, false);
  ASSERT_FALSE(status.is_discarded()) << data[error];
  EXPECT_EQ(status["status"], "Failure");
  EXPECT_EQ(status["reason"], "NonZeroExitCode");
  EXPECT_EQ(status["details"]["causes"][0]["message"], "3");
}

TEST_F(StreamingTest, ExecPipesStdinAndSucceeds) {
  SpdyClient c;
  ASSERT_EQ(c.Connect(ExecUrl({"/bin/cat"}, true, true, false, false), "v4.channel.k8s.io"), 101);
  uint32_t error = c.Open({{"streamtype", "error"}});
  uint32_t in = c.Open({{"streamtype", "stdin"}});
  uint32_t out = c.Open({{"streamtype", "stdout"}});
  c.Send(in, "piped through\n", /*fin=*/true);
  auto data = c.ReadUntilFin({error, out});
  EXPECT_EQ(data[out], "piped through\n");
  EXPECT_EQ(nlohmann::json::parse(data[error])["status"], "Success");
}

TEST_F(StreamingTest, TtyExecSeesTheResizedTerminal) {
  SpdyClient c;
  ASSERT_EQ(c.Connect(ExecUrl({"/bin/sh"}, true, true, false, true), "v4.channel.k8s.io"), 101);
  uint32_t error = c.Open({{"streamtype", "error"}});
  uint32_t in = c.Open({{"streamtype", "stdin"}});
  uint32_t out = c.Open({{"streamtype", "stdout"}});
  uint32_t resize = c.Open({{"streamtype", "resize"}});
  c.Send(resize, R"({"Width":123,"Height":45})");
  c.ReadFor(out, 500);  // the resize lands before the command runs
  c.Send(in, "stty size; exit 4\n");
  auto data = c.ReadUntilFin({error, out});
  EXPECT_TRUE(absl::StrContains(data[out], "45 123")) << data[out];
  EXPECT_EQ(nlohmann::json::parse(data[error])["details"]["causes"][0]["message"], "4");
}

TEST_F(StreamingTest, PortForwardReachesAPortInsideThePod) {
  WaitForHttpd();
  cri::PortForwardRequest req;
  req.set_pod_sandbox_id(pod_id_);
  req.add_port(8080);
  cri::PortForwardResponse resp;
  ASSERT_TRUE(berthd_->runtime().PortForward(Ctx().get(), req, &resp).ok());
  SpdyClient c;
  ASSERT_EQ(c.Connect(resp.url(), "portforward.k8s.io"), 101);
  uint32_t error = c.Open({{"streamtype", "error"}, {"port", "8080"}, {"requestid", "0"}});
  uint32_t data_id = c.Open({{"streamtype", "data"}, {"port", "8080"}, {"requestid", "0"}});
  c.Send(data_id, "GET /index.html HTTP/1.0\r\n\r\n", /*fin=*/true);
  auto data = c.ReadUntilFin({data_id, error});
  EXPECT_TRUE(absl::StrContains(data[data_id], "served")) << data[data_id];
  EXPECT_EQ(data[error], "");
}

TEST_F(StreamingTest, TokensAreSingleUseAndUnknownOnesAreRefused) {
  std::string url = ExecUrl({"/bin/true"}, false, true, false, false);
  SpdyClient first;
  ASSERT_EQ(first.Connect(url, "v4.channel.k8s.io"), 101);
  SpdyClient again;
  EXPECT_EQ(again.Connect(url, "v4.channel.k8s.io"), 404);
  SpdyClient bogus;
  EXPECT_EQ(bogus.Connect(url.substr(0, url.rfind('/')) + "/bogus", "v4.channel.k8s.io"), 404);
  SpdyClient old_protocol_only;
  EXPECT_EQ(old_protocol_only.Connect(ExecUrl({"/bin/true"}, false, true, false, false),
                                      "v9.channel.k8s.io"),
            403);
}

TEST_F(StreamingTest, AttachShowsOutputAndDetachingLeavesTheContainerRunning) {
  std::string talker = CreateContainer(
      pod_id_, pod_, "talker", {"/bin/sh", "-c", "while true; do echo tick; sleep 0.2; done"});
  ASSERT_TRUE(Start(talker).ok());
  cri::AttachRequest req;
  req.set_container_id(talker);
  req.set_stdout(true);
  req.set_stderr(true);
  cri::AttachResponse resp;
  ASSERT_TRUE(berthd_->runtime().Attach(Ctx().get(), req, &resp).ok());
  {
    SpdyClient c;
    ASSERT_EQ(c.Connect(resp.url(), "v4.channel.k8s.io"), 101);
    c.Open({{"streamtype", "error"}});
    uint32_t out = c.Open({{"streamtype", "stdout"}});
    c.Open({{"streamtype", "stderr"}});
    EXPECT_TRUE(absl::StrContains(c.ReadFor(out, 1500), "tick"));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Status(talker).state(), cri::CONTAINER_RUNNING);
}

TEST_F(StreamingTest, TwentyConcurrentExecSessions) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  std::vector<std::string> urls;
  for (int i = 0; i < 20; ++i) {
    urls.push_back(
        ExecUrl({"/bin/sh", "-c", absl::StrCat("echo session ", i)}, false, true, false, false));
  }
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&, i] {
      SpdyClient c;
      if (c.Connect(urls[i], "v4.channel.k8s.io") != 101) return;
      uint32_t error = c.Open({{"streamtype", "error"}});
      uint32_t out = c.Open({{"streamtype", "stdout"}});
      auto data = c.ReadUntilFin({error, out});
      if (data[out] == absl::StrCat("session ", i, "\n")) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 20);
}

// A WebSocket client of the channel protocols: each message is one channel byte plus data.
class WsClient {
 public:
  bool Connect(const std::string& url, const std::string& protocol) {
    std::string rest = url.substr(strlen("http://"));
    std::string hostport = rest.substr(0, rest.find('/'));
    std::string path = rest.substr(rest.find('/'));
    std::string host = hostport.substr(0, hostport.find(':'));
    std::string port = hostport.substr(hostport.find(':') + 1);
    boost::asio::ip::tcp::resolver resolver(io_);
    boost::system::error_code ec;
    auto results = resolver.resolve(host, port, ec);
    if (ec) return false;
    boost::asio::connect(ws_.next_layer(), results, ec);
    if (ec) return false;
    ws_.set_option(boost::beast::websocket::stream_base::decorator(
        [protocol](boost::beast::websocket::request_type& req) {
          req.set(boost::beast::http::field::sec_websocket_protocol, protocol);
        }));
    ws_.handshake(hostport, path, ec);
    ws_.binary(true);
    return !ec;
  }
  void Send(uint8_t channel, const std::string& data) {
    std::string msg(1, static_cast<char>(channel));
    msg += data;
    ws_.write(boost::asio::buffer(msg));
  }
  // Reads messages until the server closes; returns the bytes per channel.
  std::map<int, std::string> ReadAll() {
    std::map<int, std::string> out;
    for (;;) {
      boost::beast::flat_buffer buf;
      boost::system::error_code ec;
      ws_.read(buf, ec);
      if (ec) break;
      std::string m = boost::beast::buffers_to_string(buf.data());
      if (!m.empty()) out[static_cast<uint8_t>(m[0])] += m.substr(1);
    }
    return out;
  }
  // Reads until channel `ch` has at least `n` bytes.
  std::string ReadChannel(int ch, size_t n) {
    std::string got;
    while (got.size() < n) {
      boost::beast::flat_buffer buf;
      boost::system::error_code ec;
      ws_.read(buf, ec);
      if (ec) break;
      std::string m = boost::beast::buffers_to_string(buf.data());
      if (!m.empty() && static_cast<uint8_t>(m[0]) == ch) got += m.substr(1);
    }
    return got;
  }

 private:
  boost::asio::io_context io_;
  boost::beast::websocket::stream<boost::asio::ip::tcp::socket> ws_{io_};
};

TEST_F(StreamingTest, ExecOverWebSocketWithStdinAndExitCode) {
  WsClient c;
  ASSERT_TRUE(
      c.Connect(ExecUrl({"/bin/sh", "-c", "cat; echo err >&2; exit 2"}, true, true, true, false),
                "v5.channel.k8s.io"));
  c.Send(0, "over websocket\n");
  c.Send(255, std::string(1, '\0'));  // v5: close stdin
  auto data = c.ReadAll();
  EXPECT_EQ(data[1], "over websocket\n");
  EXPECT_EQ(data[2], "err\n");
  nlohmann::json status = nlohmann::json::parse(data[3], nullptr, false);
  ASSERT_FALSE(status.is_discarded()) << data[3];
  EXPECT_EQ(status["details"]["causes"][0]["message"], "2");
}

TEST_F(StreamingTest, PortForwardOverWebSocket) {
  WaitForHttpd();
  cri::PortForwardRequest req;
  req.set_pod_sandbox_id(pod_id_);
  req.add_port(8080);
  cri::PortForwardResponse resp;
  ASSERT_TRUE(berthd_->runtime().PortForward(Ctx().get(), req, &resp).ok());
  WsClient c;
  ASSERT_TRUE(c.Connect(resp.url() + "?port=8080", "v4.channel.k8s.io"));
  // v4 opens each channel with the port, little endian.
  EXPECT_EQ(c.ReadChannel(0, 2), std::string("\x90\x1f", 2));
  c.Send(0, "GET /index.html HTTP/1.0\r\n\r\n");
  std::string body = c.ReadChannel(0, 1);
  for (int i = 0; i < 20 && !absl::StrContains(body, "served"); ++i) body += c.ReadChannel(0, 1);
  EXPECT_TRUE(absl::StrContains(body, "served")) << body;
}

TEST_F(StreamingTest, BadStreamingRequestsAreInvalidArgument) {
  cri::ExecRequest req;
  req.set_container_id(ctr_);
  req.add_cmd("/bin/true");
  req.set_tty(true);
  req.set_stderr(true);
  cri::ExecResponse resp;
  EXPECT_EQ(berthd_->runtime().Exec(Ctx().get(), req, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  req.Clear();
  req.set_container_id(ctr_);
  req.set_stdout(true);
  EXPECT_EQ(berthd_->runtime().Exec(Ctx().get(), req, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  cri::PortForwardRequest pf;
  pf.set_pod_sandbox_id("no-such-pod");
  cri::PortForwardResponse pfr;
  EXPECT_EQ(berthd_->runtime().PortForward(Ctx().get(), pf, &pfr).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace berth::test
