// Exposition format: counters, histograms with cumulative buckets, gauges, label escaping; and a
// real scrape over loopback.
#include "server/metrics/registry.h"

#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "boost/asio.hpp"
#include "boost/beast.hpp"
#include "gtest/gtest.h"
#include "server/metrics/http_server.h"
#include "util/subprocess.h"

namespace berth::metrics {
namespace {

TEST(RegistryTest, RendersEveryKind) {
  Registry r;
  r.DeclareCounter("c_total", "A counter.", {"method"});
  r.DeclareHistogram("h_seconds", "A histogram.", {"method"}, {0.1, 1});
  r.DeclareGauge("g", "A gauge.", {"state"}, [] {
    return std::vector<std::pair<LabelValues, double>>{{{"running"}, 3}, {{"exited"}, 1}};
  });
  r.Add("c_total", {"Version"});
  r.Add("c_total", {"Version"}, 2);
  r.Observe("h_seconds", {"Run"}, 0.05);
  r.Observe("h_seconds", {"Run"}, 0.5);
  r.Observe("h_seconds", {"Run"}, 5);
  std::string out = r.Render();
  EXPECT_TRUE(absl::StrContains(out, "# TYPE c_total counter\nc_total{method=\"Version\"} 3\n"))
      << out;
  EXPECT_TRUE(absl::StrContains(out, "h_seconds_bucket{method=\"Run\",le=\"0.1\"} 1\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, "h_seconds_bucket{method=\"Run\",le=\"1\"} 2\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, "h_seconds_bucket{method=\"Run\",le=\"+Inf\"} 3\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, "h_seconds_sum{method=\"Run\"} 5.55\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, "h_seconds_count{method=\"Run\"} 3\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, "g{state=\"running\"} 3\n")) << out;
  // Undeclared families are ignored rather than invented.
  r.Add("nope", {});
  EXPECT_FALSE(absl::StrContains(r.Render(), "nope"));
}

TEST(RegistryTest, LabelValuesAreEscaped) {
  EXPECT_EQ(EscapeLabel("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

TEST(RegistryTest, HelpTextIsEscaped) {
  Registry r;
  r.DeclareCounter("c_total", "Line one\nback\\slash \"quoted\".", {});
  EXPECT_TRUE(
      absl::StrContains(r.Render(), "# HELP c_total Line one\\nback\\\\slash \"quoted\".\n"))
      << r.Render();
}

TEST(RegistryTest, ConcurrentUpdatesAreAllCounted) {
  Registry r;
  r.DeclareCounter("c_total", "A counter.", {"worker"});
  r.DeclareHistogram("h", "A histogram.", {}, {1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&r] {
      for (int i = 0; i < 1000; ++i) {
        r.Add("c_total", {"all"});
        r.Observe("h", {}, 0.5);
        if (i % 100 == 0) r.Render();  // scrapes race with updates
      }
    });
  }
  for (auto& t : threads) t.join();
  std::string out = r.Render();
  EXPECT_TRUE(absl::StrContains(out, "c_total{worker=\"all\"} 4000\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, "h_count 4000\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, "h_bucket{le=\"1\"} 4000\n")) << out;
}

namespace asio = boost::asio;
namespace http = boost::beast::http;

// A plain HTTP/1.1 client on one connection, so keep-alive and odd methods can be exercised.
class Client {
 public:
  explicit Client(int port) : sock_(io_) {
    sock_.connect({asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)});
  }
  http::response<http::string_body> Send(http::verb verb, const std::string& target) {
    http::request<http::empty_body> req(verb, target, 11);
    req.set(http::field::host, "127.0.0.1");
    http::write(sock_, req);
    http::response_parser<http::string_body> parser;
    if (verb == http::verb::head) parser.skip(true);  // no body follows a HEAD response
    http::read(sock_, buf_, parser);
    return parser.release();
  }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket sock_;
  boost::beast::flat_buffer buf_;
};

TEST(HttpServerTest, KeepAliveHeadAndWrongMethod) {
  Registry r;
  r.DeclareCounter("scrapes_total", "Test.", {});
  r.Add("scrapes_total", {});
  auto server = HttpServer::Start("127.0.0.1:0", &r);
  ASSERT_TRUE(server.ok()) << server.status();
  Client c((*server)->port());
  auto first = c.Send(http::verb::get, "/metrics");
  EXPECT_EQ(first.result(), http::status::ok);
  EXPECT_TRUE(absl::StrContains(first.body(), "scrapes_total 1\n")) << first.body();
  EXPECT_TRUE(
      absl::StartsWith(std::string(first[http::field::content_type]), "text/plain; version=0.0.4"));
  r.Add("scrapes_total", {});
  // The same connection serves the next scrape, with fresh values.
  auto second = c.Send(http::verb::get, "/metrics?from=test");
  EXPECT_TRUE(absl::StrContains(second.body(), "scrapes_total 2\n")) << second.body();
  auto head = c.Send(http::verb::head, "/metrics");
  EXPECT_EQ(head.result(), http::status::ok);
  EXPECT_TRUE(head.body().empty());
  EXPECT_EQ(c.Send(http::verb::post, "/metrics").result(), http::status::method_not_allowed);
  EXPECT_EQ(c.Send(http::verb::get, "/").result(), http::status::not_found);
}

TEST(HttpServerTest, IdleConnectionDoesNotBlockScrapesOrShutdown) {
  Registry r;
  r.DeclareCounter("scrapes_total", "Test.", {});
  r.Add("scrapes_total", {});
  auto server = HttpServer::Start("127.0.0.1:0", &r);
  ASSERT_TRUE(server.ok()) << server.status();
  // Connects and never sends a byte.
  asio::io_context io;
  asio::ip::tcp::socket idle(io);
  idle.connect({asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>((*server)->port())});
  Client c((*server)->port());
  EXPECT_TRUE(absl::StrContains(c.Send(http::verb::get, "/metrics").body(), "scrapes_total 1"));
  // Destroying the server with the idle connection still open returns (a hang fails the test
  // through Bazel's timeout).
  server->reset();
  SUCCEED();
}

TEST(HttpServerTest, AddressesThatCannotBeServedAreRefused) {
  Registry r;
  EXPECT_TRUE(absl::IsInvalidArgument(HttpServer::Start("127.0.0.1", &r).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(HttpServer::Start("127.0.0.1:99999", &r).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(HttpServer::Start("localhost-ish:1", &r).status()));
  auto taken = HttpServer::Start("127.0.0.1:0", &r);
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_TRUE(absl::IsUnavailable(
      HttpServer::Start(absl::StrCat("127.0.0.1:", (*taken)->port()), &r).status()));
  auto v6 = HttpServer::Start("[::1]:0", &r);
  // IPv6 loopback may be disabled on a host; when it exists, the bracketed form works.
  if (v6.ok()) {
    EXPECT_GT((*v6)->port(), 0);
  }
}

TEST(HttpServerTest, ServesMetricsOnLoopback) {
  Registry r;
  r.DeclareCounter("scrapes_total", "Test.", {});
  r.Add("scrapes_total", {});
  auto server = HttpServer::Start("127.0.0.1:0", &r);
  ASSERT_TRUE(server.ok()) << server.status();
  auto res = RunProcess(
      {"wget", "-qO-", absl::StrCat("http://127.0.0.1:", (*server)->port(), "/metrics")});
  ASSERT_TRUE(res.ok());
  EXPECT_TRUE(absl::StrContains(res->out, "scrapes_total 1")) << res->out << res->err;
  auto missing =
      RunProcess({"wget", "-qO-", absl::StrCat("http://127.0.0.1:", (*server)->port(), "/other")});
  ASSERT_TRUE(missing.ok());
  EXPECT_NE(missing->exit_code, 0);
  EXPECT_FALSE(HttpServer::Start("not an address", &r).ok());
}

}  // namespace
}  // namespace berth::metrics
