// ListContainerStats cost over many real (v1) cgroups: creates N scratch cgroups (optionally each
// with a sleeping process), times the collector's list over them, prints a table and JSON, and
// removes everything at exit (also on SIGINT/SIGTERM, which end the runs early).
//
//   bazel run //bench:stats_bench -- [--containers=1000] [--runs=20] [--with-processes]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"
#include "proto/runtime/v1/api.pb.h"
#include "runtime/cgroups/mode.h"
#include "runtime/cgroups/stats.h"
#include "runtime/stats/collector.h"
#include "runtime/stats/record_source.h"
#include "runtime/stats/scratch_cgroup.h"

namespace {

namespace cri = runtime::v1;
using berth::engine::stats::StatsCollector;
using berth::engine::stats::testing::ScratchCgroup;

std::atomic<bool> g_stop{false};

struct Figures {
  std::string name;
  double min_ms = 0, median_ms = 0, max_ms = 0;
  size_t items = 0;
};

Figures Time(const std::string& name, int runs, const std::function<size_t()>& body) {
  std::vector<double> ms;
  size_t items = 0;
  for (int i = 0; i < runs && !g_stop.load(); ++i) {
    auto start = std::chrono::steady_clock::now();
    items = body();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  Figures f{name};
  if (ms.empty()) return f;
  std::sort(ms.begin(), ms.end());
  f.min_ms = ms.front();
  f.median_ms = ms[ms.size() / 2];
  f.max_ms = ms.back();
  f.items = items;
  return f;
}

// Sleeping children, SIGKILLed (by the cgroup cleanup) and reaped here.
struct Sleepers {
  std::vector<pid_t> pids;
  ~Sleepers() {
    for (pid_t p : pids) kill(p, SIGKILL);
    for (pid_t p : pids) waitpid(p, nullptr, 0);
  }
};

int Run(int containers, int runs, bool with_processes) {
  if (geteuid() != 0) {
    fprintf(stderr, "stats_bench: needs root to create cgroups\n");
    return 2;
  }
  absl::StatusOr<berth::cgroups::CgroupMode> mode = berth::cgroups::DetectCgroupMode();
  if (!mode.ok() || *mode == berth::cgroups::CgroupMode::kUnified) {
    fprintf(stderr, "stats_bench: needs cgroup v1 hierarchies (found %s)\n",
            mode.ok() ? berth::cgroups::CgroupModeName(*mode) : mode.status().ToString().c_str());
    return 2;
  }

  // Declared before the cgroups, so destroyed after them: the cgroup cleanup kills the members,
  // then these are reaped.
  Sleepers sleepers;
  const std::string base = "/berth-stats-bench-" + berth::engine::stats::testing::RandomSuffix();
  ScratchCgroup parent(base);
  if (!parent.error().empty()) {
    fprintf(stderr, "stats_bench: %s\n", parent.error().c_str());
    return 1;
  }
  std::vector<std::unique_ptr<ScratchCgroup>> cgroups;
  std::vector<berth::v1::Container> records;
  auto setup_start = std::chrono::steady_clock::now();
  for (int i = 0; i < containers && !g_stop.load(); ++i) {
    std::string id = absl::StrFormat("%064x", i + 1);
    auto cg = std::make_unique<ScratchCgroup>(absl::StrCat(base, "/berth-", id.substr(48)));
    if (!cg->error().empty()) {
      fprintf(stderr, "stats_bench: %s\n", cg->error().c_str());
      return 1;
    }
    if (with_processes) {
      pid_t pid = fork();
      if (pid == 0) {
        for (;;) pause();
      }
      if (pid > 0) {
        sleepers.pids.push_back(pid);
        cg->Add(pid);
      }
    }
    berth::v1::Container& c = records.emplace_back();
    c.mutable_config()->set_id(id);
    c.mutable_config()->set_sandbox_id(absl::StrFormat("%064x", i / 10 + 1));
    c.mutable_config()->mutable_cri()->mutable_metadata()->set_name(absl::StrCat("ctr", i));
    // The labels and annotations kubelet puts on every container.
    auto& labels = *c.mutable_config()->mutable_cri()->mutable_labels();
    labels["io.kubernetes.container.name"] = absl::StrCat("ctr", i);
    labels["io.kubernetes.pod.name"] = absl::StrCat("pod", i / 10);
    labels["io.kubernetes.pod.namespace"] = "bench";
    labels["io.kubernetes.pod.uid"] = absl::StrCat("uid-pod", i / 10);
    auto& ann = *c.mutable_config()->mutable_cri()->mutable_annotations();
    ann["io.kubernetes.container.hash"] = "5e6f7a8b";
    ann["io.kubernetes.container.restartCount"] = "0";
    ann["io.kubernetes.container.terminationMessagePath"] = "/dev/termination-log";
    ann["io.kubernetes.container.terminationMessagePolicy"] = "File";
    ann["io.kubernetes.pod.terminationGracePeriod"] = "30";
    c.mutable_config()->set_oci_spec(nlohmann::json{
        {"linux", {{"cgroupsPath", cg->rel()}}},
        {"process",
         {{"args", {"sleep"}}}}}.dump());
    c.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_RUNNING);
    cgroups.push_back(std::move(cg));
  }
  double setup_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - setup_start).count();

