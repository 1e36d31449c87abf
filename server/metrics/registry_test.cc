// Exposition format: counters, histograms with cumulative buckets, gauges, label escaping; and a
// real scrape over loopback.
#include "server/metrics/registry.h"

#include "absl/strings/match.h"
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
  EXPECT_TRUE(absl::StrContains(out, "# TYPE c_total counter\nc_total{method=\"Version\"} 3\n")) << out;
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

TEST(HttpServerTest, ServesMetricsOnLoopback) {
  Registry r;
  r.DeclareCounter("scrapes_total", "Test.", {});
  r.Add("scrapes_total", {});
  auto server = HttpServer::Start("127.0.0.1:0", &r);
  ASSERT_TRUE(server.ok()) << server.status();
  auto res = RunProcess({"wget", "-qO-", absl::StrCat("http://127.0.0.1:", (*server)->port(), "/metrics")});
  ASSERT_TRUE(res.ok());
  EXPECT_TRUE(absl::StrContains(res->out, "scrapes_total 1")) << res->out << res->err;
  auto missing = RunProcess({"wget", "-qO-", absl::StrCat("http://127.0.0.1:", (*server)->port(), "/other")});
  ASSERT_TRUE(missing.ok());
  EXPECT_NE(missing->exit_code, 0);
  EXPECT_FALSE(HttpServer::Start("not an address", &r).ok());
}

}  // namespace
}  // namespace berth::metrics
