// The streaming server end to end over SPDY with a backend of real processes: exec (output,
// stdin, exit codes, tty resize), attach, port-forward, token rules, protocol negotiation and
// concurrent sessions.
#include "server/streaming/server.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/streaming/server_test_util.h"

namespace berth::streaming {
namespace {

using namespace server_test;  // NOLINT: the shared fixture and clients of these tests

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
  ASSERT_EQ(*c.Connect(Exec({"/bin/sh", "-c", "stty size; while read l; do stty size; done"}, true,
                            true, false, /*tty=*/true),
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
  ASSERT_EQ(
      *c.Connect(server_->GetAttachURL({"c1", false, true, true, false}), "v4.channel.k8s.io"),
      101);
  Streams s = OpenStreams(c, true, true, false, false);
  ASSERT_TRUE(c.Send(s.in, "attached\n", true));
  ASSERT_TRUE(c.ReadUntilFin({s.error, s.out}));
  EXPECT_EQ(c.stream(s.out).bytes, "attached\n");
}

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
  EXPECT_EQ(
      *unknown.Connect(absl::StrCat(server_->base_url(), "/exec/nosuchtoken"), "v4.channel.k8s.io"),
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
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start(ServerOptions{.stream_creation_timeout = absl::Milliseconds(200)}, &backend);
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

}  // namespace
}  // namespace berth::streaming
