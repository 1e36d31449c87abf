// StatsCollector against real cgroups, a real network namespace and real processes, with the
// records a berthd engine would hold given as fixed records.
#include "runtime/stats/collector.h"

#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "gtest/gtest.h"
#include "test/util/busy_child.h"
#include "nlohmann/json.hpp"
#include "runtime/cgroups/mode.h"
#include "runtime/stats/cadvisor_metrics.h"
#include "runtime/stats/record_source.h"
#include "runtime/stats/scratch_cgroup.h"
#include "runtime/stats/scratch_netns.h"
#include "test/util/temp_dir.h"

namespace berth::engine::stats {
namespace {

namespace cri = runtime::v1;
using testing::ProcessInNetns;
using testing::ScratchCgroup;
using testing::ScratchNetns;

using test::BusyChild;

std::string SpecWithCgroup(const std::string& cgroups_path) {
  return nlohmann::json{{"ociVersion", "1.0.2"}, {"linux", {{"cgroupsPath", cgroups_path}}}}.dump();
}

berth::v1::Container MakeContainer(const std::string& id, const std::string& pod,
                                   const std::string& cgroup, berth::v1::ContainerStatus status,
                                   pid_t pid) {
  berth::v1::Container c;
  c.mutable_config()->set_id(id);
  c.mutable_config()->set_sandbox_id(pod);
  c.mutable_config()->set_oci_spec(SpecWithCgroup(cgroup));
  c.mutable_config()->set_image_name("busybox:1");
  c.mutable_config()->mutable_cri()->mutable_metadata()->set_name("ctr-" + id);
  c.mutable_state()->set_status(status);
  c.mutable_state()->set_pid(pid);
  return c;
}

berth::v1::Sandbox MakeSandbox(const std::string& id, const std::string& cgroup_parent,
                               const std::string& netns_path) {
  berth::v1::Sandbox s;
  s.set_id(id);
  s.set_status(berth::v1::SANDBOX_STATUS_READY);
  s.set_infra_container_id(id);
  s.set_cgroup_parent(cgroup_parent);
  s.set_netns_path(netns_path);
  s.mutable_config()->mutable_metadata()->set_name("pod-" + id);
  s.mutable_config()->mutable_metadata()->set_namespace_("default");
  (*s.mutable_config()->mutable_labels())["app"] = id;
  return s;
}

// Pod "pod1aaaa": cgroup parent <scratch>, netns, infra sleeping in the netns, container
// "c1aaaa" busy with 8 MiB under a 256 MiB limit, label tier=web.
// Pod "pod2bbbb": host network, no cgroup parent; container "c2bbbb" (running, empty cgroup) and
// "c3cccc" (Configured only). Writable layer of c1aaaa has a 64 KiB file.
class StatsCollectorTest : public ::testing::Test {
 protected:
  static constexpr size_t kTouch = 8 << 20;
  static constexpr uint64_t kLimit = uint64_t{256} << 20;
  static constexpr int kDatagrams = 4, kPayload = 300;

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for cgroups and netns";
    absl::StatusOr<cgroups::CgroupMode> mode = cgroups::DetectCgroupMode();
    ASSERT_TRUE(mode.ok()) << mode.status();
    if (*mode == cgroups::CgroupMode::kUnified) GTEST_SKIP() << "this test drives v1 hierarchies";

    const std::string base = "/berth-stats-test-" + testing::RandomSuffix();
    pod_cg_ = std::make_unique<ScratchCgroup>(base);
    ASSERT_EQ(pod_cg_->error(), "");
    infra_cg_ = std::make_unique<ScratchCgroup>(base + "/berth-pod1aaaa");
    ctr_cg_ = std::make_unique<ScratchCgroup>(base + "/berth-c1aaaa");
    other_cg_ = std::make_unique<ScratchCgroup>(base + "-c2bbbb");
    other_infra_cg_ = std::make_unique<ScratchCgroup>(base + "-pod2bbbb");
    for (auto* cg : {infra_cg_.get(), ctr_cg_.get(), other_cg_.get(), other_infra_cg_.get()}) {
      ASSERT_EQ(cg->error(), "");
    }
    ASSERT_TRUE(ctr_cg_->Write("memory", "memory.limit_in_bytes", std::to_string(kLimit)));