  std::vector<std::string> rels;
  for (const auto& cg : cgroups) rels.push_back(cg->rel());
  berth::engine::stats::StatsOptions options;
  options.refresh_interval = absl::ZeroDuration();
  options.sample_interval = absl::ZeroDuration();  // every call reads
  options.mode = *mode;
  StatsCollector collector(berth::engine::stats::FixedRecords(records, {}), options);
  // berthd's way: a background sample the lists answer from (never ticking by itself here).
  options.sample_interval = absl::Hours(1);
  StatsCollector sampled(berth::engine::stats::FixedRecords(std::move(records), {}), options);
  cri::ContainerStatsFilter all;

  std::vector<Figures> rows;
  // Baseline: the cgroup reads alone, no protobuf, no caches.
  rows.push_back(Time("cgroups::ReadStats only (baseline)", runs, [&] {
    size_t n = 0;
    for (const std::string& rel : rels) n += berth::cgroups::ReadStats(rel, *mode).ok();
    return n;
  }));
  rows.push_back(Time("ListContainerStats, first call (parses specs)", 1,
                      [&] { return collector.ListContainerStats(all).size(); }));
  rows.push_back(
      Time("ListContainerStats", runs, [&] { return collector.ListContainerStats(all).size(); }));
  rows.push_back(Time("ListContainerStats + response serialised", runs, [&] {
    cri::ListContainerStatsResponse resp;
    for (cri::ContainerStats& s : collector.ListContainerStats(all))
      *resp.add_stats() = std::move(s);
    std::string wire;
    resp.SerializeToString(&wire);
    return static_cast<size_t>(resp.stats_size());
  }));
  sampled.ListContainerStats(all);  // parses the specs
  rows.push_back(Time("sampler: one reading of every cgroup (background)", runs, [&] {
    sampled.SampleNow();
    return static_cast<size_t>(containers);
  }));
  rows.push_back(Time("ListContainerStats from the sample", runs,
                      [&] { return sampled.ListContainerStats(all).size(); }));
  auto serialised = [&](StatsCollector::Attributes attributes) {
    cri::ListContainerStatsResponse resp;
    for (cri::ContainerStats& s : sampled.ListContainerStats(all, attributes))
      *resp.add_stats() = std::move(s);
    std::string wire;
    resp.SerializeToString(&wire);
    return static_cast<size_t>(resp.stats_size());
  };
  rows.push_back(Time("ListContainerStats from the sample + serialised", runs,
                      [&] { return serialised(StatsCollector::Attributes::kEncoded); }));
  rows.push_back(Time("  the same, attributes as messages", runs,
                      [&] { return serialised(StatsCollector::Attributes::kMessage); }));
  cri::ContainerStatsFilter one_pod;
  one_pod.set_pod_sandbox_id(absl::StrFormat("%064x", 1));
  rows.push_back(Time("ListContainerStats, one pod's 10 (filter)", runs,
                      [&] { return collector.ListContainerStats(one_pod).size(); }));

  printf(
      "stats_bench: %d cgroups (%s), %d runs, cgroup mode %s, swap accounting %s, setup %.1f s\n",
      containers, with_processes ? "one sleeping process each" : "empty", runs,
      berth::cgroups::CgroupModeName(*mode), collector.swap_accounting() ? "on" : "off", setup_s);
  printf("%-48s %8s %10s %10s %10s\n", "what", "items", "min ms", "median ms", "max ms");
  for (const Figures& f : rows) {
    printf("%-48s %8zu %10.2f %10.2f %10.2f\n", f.name.c_str(), f.items, f.min_ms, f.median_ms,
           f.max_ms);
  }
  nlohmann::json j = {{"bench", "stats"},
                      {"containers", containers},
                      {"runs", runs},
                      {"with_processes", with_processes},
                      {"cgroup_mode", berth::cgroups::CgroupModeName(*mode)},
                      {"swap_accounting", collector.swap_accounting()},
                      {"results", nlohmann::json::array()}};
  for (const Figures& f : rows) {
    j["results"].push_back({{"name", f.name},
                            {"items", f.items},
                            {"min_ms", f.min_ms},
                            {"median_ms", f.median_ms},
                            {"max_ms", f.max_ms}});
  }
  printf("%s\n", j.dump().c_str());
  if (g_stop.load()) fprintf(stderr, "stats_bench: interrupted; cleaning up\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int containers = 1000, runs = 20;
  bool with_processes = false;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--containers=") && absl::SimpleAtoi(a, &containers) &&
        containers > 0)
      continue;
    a = argv[i];
    if (absl::ConsumePrefix(&a, "--runs=") && absl::SimpleAtoi(a, &runs) && runs > 0) continue;
    if (a == "--with-processes") {
      with_processes = true;
      continue;
    }
    fprintf(stderr, "usage: %s [--containers=N] [--runs=N] [--with-processes]\n", argv[0]);
    return 2;
  }
  // Interrupts end the runs; the scratch cgroups are removed on the way out.
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop.store(true); };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  return Run(containers, runs, with_processes);
}