    netns_ = std::make_unique<ScratchNetns>();
    ASSERT_EQ(netns_->error(), "");
    infra_ = std::make_unique<ProcessInNetns>(netns_->path(), kDatagrams, kPayload);
    ASSERT_GT(infra_->pid(), 0);
    ASSERT_TRUE(infra_cg_->Add(infra_->pid()));
    busy_ = std::make_unique<BusyChild>(kTouch);
    ASSERT_GT(busy_->pid(), 0);
    ASSERT_TRUE(ctr_cg_->Add(busy_->pid()));
    busy_->Go();

    std::ofstream(layers_.path() + "/c1aaaa") << std::string(64 << 10, 'x');

    auto running = berth::v1::CONTAINER_STATUS_RUNNING;
    std::vector<berth::v1::Container>& containers = containers_;
    containers.push_back(
        MakeContainer("pod1aaaa", "pod1aaaa", infra_cg_->rel(), running, infra_->pid()));
    containers.back().mutable_config()->set_infra(true);
    containers.push_back(
        MakeContainer("c1aaaa", "pod1aaaa", ctr_cg_->rel(), running, busy_->pid()));
    (*containers.back().mutable_config()->mutable_cri()->mutable_labels())["tier"] = "web";
    containers.push_back(MakeContainer("pod2bbbb", "pod2bbbb", other_infra_cg_->rel(), running, 0));
    containers.back().mutable_config()->set_infra(true);
    containers.push_back(MakeContainer("c2bbbb", "pod2bbbb", other_cg_->rel(), running, 0));
    containers.push_back(MakeContainer("c3cccc", "pod2bbbb", "/berth-stats-test-none",
                                       berth::v1::CONTAINER_STATUS_CONFIGURED, 0));
    sandboxes_.push_back(MakeSandbox("pod1aaaa", pod_cg_->rel(), netns_->path()));
    sandboxes_.push_back(MakeSandbox("pod2bbbb", "", ""));
    collector_ = MakeCollector(absl::ZeroDuration());  // every call reads
  }

  // A collector over the fixture's records; sampling every `sample_interval` (never in the
  // background when it is long). Containers `hidden` returns true for are left out of the lists.
  std::unique_ptr<StatsCollector> MakeCollector(
      absl::Duration sample_interval,
      std::function<bool(const std::string&)> hidden = [](const std::string&) { return false; }) {
    StatsOptions options;
    const std::string layers = layers_.path();
    options.upper_dir_of = [layers](const std::string& id) {
      return id == "c1aaaa" ? layers : std::string();
    };
    options.layer_mountpoint = "/var/lib/berth";
    options.refresh_interval = absl::ZeroDuration();  // the test refreshes by hand
    options.sample_interval = sample_interval;
    RecordSource source = FixedRecords(containers_, sandboxes_);
    auto list = source.list_containers;
    source.list_containers = [list, hidden] {
      std::vector<ContainerView> out;
      for (ContainerView& c : list()) {
        if (!hidden(c->config().id())) out.push_back(std::move(c));
      }
      return out;
    };
    return std::make_unique<StatsCollector>(std::move(source), std::move(options));
  }

  void TearDown() override {
    // Processes first, then their cgroups, then the netns.
    collector_.reset();
    busy_.reset();
    infra_.reset();
    ctr_cg_.reset();
    infra_cg_.reset();
    other_cg_.reset();
    other_infra_cg_.reset();
    pod_cg_.reset();
    netns_.reset();
  }

  // Waits (bounded, not timed) until the busy child has been charged its memory.
  cri::ContainerStats StatsOnceChildCharged() {
    cri::ContainerStats s;
    for (int i = 0; i < 1000; ++i) {
      absl::StatusOr<cri::ContainerStats> got = collector_->ContainerStats("c1aaaa");
      EXPECT_TRUE(got.ok()) << got.status();
      if (!got.ok()) return s;
      s = *got;
      if (s.memory().rss_bytes().value() >= kTouch) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return s;
  }

  test::TempDir layers_;
  std::vector<berth::v1::Container> containers_;
  std::vector<berth::v1::Sandbox> sandboxes_;
  std::unique_ptr<ScratchCgroup> pod_cg_, infra_cg_, ctr_cg_, other_cg_, other_infra_cg_;
  std::unique_ptr<ScratchNetns> netns_;
  std::unique_ptr<ProcessInNetns> infra_;
  std::unique_ptr<BusyChild> busy_;
  std::unique_ptr<StatsCollector> collector_;
};

TEST_F(StatsCollectorTest, ContainerStatsCarryAttributesCpuMemoryAndLimitHeadroom) {
  cri::ContainerStats first = StatsOnceChildCharged();
  EXPECT_EQ(first.attributes().id(), "c1aaaa");
  EXPECT_EQ(first.attributes().metadata().name(), "ctr-c1aaaa");
  EXPECT_EQ(first.attributes().labels().at("tier"), "web");
  EXPECT_GT(first.cpu().timestamp(), 0);
  EXPECT_TRUE(first.cpu().has_usage_core_nano_seconds());
  const cri::MemoryUsage& m = first.memory();
  EXPECT_GE(m.rss_bytes().value(), kTouch);
  EXPECT_GE(m.working_set_bytes().value(), kTouch);
  EXPECT_GE(m.usage_bytes().value(), m.working_set_bytes().value());
  ASSERT_TRUE(m.has_available_bytes());
  EXPECT_EQ(m.available_bytes().value(), kLimit - m.working_set_bytes().value());
  if (collector_->swap_accounting()) {
    EXPECT_TRUE(first.swap().has_swap_usage_bytes());
  }

  // The spinning child's CPU time grows; from the second sample on there is a rate.
  cri::ContainerStats later;
  for (int i = 0; i < 1000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    later = *collector_->ContainerStats("c1");  // a unique prefix finds it too
    if (later.cpu().usage_core_nano_seconds().value() >
        first.cpu().usage_core_nano_seconds().value())
      break;
  }
  EXPECT_GT(later.cpu().usage_core_nano_seconds().value(),
            first.cpu().usage_core_nano_seconds().value());
  ASSERT_TRUE(later.cpu().has_usage_nano_cores());
  EXPECT_GT(later.cpu().usage_nano_cores().value(), 0u);
}

TEST_F(StatsCollectorTest, WritableLayerIsZeroUntilMeasuredInTheBackground) {
  cri::ContainerStats before = *collector_->ContainerStats("c1aaaa");
  EXPECT_EQ(before.writable_layer().fs_id().mountpoint(), "/var/lib/berth");
  EXPECT_EQ(before.writable_layer().used_bytes().value(), 0u);

  collector_->RefreshNow();
  cri::ContainerStats after = *collector_->ContainerStats("c1aaaa");
  EXPECT_GE(after.writable_layer().used_bytes().value(), uint64_t{64} << 10);
  EXPECT_EQ(after.writable_layer().inodes_used().value(), 2u);  // the directory and its file
  EXPECT_GT(after.writable_layer().timestamp(), 0);
  // A container without an upper dir stays at zero.
  EXPECT_EQ(collector_->ContainerStats("c2bbbb")->writable_layer().used_bytes().value(), 0u);
}

TEST_F(StatsCollectorTest, ListContainerStatsSkipsConfiguredAndInfraAndFilters) {
  auto ids = [](const std::vector<cri::ContainerStats>& v) {
    std::set<std::string> out;
    for (const auto& s : v) out.insert(s.attributes().id());
    return out;
  };
  cri::ContainerStatsFilter f;
  EXPECT_EQ(ids(collector_->ListContainerStats(f)), (std::set<std::string>{"c1aaaa", "c2bbbb"}));
  f.set_pod_sandbox_id("pod2");
  EXPECT_EQ(ids(collector_->ListContainerStats(f)), (std::set<std::string>{"c2bbbb"}));
  f.Clear();
  f.set_id("c1");
  EXPECT_EQ(ids(collector_->ListContainerStats(f)), (std::set<std::string>{"c1aaaa"}));
  f.Clear();
  (*f.mutable_label_selector())["tier"] = "web";
  EXPECT_EQ(ids(collector_->ListContainerStats(f)), (std::set<std::string>{"c1aaaa"}));
  (*f.mutable_label_selector())["tier"] = "db";
  EXPECT_TRUE(collector_->ListContainerStats(f).empty());
}

TEST_F(StatsCollectorTest, PodStatsReadThePodCgroupAndItsNetworkNamespace) {
  cri::ContainerStats c1 = StatsOnceChildCharged();
  absl::StatusOr<cri::PodSandboxStats> pod = collector_->PodSandboxStats("pod1aaaa");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->attributes().id(), "pod1aaaa");
  EXPECT_EQ(pod->attributes().metadata().namespace_(), "default");
  EXPECT_EQ(pod->attributes().labels().at("app"), "pod1aaaa");
  const cri::LinuxPodSandboxStats& l = pod->linux();
  ASSERT_EQ(l.containers_size(), 1);
  EXPECT_EQ(l.containers(0).attributes().id(), "c1aaaa");
  // The pod cgroup holds the infra and the busy container: two processes, all their CPU.
  EXPECT_EQ(l.process().process_count().value(), 2u);
  EXPECT_GE(l.cpu().usage_core_nano_seconds().value(), c1.cpu().usage_core_nano_seconds().value());
  EXPECT_GE(l.memory().rss_bytes().value(), kTouch);
  EXPECT_FALSE(l.memory().has_available_bytes());  // the pod cgroup itself is unlimited
  ASSERT_TRUE(l.has_network());
  EXPECT_EQ(l.network().default_interface().name(), "eth0");
  EXPECT_GE(l.network().default_interface().tx_bytes().value(),
            uint64_t{kDatagrams} * (kPayload + 28));
  EXPECT_EQ(l.network().interfaces_size(), 2);  // eth0 and peer0
}

TEST_F(StatsCollectorTest, PodWithoutCgroupParentSumsItsContainersAndHasNoNetwork) {
  absl::StatusOr<cri::PodSandboxStats> pod = collector_->PodSandboxStats("pod2bbbb");
  ASSERT_TRUE(pod.ok()) << pod.status();
  const cri::LinuxPodSandboxStats& l = pod->linux();
  ASSERT_EQ(l.containers_size(), 1);  // c3cccc is only Configured
  EXPECT_EQ(l.containers(0).attributes().id(), "c2bbbb");
  EXPECT_EQ(l.process().process_count().value(), 0u);  // both cgroups are empty
  EXPECT_TRUE(l.cpu().has_usage_core_nano_seconds());
  EXPECT_FALSE(l.has_network());  // host network
}

TEST_F(StatsCollectorTest, ListPodSandboxStatsFiltersByIdAndLabels) {
  cri::PodSandboxStatsFilter f;
  EXPECT_EQ(collector_->ListPodSandboxStats(f).size(), 2u);
  f.set_id("pod2");
  ASSERT_EQ(collector_->ListPodSandboxStats(f).size(), 1u);
  EXPECT_EQ(collector_->ListPodSandboxStats(f)[0].attributes().id(), "pod2bbbb");
  f.Clear();
  (*f.mutable_label_selector())["app"] = "pod1aaaa";
  ASSERT_EQ(collector_->ListPodSandboxStats(f).size(), 1u);
  EXPECT_EQ(collector_->ListPodSandboxStats(f)[0].linux().containers_size(), 1);
}

// What a client parses from an answer made with encoded attributes is what the message form
// says: same attributes for every container, listed alone or inside its pod.
TEST_F(StatsCollectorTest, EncodedAttributesParseAsTheMessageForm) {
  using A = StatsCollector::Attributes;
  (*containers_[1].mutable_config()->mutable_cri()->mutable_annotations())["hash"] = "5e6f";
  collector_ = MakeCollector(absl::ZeroDuration());
  auto attributes_by_id = [](const google::protobuf::RepeatedPtrField<cri::ContainerStats>& all) {
    std::map<std::string, std::string> out;
    for (const cri::ContainerStats& s : all) {
      EXPECT_EQ(s.GetReflection()->GetUnknownFields(s).field_count(), 0)
          << "a parsed answer keeps nothing unknown";
      out[s.attributes().id()] = s.attributes().SerializeAsString();
    }
    return out;
  };
  cri::ListContainerStatsResponse as_message, encoded, parsed;
  for (cri::ContainerStats& s : collector_->ListContainerStats({}, A::kMessage))
    *as_message.add_stats() = std::move(s);
  for (cri::ContainerStats& s : collector_->ListContainerStats({}, A::kEncoded)) {
    EXPECT_FALSE(s.has_attributes());
    *encoded.add_stats() = std::move(s);
  }
  ASSERT_TRUE(parsed.ParseFromString(encoded.SerializeAsString()));
  ASSERT_EQ(parsed.stats_size(), 2);
  std::map<std::string, std::string> want = attributes_by_id(as_message.stats());
  EXPECT_EQ(attributes_by_id(parsed.stats()), want);
  ASSERT_TRUE(want.contains("c1aaaa"));
  const cri::ContainerStats& c1 =
      parsed.stats(0).attributes().id() == "c1aaaa" ? parsed.stats(0) : parsed.stats(1);
  EXPECT_EQ(c1.attributes().labels().at("tier"), "web");
  EXPECT_EQ(c1.attributes().annotations().at("hash"), "5e6f");
  EXPECT_EQ(c1.attributes().metadata().name(), "ctr-c1aaaa");
  EXPECT_TRUE(c1.memory().has_working_set_bytes());

  cri::ListPodSandboxStatsResponse pods, pods_parsed;
  for (cri::PodSandboxStats& p : collector_->ListPodSandboxStats({}, A::kEncoded))
    *pods.add_stats() = std::move(p);
  ASSERT_TRUE(pods_parsed.ParseFromString(pods.SerializeAsString()));
  ASSERT_EQ(pods_parsed.stats_size(), 2);
  std::map<std::string, std::string> in_pods;
  for (const cri::PodSandboxStats& p : pods_parsed.stats()) {
    EXPECT_EQ(p.attributes().metadata().name(), "pod-" + p.attributes().id());
    in_pods.merge(attributes_by_id(p.linux().containers()));
  }
  EXPECT_EQ(in_pods, want);
}

TEST_F(StatsCollectorTest, UnknownEmptyAndInfraIdsAreErrorsNamingThem) {
  absl::StatusOr<cri::ContainerStats> empty = collector_->ContainerStats("");
  EXPECT_TRUE(absl::IsInvalidArgument(empty.status())) << empty.status();
  EXPECT_NE(empty.status().message().find("container_id"), std::string::npos);
  absl::StatusOr<cri::ContainerStats> unknown = collector_->ContainerStats("nosuch");
  EXPECT_TRUE(absl::IsNotFound(unknown.status())) << unknown.status();
  EXPECT_NE(unknown.status().message().find("nosuch"), std::string::npos);
  EXPECT_TRUE(absl::IsNotFound(collector_->ContainerStats("pod1aaaa").status()));  // infra
  absl::StatusOr<cri::PodSandboxStats> no_pod = collector_->PodSandboxStats("");
  EXPECT_TRUE(absl::IsInvalidArgument(no_pod.status()));
  EXPECT_NE(no_pod.status().message().find("pod_sandbox_id"), std::string::npos);
  EXPECT_TRUE(absl::IsNotFound(collector_->PodSandboxStats("nosuchpod").status()));
}

// The busy child's CPU time grows between two reads: a list answering from a sample repeats the
// sample's figures and timestamp while a one-container call reads again.
TEST_F(StatsCollectorTest, ListsAnswerFromTheSampleWhileItIsFresh) {
  collector_.reset();
  collector_ = MakeCollector(absl::Hours(1));  // the background sampler never ticks in the test
  StatsOnceChildCharged();
  collector_->SampleNow();
  EXPECT_EQ(collector_->samples_taken(), 1u);
  auto c1 = [](const std::vector<cri::ContainerStats>& v) {
    for (const auto& s : v) {
      if (s.attributes().id() == "c1aaaa") return s;
    }
    ADD_FAILURE() << "c1aaaa is not listed";
    return cri::ContainerStats();
  };
  cri::ContainerStats listed = c1(collector_->ListContainerStats({}));
  ASSERT_TRUE(listed.cpu().has_usage_core_nano_seconds());
  EXPECT_GE(listed.memory().rss_bytes().value(), kTouch);
  cri::ContainerStats now;
  for (int i = 0; i < 1000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    now = *collector_->ContainerStats("c1aaaa");
    if (now.cpu().usage_core_nano_seconds().value() >
        listed.cpu().usage_core_nano_seconds().value())
      break;
  }
  EXPECT_GT(now.cpu().usage_core_nano_seconds().value(),
            listed.cpu().usage_core_nano_seconds().value());
  EXPECT_GT(now.cpu().timestamp(), listed.cpu().timestamp());
  // The one-container call read again and kept what it read as the newest sample; the list
  // answers with that reading, not with a read of its own.
  cri::ContainerStats again = c1(collector_->ListContainerStats({}));
  EXPECT_EQ(again.cpu().timestamp(), now.cpu().timestamp());
  EXPECT_EQ(again.cpu().usage_core_nano_seconds().value(),
            now.cpu().usage_core_nano_seconds().value());
  EXPECT_EQ(again.memory().rss_bytes().value(), now.memory().rss_bytes().value());

  // Pods too: the pod cgroup and the netns counters come from the sample.
  std::vector<cri::PodSandboxStats> pods = collector_->ListPodSandboxStats({});
  ASSERT_EQ(pods.size(), 2u);
  const cri::PodSandboxStats& pod1 = pods[0].attributes().id() == "pod1aaaa" ? pods[0] : pods[1];
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::vector<cri::PodSandboxStats> pods_again = collector_->ListPodSandboxStats({});
  const cri::PodSandboxStats& pod1_again =
      pods_again[0].attributes().id() == "pod1aaaa" ? pods_again[0] : pods_again[1];
  EXPECT_EQ(pod1_again.linux().cpu().timestamp(), pod1.linux().cpu().timestamp());
  EXPECT_EQ(pod1_again.linux().cpu().usage_core_nano_seconds().value(),
            pod1.linux().cpu().usage_core_nano_seconds().value());
  ASSERT_TRUE(pod1_again.linux().has_network());
  EXPECT_EQ(pod1_again.linux().network().timestamp(), pod1.linux().network().timestamp());
  EXPECT_EQ(pod1_again.linux().process().process_count().value(), 2u);
  // PodSandboxStats of the one pod reads again.
  absl::StatusOr<cri::PodSandboxStats> one = collector_->PodSandboxStats("pod1aaaa");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_GT(one->linux().cpu().timestamp(), pod1.linux().cpu().timestamp());
}

// A container the sampler has not seen yet, and a sample older than twice the interval, are read
// in the call.
TEST_F(StatsCollectorTest, ContainersWithoutAFreshSampleAreReadInTheCall) {
  std::atomic<bool> hide{true};
  collector_.reset();
  collector_ = MakeCollector(absl::Hours(1),
                             [&hide](const std::string& id) { return hide && id == "c1aaaa"; });
  collector_->SampleNow();  // without c1aaaa
  hide = false;
  int64_t before = absl::ToUnixNanos(absl::Now());
  std::vector<cri::ContainerStats> listed = collector_->ListContainerStats({});
  ASSERT_EQ(listed.size(), 2u);
  for (const auto& s : listed) {
    if (s.attributes().id() != "c1aaaa") continue;
    EXPECT_GE(s.cpu().timestamp(), before) << "read in the call";
    EXPECT_TRUE(s.cpu().has_usage_core_nano_seconds());
  }

  // Sampling every 50 ms: a reading older than 100 ms is stale. Nothing asked for a list in this
  // collector, so its sampler takes nothing by itself.
  collector_.reset();
  collector_ = MakeCollector(absl::Milliseconds(50));
  collector_->SampleNow();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(collector_->samples_taken(), 1u) << "no list call: the sampler stays idle";
  before = absl::ToUnixNanos(absl::Now());
  for (const auto& s : collector_->ListContainerStats({})) {
    if (s.attributes().id() == "c1aaaa") {
      EXPECT_GE(s.cpu().timestamp(), before);
    }
  }
}

// A list call starts the background sampler; it stops once lists stop coming.
TEST_F(StatsCollectorTest, ListCallsKeepTheBackgroundSamplerGoing) {
  collector_.reset();
  collector_ = MakeCollector(absl::Milliseconds(20));
  EXPECT_EQ(collector_->samples_taken(), 0u);
  collector_->ListPodSandboxStats({});
  for (int i = 0; i < 1000 && collector_->samples_taken() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(collector_->samples_taken(), 2u);
  // Six intervals (120 ms) after the last call it stops: it stays still afterwards.
  uint64_t settled = 0;
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    uint64_t n = collector_->samples_taken();
    if (n == settled) break;
    settled = n;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(collector_->samples_taken(), settled);
}

TEST_F(StatsCollectorTest, PodMetricsUseOnlyDescribedNamesWithMatchingLabels) {
  StatsOnceChildCharged();
  collector_->RefreshNow();
  absl::flat_hash_map<std::string, int> keys;  // name -> label key count
  for (const cri::MetricDescriptor& d : MetricDescriptors()) keys[d.name()] = d.label_keys_size();
  for (const char* required :
       {"container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
        "container_memory_usage_bytes", "container_memory_rss", "container_spec_memory_limit_bytes",
        "container_network_receive_bytes_total", "container_network_transmit_bytes_total"}) {
    EXPECT_TRUE(keys.contains(required)) << required;
  }
  std::set<std::string> seen;
  auto check = [&](const cri::Metric& m) {
    seen.insert(m.name());
    ASSERT_TRUE(keys.contains(m.name())) << m.name();
    EXPECT_EQ(m.label_values_size(), keys[m.name()]) << m.name();
  };
  std::vector<PodSample> pods = collector_->ListPodSamples();
  ASSERT_EQ(pods.size(), 2u);
  for (const PodSample& p : pods) {
    cri::PodSandboxMetrics pm = ToPodSandboxMetrics(p);
    EXPECT_EQ(pm.pod_sandbox_id(), p.stats.attributes().id());
    for (const auto& m : pm.metrics()) check(m);
    for (const auto& cm : pm.container_metrics()) {
      for (const auto& m : cm.metrics()) check(m);
      if (cm.container_id() != "c1aaaa") continue;
      for (const auto& m : cm.metrics()) {
        if (m.name() == "container_spec_memory_limit_bytes") {
          EXPECT_EQ(m.value().value(), kLimit);
        } else if (m.name() == "container_fs_usage_bytes") {
          EXPECT_GE(m.value().value(), uint64_t{64} << 10);
        } else if (m.name() == "container_processes") {
          EXPECT_EQ(m.value().value(), 1u);
        }
      }
    }
  }
  EXPECT_TRUE(seen.contains("container_network_transmit_bytes_total"));
  EXPECT_TRUE(seen.contains("container_memory_working_set_bytes"));
}

}  // namespace
// The background refresh never competes with requests: it runs at SCHED_IDLE.
TEST(StatsCollectorRefreshTest, BackgroundRefreshRunsAtIdlePriority) {
  RecordSource source = FixedRecords({}, {});
  std::atomic<int> policy{-1};
  absl::Notification seen;
  auto list = source.list_containers;
  source.list_containers = [&policy, &seen, list] {
    if (!seen.HasBeenNotified()) {
      policy = sched_getscheduler(0);
      seen.Notify();
    }
    return list();
  };
  StatsOptions options;
  options.refresh_interval = absl::Milliseconds(10);
  options.mode = cgroups::CgroupMode::kLegacy;
  StatsCollector collector(std::move(source), options);
  ASSERT_TRUE(seen.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(policy.load(), SCHED_IDLE);
  EXPECT_NE(sched_getscheduler(0), SCHED_IDLE) << "the caller's own policy is untouched";
}

}  // namespace berth::engine::stats
