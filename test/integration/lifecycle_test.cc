// Pods and containers through CRI against a real berthd, runc, conmon and a loopback registry:
// run to completion with logs, stop with timeout, exec, name retries, restart recovery, cleanup.
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <atomic>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "test/registry/tar_builder.h"
#include "test/util/cri_fixture.h"
#include "util/fs.h"
#include "absl/strings/numbers.h"
#include "runtime/checkpoint.h"
#include "runtime/engine.h"
#include "runtime/cgroups/mode.h"
#include "util/subprocess.h"
#include <set>

namespace berth::test {
namespace {

class LifecycleTest : public CriFixture {
 protected:
  // The CRIU the checkpoint tests give berthd: BERTH_TEST_CRIU, else berthd's default.
  static std::string TestCriu() {
    const char* env = getenv("BERTH_TEST_CRIU");
    return env != nullptr && *env != '\0' ? env : "criu";
  }

  absl::Status RestartWithCriu(const std::string& criu) {
    if (absl::StatusOr<int> st = berthd_->Stop(); !st.ok()) return st.status();
    return berthd_->Start(
        {.config_toml = absl::StrCat(Config(), "[runtime]\ncriu_path = \"", criu, "\"\n")});
  }

  grpc::Status Checkpoint(const std::string& id, const std::string& location) {
    cri::CheckpointContainerRequest req;
    req.set_container_id(id);
    req.set_location(location);
    cri::CheckpointContainerResponse resp;
    return berthd_->runtime().CheckpointContainer(Ctx(600).get(), req, &resp);
  }

  // CreateContainer naming a checkpoint archive as its image, as kubelet does for a restore.
  grpc::Status CreateFromArchive(const std::string& pod_id, const cri::PodSandboxConfig& pod,
                                 const std::string& name, const std::string& archive,
                                 std::string* id) {
    cri::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod_id);
    *req.mutable_sandbox_config() = pod;
    req.mutable_config()->mutable_metadata()->set_name(name);
    req.mutable_config()->mutable_image()->set_image(archive);
    req.mutable_config()->set_log_path(name + ".log");
    (*req.mutable_config()->mutable_labels())["restored"] = "yes";
    cri::CreateContainerResponse resp;
    grpc::Status st = berthd_->runtime().CreateContainer(Ctx(600).get(), req, &resp);
    *id = resp.container_id();
    return st;
  }

  // A well-formed berth checkpoint archive whose CRIU images are a stand-in: enough to get past
  // the archive checks to the CRIU precondition.
  std::string HandMadeArchive() {
    const std::string dir = dir_.path() + "/handmade";
    EXPECT_TRUE(MakeDirs(dir + "/checkpoint").ok());
    EXPECT_TRUE(WriteFileAtomic(dir + "/checkpoint/inventory.img", "stand-in").ok());
    berth::v1::Container rec;
    rec.mutable_config()->set_id("0123456789abcdef");
    rec.mutable_config()->set_image_id("sha256:0123");
    rec.mutable_config()->set_oci_spec("{}");
    rec.mutable_config()->mutable_cri()->mutable_metadata()->set_name("gone");
    EXPECT_TRUE(engine::WriteCheckpointMetadata(rec, 1, dir).ok());
    const std::string archive = dir_.path() + "/handmade.tar.gz";
    EXPECT_TRUE(engine::WriteCheckpointArchive(dir, archive).ok());
    return archive;
  }

  // The numbers a counting container logged, in order.
  static std::vector<long> Counted(const std::string& log_path) {
    std::vector<long> out;
    for (absl::string_view line :
         absl::StrSplit(ReadFile(log_path).value_or(""), '\n', absl::SkipEmpty())) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
      long n;
      if (f.size() == 4 && f[1] == "stdout" && absl::SimpleAtoi(f[3], &n)) out.push_back(n);
    }
    return out;
  }

  static std::vector<long> WaitCounted(const std::string& log_path, size_t at_least) {
    for (int i = 0; i < 300; ++i) {
      std::vector<long> n = Counted(log_path);
      if (n.size() >= at_least) return n;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << log_path << " has fewer than " << at_least << " numbers:\n"
                  << ReadFile(log_path).value_or("(absent)");
    return Counted(log_path);
  }

  void ExpectBogusArchivesRefused(const std::string& pod_id, const cri::PodSandboxConfig& pod) {
    ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/bogus.tar.gz", "no archive here\n").ok());
    for (const std::string& path : {dir_.path() + "/bogus.tar.gz", dir_.path() + "/absent.tar"}) {
      std::string id;
      grpc::Status st = CreateFromArchive(pod_id, pod, "bogus", path, &id);
      EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
      EXPECT_TRUE(absl::StrContains(st.error_message(), "config.image.image"))
          << st.error_message();
    }
  }
};

TEST_F(LifecycleTest, ContainerRunsToCompletionWithExitCodeAndCriLogs) {
  cri::PodSandboxConfig pod = Pod("complete");
  std::string pod_id = RunPod(pod);
  std::string id =
      CreateContainer(pod_id, pod, "c1", {"/bin/sh", "-c", "echo hello; echo oops >&2; exit 3"});
  EXPECT_EQ(Status(id).state(), cri::CONTAINER_CREATED);
  ASSERT_TRUE(Start(id).ok());
  cri::ContainerStatus s = WaitExited(id);
  EXPECT_EQ(s.exit_code(), 3);
  EXPECT_EQ(s.reason(), "Error");
  EXPECT_GT(s.started_at(), 0);
  EXPECT_GE(s.finished_at(), s.started_at());
  EXPECT_EQ(s.log_path(), dir_.path() + "/logs/complete/c1.log");
  std::string log = ReadFile(s.log_path()).value_or("");
  EXPECT_TRUE(absl::StrContains(log, " stdout F hello\n")) << log;
  EXPECT_TRUE(absl::StrContains(log, " stderr F oops\n")) << log;
  // A finished container cannot start again: the engine's state machine answers, naming where the
  // container is and where the start would have taken it.
  grpc::Status again = Start(id);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StrContains(again.error_message(),
                                "is stopped: cannot start it (that leads to running)"))
      << again.error_message();
  cri::ExecSyncRequest exec;
  exec.set_container_id(id);
  exec.add_cmd("/bin/true");
  cri::ExecSyncResponse exec_resp;
  grpc::Status st = berthd_->runtime().ExecSync(Ctx().get(), exec, &exec_resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StrContains(st.error_message(), "is stopped: cannot exec in it"))
      << st.error_message();
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

TEST_F(LifecycleTest, StopKillsAProcessThatIgnoresSigterm) {
  cri::PodSandboxConfig pod = Pod("stubborn");
  std::string pod_id = RunPod(pod);
  std::string id = CreateContainer(pod_id, pod, "c",
                                   {"/bin/sh", "-c", "trap '' TERM; while true; do sleep 1; done"});
  ASSERT_TRUE(Start(id).ok());
  EXPECT_EQ(Status(id).state(), cri::CONTAINER_RUNNING);
  cri::StopContainerRequest req;
  req.set_container_id(id);
  req.set_timeout(1);
  cri::StopContainerResponse resp;
  grpc::Status st = berthd_->runtime().StopContainer(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  cri::ContainerStatus s = Status(id);
  EXPECT_EQ(s.state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(s.exit_code(), 137);
  // Stopping again is fine.
  EXPECT_TRUE(berthd_->runtime().StopContainer(Ctx().get(), req, &resp).ok());
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

TEST_F(LifecycleTest, ExecSyncReturnsOutputExitCodeAndTimesOut) {
  cri::PodSandboxConfig pod = Pod("exec");
  std::string pod_id = RunPod(pod);
  std::string id = CreateContainer(pod_id, pod, "c", {"/bin/sleep", "1000"});
  ASSERT_TRUE(Start(id).ok());
  cri::ExecSyncRequest req;
  req.set_container_id(id);
  for (const char* a : {"/bin/sh", "-c", "echo out; echo err >&2; hostname; exit 5"})
    req.add_cmd(a);
  cri::ExecSyncResponse resp;
  grpc::Status st = berthd_->runtime().ExecSync(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.stdout(), "out\nexec\n");
  EXPECT_EQ(resp.stderr(), "err\n");
  EXPECT_EQ(resp.exit_code(), 5);

  cri::ExecSyncRequest slow;
  slow.set_container_id(id);
  slow.add_cmd("/bin/sleep");
  slow.add_cmd("30");
  slow.set_timeout(1);
  st = berthd_->runtime().ExecSync(Ctx().get(), slow, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

TEST_F(LifecycleTest, HundredConcurrentExecSyncCalls) {
  cri::PodSandboxConfig pod = Pod("execmany");
  std::string pod_id = RunPod(pod);
  std::string id = CreateContainer(pod_id, pod, "c", {"/bin/sleep", "1000"});
  ASSERT_TRUE(Start(id).ok());
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 100; ++i) {
    threads.emplace_back([&, i] {
      cri::ExecSyncRequest req;
      req.set_container_id(id);
      for (const std::string& a : {std::string("/bin/sh"), std::string("-c"),
                                   absl::StrCat("echo ", i, "; exit ", i % 7)}) {
        req.add_cmd(a);
      }
      cri::ExecSyncResponse resp;
      if (berthd_->runtime().ExecSync(Ctx(120).get(), req, &resp).ok() &&
          resp.stdout() == absl::StrCat(i, "\n") && resp.exit_code() == i % 7) {
        ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 100);
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

TEST_F(LifecycleTest, ARetriedRunPodSandboxGetsTheSameIdAndADifferentOneIsRefused) {
  cri::PodSandboxConfig pod = Pod("retry");
  std::string first = RunPod(pod);
  EXPECT_EQ(RunPod(pod), first);
  cri::PodSandboxConfig other = pod;
  other.set_hostname("changed");
  cri::RunPodSandboxRequest req;
  *req.mutable_config() = other;
  cri::RunPodSandboxResponse resp;
  EXPECT_EQ(berthd_->runtime().RunPodSandbox(Ctx().get(), req, &resp).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_TRUE(RemovePod(first).ok());
  // Removing twice is fine; the name is free again.
  EXPECT_TRUE(RemovePod(first).ok());
  std::string again = RunPod(pod);
  EXPECT_NE(again, first);
  EXPECT_TRUE(RemovePod(again).ok());
}

TEST_F(LifecycleTest, ContainersSurviveABerthdCrashAndExitsMeanwhileAreRecovered) {
  cri::PodSandboxConfig pod = Pod("recover");
  std::string pod_id = RunPod(pod);
  std::string runs = CreateContainer(pod_id, pod, "runs", {"/bin/sleep", "1000"});
  std::string ends = CreateContainer(pod_id, pod, "ends", {"/bin/sh", "-c", "sleep 2; exit 7"});
  ASSERT_TRUE(Start(runs).ok());
  ASSERT_TRUE(Start(ends).ok());
  berthd_->Kill();
  std::this_thread::sleep_for(std::chrono::seconds(3));  // "ends" exits while berthd is down
  ASSERT_TRUE(berthd_->Start({.config_toml = Config()}).ok()) << berthd_->log();
  EXPECT_EQ(Status(runs).state(), cri::CONTAINER_RUNNING);
  cri::ContainerStatus s = Status(ends);
  EXPECT_EQ(s.state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(s.exit_code(), 7);
  // The recovered container is still managed: exec and stop work.
  cri::ExecSyncRequest req;
  req.set_container_id(runs);
  req.add_cmd("/bin/true");
  cri::ExecSyncResponse resp;
  EXPECT_TRUE(berthd_->runtime().ExecSync(Ctx().get(), req, &resp).ok());
  cri::PodSandboxStatusRequest preq;
  preq.set_pod_sandbox_id(pod_id);
  cri::PodSandboxStatusResponse presp;
  ASSERT_TRUE(berthd_->runtime().PodSandboxStatus(Ctx().get(), preq, &presp).ok());
  EXPECT_EQ(presp.status().state(), cri::SANDBOX_READY);
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

TEST_F(LifecycleTest, ListsFilterByPodStateAndLabel) {
  cri::PodSandboxConfig a = Pod("lista"), b = Pod("listb");
  std::string pa = RunPod(a), pb = RunPod(b);
  std::string ca = CreateContainer(pa, a, "c", {"/bin/sleep", "1000"});
  std::string cb = CreateContainer(pb, b, "c", {"/bin/sleep", "1000"});
  ASSERT_TRUE(Start(ca).ok());
  cri::ListContainersRequest req;
  req.mutable_filter()->mutable_state()->set_state(cri::CONTAINER_RUNNING);
  cri::ListContainersResponse resp;
  ASSERT_TRUE(berthd_->runtime().ListContainers(Ctx().get(), req, &resp).ok());
  ASSERT_EQ(resp.containers_size(), 1);
  EXPECT_EQ(resp.containers(0).id(), ca);
  req.Clear();
  req.mutable_filter()->set_pod_sandbox_id(pb.substr(0, 12));
  resp.Clear();
  ASSERT_TRUE(berthd_->runtime().ListContainers(Ctx().get(), req, &resp).ok());
  ASSERT_EQ(resp.containers_size(), 1);
  EXPECT_EQ(resp.containers(0).id(), cb);
  cri::ListPodSandboxRequest preq;
  (*preq.mutable_filter()->mutable_label_selector())["app"] = "listb";
  cri::ListPodSandboxResponse presp;
  ASSERT_TRUE(berthd_->runtime().ListPodSandbox(Ctx().get(), preq, &presp).ok());
  ASSERT_EQ(presp.items_size(), 1);
  EXPECT_EQ(presp.items(0).id(), pb);
  EXPECT_TRUE(RemovePod(pa).ok());
  EXPECT_TRUE(RemovePod(pb).ok());
}

TEST_F(LifecycleTest, StatsMoveWhenAContainerBurnsCpuAndMemory) {
  cri::PodSandboxConfig pod = Pod("stats");
  std::string pod_id = RunPod(pod);
  std::string id = CreateContainer(
      pod_id, pod, "burn",
      {"/bin/sh", "-c", "yes > /dev/null & head -c 20000000 /dev/zero | cat > /tmp/x; sleep 1000"});
  ASSERT_TRUE(Start(id).ok());
  cri::ContainerStatsRequest req;
  req.set_container_id(id);
  cri::ContainerStatsResponse first, second;
  ASSERT_TRUE(berthd_->runtime().ContainerStats(Ctx().get(), req, &first).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_TRUE(berthd_->runtime().ContainerStats(Ctx().get(), req, &second).ok());
  EXPECT_EQ(second.stats().attributes().id(), id);
  EXPECT_GT(second.stats().cpu().usage_core_nano_seconds().value(),
            first.stats().cpu().usage_core_nano_seconds().value() + 100'000'000u);
  EXPECT_GT(second.stats().cpu().usage_nano_cores().value(), 100'000'000u);  // > 0.1 core
  EXPECT_GT(second.stats().memory().working_set_bytes().value(), 0u);
  cri::ListContainerStatsRequest lreq;
  lreq.mutable_filter()->set_pod_sandbox_id(pod_id);
  cri::ListContainerStatsResponse lresp;
  ASSERT_TRUE(berthd_->runtime().ListContainerStats(Ctx().get(), lreq, &lresp).ok());
  ASSERT_EQ(lresp.stats_size(), 1);
  cri::PodSandboxStatsRequest preq;
  preq.set_pod_sandbox_id(pod_id);
  cri::PodSandboxStatsResponse presp;
  ASSERT_TRUE(berthd_->runtime().PodSandboxStats(Ctx().get(), preq, &presp).ok());
  EXPECT_EQ(presp.stats().linux().containers_size(), 1);
  EXPECT_GE(presp.stats().linux().cpu().usage_core_nano_seconds().value(),
            second.stats().cpu().usage_core_nano_seconds().value());
  req.set_container_id("no-such-container");
  EXPECT_EQ(berthd_->runtime().ContainerStats(Ctx().get(), req, &first).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

TEST_F(LifecycleTest, PodMetricsAndCheckpointPreconditions) {
  cri::PodSandboxConfig pod = Pod("metrics");
  std::string pod_id = RunPod(pod);
  std::string id = CreateContainer(pod_id, pod, "m", {"/bin/sleep", "1000"});
  ASSERT_TRUE(Start(id).ok());
  cri::ListMetricDescriptorsResponse d;
  ASSERT_TRUE(berthd_->runtime()
                  .ListMetricDescriptors(Ctx().get(), cri::ListMetricDescriptorsRequest(), &d)
                  .ok());
  std::set<std::string> names;
  for (const auto& m : d.descriptors()) names.insert(m.name());
  EXPECT_TRUE(names.count("container_memory_working_set_bytes"));
  cri::ListPodSandboxMetricsResponse pm;
  ASSERT_TRUE(berthd_->runtime()
                  .ListPodSandboxMetrics(Ctx().get(), cri::ListPodSandboxMetricsRequest(), &pm)
                  .ok());
  ASSERT_EQ(pm.pod_metrics_size(), 1);
  ASSERT_EQ(pm.pod_metrics(0).container_metrics_size(), 1);
  EXPECT_EQ(pm.pod_metrics(0).container_metrics(0).container_id(), id);
  bool ws = false;
  for (const auto& m : pm.pod_metrics(0).container_metrics(0).metrics()) {
    if (m.name() == "container_memory_working_set_bytes") ws = m.value().value() > 0;
  }
  EXPECT_TRUE(ws);
  cri::CheckpointContainerRequest creq;
  creq.set_container_id(id);
  creq.set_location(dir_.path() + "/ckpt.tar.gz");
  cri::CheckpointContainerResponse cresp;
  grpc::Status st = berthd_->runtime().CheckpointContainer(Ctx().get(), creq, &cresp);
  if (!engine::CriuProbe("criu").Usable().ok()) {  // berthd's default runtime.criu_path
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  } else {
    EXPECT_TRUE(st.ok()) << st.error_message();
    EXPECT_TRUE(PathExists(creq.location()));
  }
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

TEST_F(LifecycleTest, CheckpointAndRestoreNeedAUsableCriu) {
  ASSERT_TRUE(RestartWithCriu(dir_.path() + "/no/criu").ok()) << berthd_->log();
  cri::PodSandboxConfig pod = Pod("nocriu");
  std::string pod_id = RunPod(pod);
  std::string id = CreateContainer(pod_id, pod, "c", {"/bin/sleep", "1000"});
  ASSERT_TRUE(Start(id).ok());
  grpc::Status st = Checkpoint(id, dir_.path() + "/ckpt.tar.gz");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_TRUE(absl::StrContains(st.error_message(), "runtime.criu_path")) << st.error_message();
  EXPECT_FALSE(PathExists(dir_.path() + "/ckpt.tar.gz"));
  std::string restored;
  st = CreateFromArchive(pod_id, pod, "restored", HandMadeArchive(), &restored);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_TRUE(absl::StrContains(st.error_message(), "CRIU")) << st.error_message();
  ExpectBogusArchivesRefused(pod_id, pod);
  // Nothing was left of the refused creations.
  cri::ListContainersResponse list;
  ASSERT_TRUE(
      berthd_->runtime().ListContainers(Ctx().get(), cri::ListContainersRequest(), &list).ok());
  EXPECT_EQ(list.containers_size(), 1);
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

// With a CRIU that works on this kernel (BERTH_TEST_CRIU, else criu on PATH): a counting
// container is checkpointed, removed, and restored into a new container of the same pod, whose
// log goes on counting from the checkpoint. Without one: the clear refusals.
TEST_F(LifecycleTest, CheckpointedContainerRestoresAndKeepsCounting) {
  const std::string criu = TestCriu();
  ASSERT_TRUE(RestartWithCriu(criu).ok()) << berthd_->log();
  cri::PodSandboxConfig pod = Pod("ckpt");
  std::string pod_id = RunPod(pod);
  cri::CreateContainerRequest req;
  req.set_pod_sandbox_id(pod_id);
  *req.mutable_sandbox_config() = pod;
  auto* c = req.mutable_config();
  c->mutable_metadata()->set_name("counter");
  c->mutable_image()->set_image("busybox");
  for (const char* a :
       {"sh", "-c",
        "echo kept > /written; i=0; while true; do echo $i; i=$((i+1)); sleep 0.2; done"}) {
    c->add_command(a);
  }
  c->set_log_path("counter.log");
  (*c->mutable_labels())["app"] = "counter";
  // kubelet's default: a PID namespace of the container's own.
  c->mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
      cri::CONTAINER);
  cri::CreateContainerResponse cresp;
  grpc::Status st = berthd_->runtime().CreateContainer(Ctx().get(), req, &cresp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const std::string id = cresp.container_id();
  ASSERT_TRUE(Start(id).ok());
  const std::string log = dir_.path() + "/logs/ckpt/counter.log";
  const std::string archive = dir_.path() + "/counter.tar.gz";
  const long before = WaitCounted(log, 5).back();

  st = Checkpoint(id, archive);
  if (absl::Status usable = engine::CriuProbe(criu).Usable(); !usable.ok()) {
    std::cerr << "no usable CRIU, checking the refusals only: " << usable << "\n";
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
    std::string restored;
    st = CreateFromArchive(pod_id, pod, "restored", HandMadeArchive(), &restored);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
    ExpectBogusArchivesRefused(pod_id, pod);
    EXPECT_TRUE(RemovePod(pod_id).ok());
    return;
  }
  ASSERT_TRUE(st.ok()) << st.error_message() << berthd_->log();
  const long after = Counted(log).back();
  EXPECT_EQ(Status(id).state(), cri::CONTAINER_RUNNING);  // left running
  {
    cri::RemoveContainerRequest rm;
    rm.set_container_id(id);
    cri::RemoveContainerResponse rmr;
    ASSERT_TRUE(berthd_->runtime().RemoveContainer(Ctx().get(), rm, &rmr).ok());
  }

  std::string restored;
  st = CreateFromArchive(pod_id, pod, "counter-restored", archive, &restored);
  ASSERT_TRUE(st.ok()) << st.error_message() << berthd_->log();
  cri::ContainerStatus s = Status(restored);
  EXPECT_EQ(s.state(), cri::CONTAINER_CREATED);
  EXPECT_EQ(s.metadata().name(), "counter-restored");
  EXPECT_EQ(s.labels().at("app"), "counter");
  EXPECT_EQ(s.labels().at("restored"), "yes");
  // A container awaiting its restore is unknown to runc: a berthd restart keeps it as it is.
  ASSERT_TRUE(RestartWithCriu(criu).ok()) << berthd_->log();
  EXPECT_EQ(Status(restored).state(), cri::CONTAINER_CREATED);
  // One that is never started goes at once.
  std::string unstarted;
  ASSERT_TRUE(CreateFromArchive(pod_id, pod, "unstarted", archive, &unstarted).ok());
  {
    const auto t0 = std::chrono::steady_clock::now();
    cri::RemoveContainerRequest rm;
    rm.set_container_id(unstarted);
    cri::RemoveContainerResponse rmr;
    ASSERT_TRUE(berthd_->runtime().RemoveContainer(Ctx().get(), rm, &rmr).ok());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  }
  st = Start(restored);
  ASSERT_TRUE(st.ok()) << st.error_message() << berthd_->log();
  EXPECT_EQ(Status(restored).state(), cri::CONTAINER_RUNNING);
  std::vector<long> n = WaitCounted(dir_.path() + "/logs/ckpt/counter-restored.log", 5);
  ASSERT_GE(n.size(), 5u);
  std::cerr << "restored with " << criu << ": logged " << before << " before the checkpoint, "
            << after << " right after it; the restored container went on from " << n.front()
            << "\n";
  // It goes on from where the checkpoint caught it: past what was logged before the checkpoint,
  // not past what the original logged after it, and never from 0 again.
  EXPECT_GT(n.front(), before);
  EXPECT_LE(n.front(), after + 1);
  for (size_t i = 1; i < n.size(); ++i) EXPECT_EQ(n[i], n[i - 1] + 1) << i;
  // The writable layer came along.
  cri::ExecSyncRequest exec;
  exec.set_container_id(restored);
  for (const char* a : {"cat", "/written"}) exec.add_cmd(a);
  cri::ExecSyncResponse out;
  ASSERT_TRUE(berthd_->runtime().ExecSync(Ctx().get(), exec, &out).ok());
  EXPECT_EQ(out.stdout(), "kept\n");
  ExpectBogusArchivesRefused(pod_id, pod);
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

TEST_F(LifecycleTest, OciHooksFromHooksDirRunAroundTheContainer) {
  // A prestart and a poststop hook that record the container state runc hands them.
  const std::string hooks = dir_.path() + "/hooks.d", out = dir_.path() + "/hook-out";
  ASSERT_TRUE(MakeDirs(hooks).ok());
  ASSERT_TRUE(MakeDirs(out).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/record.sh",
                              absl::StrCat("#!/bin/sh\ncat > ", out, "/$1\n"), 0755)
                  .ok());
  ASSERT_TRUE(WriteFileAtomic(
                  hooks + "/record.json",
                  absl::StrCat(R"({"version":"1.0.0","hook":{"path":")", dir_.path(),
                               R"(/record.sh","args":["record.sh","HOOKSTAGE"]},)",
                               R"("when":{"annotations":{"^io\\.berth\\.test\\.hooks$":"^on$"}},)",
                               R"("stages":["prestart","poststop"]})"))
                  .ok());
  std::string text = ReadFile(hooks + "/record.json").value_or("");
  // Each stage gets its own argument so the two runs write different files.
  ASSERT_TRUE(WriteFileAtomic(hooks + "/record.json",
                              absl::StrReplaceAll(text, {{R"("stages":["prestart","poststop"])",
                                                          R"("stages":["prestart"])"},
                                                         {"HOOKSTAGE", "prestart"}}))
                  .ok());
  ASSERT_TRUE(WriteFileAtomic(hooks + "/record-stop.json",
                              absl::StrReplaceAll(text, {{R"("stages":["prestart","poststop"])",
                                                          R"("stages":["poststop"])"},
                                                         {"HOOKSTAGE", "poststop"}}))
                  .ok());
  ASSERT_TRUE(berthd_->Stop().ok());
  ASSERT_TRUE(berthd_
                  ->Start({.config_toml = absl::StrCat(Config(), "[runtime]\nhooks_dirs = [\"",
                                                       hooks, "\"]\n")})
                  .ok())
      << berthd_->log();
  cri::PodSandboxConfig pod = Pod("hooks");
  std::string pod_id = RunPod(pod);
  cri::CreateContainerRequest req;
  req.set_pod_sandbox_id(pod_id);
  *req.mutable_sandbox_config() = pod;
  req.mutable_config()->mutable_metadata()->set_name("hooked");
  req.mutable_config()->mutable_image()->set_image("busybox");
  req.mutable_config()->add_command("/bin/sleep");
  req.mutable_config()->add_command("1000");
  (*req.mutable_config()->mutable_annotations())["io.berth.test.hooks"] = "on";
  cri::CreateContainerResponse resp;
  ASSERT_TRUE(berthd_->runtime().CreateContainer(Ctx().get(), req, &resp).ok());
  ASSERT_TRUE(Start(resp.container_id()).ok());
  EXPECT_TRUE(absl::StrContains(ReadFile(out + "/prestart").value_or(""), resp.container_id()))
      << berthd_->log();
  // A container without the annotation gets no hooks.
  std::string plain = CreateContainer(pod_id, pod, "plain", {"/bin/sleep", "1000"});
  ASSERT_TRUE(Start(plain).ok());
  EXPECT_FALSE(absl::StrContains(ReadFile(out + "/prestart").value_or(""), plain));
  EXPECT_TRUE(RemovePod(pod_id).ok());
  EXPECT_TRUE(absl::StrContains(ReadFile(out + "/poststop").value_or(""), resp.container_id()));
}

TEST_F(LifecycleTest, UpdatePodSandboxResourcesIsRecorded) {
  cri::PodSandboxConfig pod = Pod("podres");
  std::string pod_id = RunPod(pod);
  cri::UpdatePodSandboxResourcesRequest req;
  req.set_pod_sandbox_id(pod_id);
  req.mutable_resources()->set_memory_limit_in_bytes(256 << 20);
  cri::UpdatePodSandboxResourcesResponse resp;
  grpc::Status st = berthd_->runtime().UpdatePodSandboxResources(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  cri::PodSandboxStatusRequest sreq;
  sreq.set_pod_sandbox_id(pod_id);
  sreq.set_verbose(true);
  cri::PodSandboxStatusResponse sresp;
  ASSERT_TRUE(berthd_->runtime().PodSandboxStatus(Ctx().get(), sreq, &sresp).ok());
  EXPECT_TRUE(absl::StrContains(sresp.info().at("info"), absl::StrCat(256 << 20)))
      << sresp.info().at("info");
  req.set_pod_sandbox_id("no-such-pod");
  EXPECT_EQ(berthd_->runtime().UpdatePodSandboxResources(Ctx().get(), req, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

// KEP-4639 with real overlayfs and runc: a pulled image's files (its image_sub_path only) are in
// the container at the mount's path, read-only and not executable, and the image cannot be
// removed while the container exists.
TEST_F(LifecycleTest, AnImageVolumeShowsThePulledImagesFilesReadOnly) {
  ImageToPush data;
  data.layers.push_back(MakeLayer({Dir("models"), File("models/weights", "42\n"),
                                   File("models/run.sh", "#!/bin/sh\necho ran\n", 0755),
                                   Dir("other"), File("other/secret", "not mounted\n")}));
  ASSERT_TRUE(PushImage(registry_->host(), "library/models", {"1"}, data).ok());
  cri::PullImageRequest pull;
  pull.mutable_image()->set_image("models:1");
  cri::PullImageResponse pulled;
  grpc::Status st = berthd_->images().PullImage(Ctx().get(), pull, &pulled);
  ASSERT_TRUE(st.ok()) << st.error_message();

  cri::PodSandboxConfig pod = Pod("imagevol");
  std::string pod_id = RunPod(pod);
  cri::CreateContainerRequest req;
  req.set_pod_sandbox_id(pod_id);
  *req.mutable_sandbox_config() = pod;
  auto* c = req.mutable_config();
  c->mutable_metadata()->set_name("reader");
  c->mutable_image()->set_image("busybox");
  for (const char* a :
       {"/bin/sh", "-c",
        "cat /models/weights; ls /models; (touch /models/new 2>/dev/null && echo writable) || "
        "echo read-only; (/models/run.sh 2>/dev/null && echo executed) || echo not-executable"}) {
    c->add_command(a);
  }
  c->set_log_path("reader.log");
  cri::Mount* m = c->add_mounts();
  m->set_container_path("/models");
  m->mutable_image()->set_image("models:1");
  m->set_image_sub_path("models");
  m->set_readonly(true);
  cri::CreateContainerResponse created;
  st = berthd_->runtime().CreateContainer(Ctx().get(), req, &created);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_TRUE(Start(created.container_id()).ok());
  cri::ContainerStatus s = WaitExited(created.container_id());
  EXPECT_EQ(s.exit_code(), 0);
  std::string log = ReadFile(s.log_path()).value_or("");
  EXPECT_TRUE(absl::StrContains(log, " stdout F 42\n")) << log;
  EXPECT_TRUE(absl::StrContains(log, " stdout F read-only\n")) << log;
  EXPECT_TRUE(absl::StrContains(log, " stdout F not-executable\n")) << log;
  EXPECT_FALSE(absl::StrContains(log, "secret")) << log;  // only the sub path is mounted

  cri::RemoveImageRequest rm;
  rm.mutable_image()->set_image("models:1");
  cri::RemoveImageResponse rm_resp;
  st = berthd_->images().RemoveImage(Ctx().get(), rm, &rm_resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_TRUE(absl::StrContains(st.error_message(), created.container_id())) << st.error_message();

  // An image that was never pulled is NOT_FOUND, naming the mount.
  m->mutable_image()->set_image("never-pulled:1");
  c->mutable_metadata()->set_name("missing");
  st = berthd_->runtime().CreateContainer(Ctx().get(), req, &created);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  EXPECT_TRUE(absl::StrContains(st.error_message(), "mounts[0].image")) << st.error_message();

  EXPECT_TRUE(RemovePod(pod_id).ok());
  st = berthd_->images().RemoveImage(Ctx().get(), rm, &rm_resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
}

TEST_F(LifecycleTest, HundredPodsLeaveNothingBehind) {
  std::vector<std::string> pods;
  for (int i = 0; i < 100; ++i) {
    cri::PodSandboxConfig pod = Pod(absl::StrCat("many", i));
    std::string id = RunPod(pod);
    ASSERT_FALSE(id.empty());
    if (i % 10 == 0) {
      std::string c = CreateContainer(id, pod, "c", {"/bin/sleep", "1000"});
      ASSERT_TRUE(Start(c).ok());
    }
    pods.push_back(id);
  }
  for (const auto& id : pods) ASSERT_TRUE(RemovePod(id).ok());
  cri::ListPodSandboxResponse presp;
  ASSERT_TRUE(
      berthd_->runtime().ListPodSandbox(Ctx().get(), cri::ListPodSandboxRequest(), &presp).ok());
  EXPECT_EQ(presp.items_size(), 0);
  cri::ListContainersResponse cresp;
  ASSERT_TRUE(
      berthd_->runtime().ListContainers(Ctx().get(), cri::ListContainersRequest(), &cresp).ok());
  EXPECT_EQ(cresp.containers_size(), 0);
  // The only mount left under the state dir is the netns directory itself (made shared, as
  // `ip netns` does); no pod's netns, shm or rootfs.
  std::string mounts = ReadFile("/proc/self/mountinfo").value_or("");
  for (absl::string_view line : absl::StrSplit(mounts, '\n')) {
    if (!absl::StrContains(line, berthd_->state_dir())) continue;
    EXPECT_TRUE(absl::StrContains(line, berthd_->state_dir() + "/netns ")) << "left: " << line;
  }
  std::string ps;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string cmd = ReadFile(e.path().string() + "/cmdline").value_or("");
    if (absl::StrContains(cmd, berthd_->state_dir()) && absl::StartsWith(cmd, "/usr/bin/conmon"))
      ps += cmd;
  }
  EXPECT_TRUE(ps.empty()) << "conmon processes left: " << ps;
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::is_empty(berthd_->state_dir() + "/containers", ec));
  EXPECT_TRUE(std::filesystem::is_empty(berthd_->state_dir() + "/sandboxes", ec));
  // Records are gone too: a restart finds nothing.
  ASSERT_TRUE(berthd_->Stop().ok());
  ASSERT_TRUE(berthd_->Start({.config_toml = Config()}).ok());
  presp.Clear();
  ASSERT_TRUE(
      berthd_->runtime().ListPodSandbox(Ctx().get(), cri::ListPodSandboxRequest(), &presp).ok());
  EXPECT_EQ(presp.items_size(), 0);
}

// RuntimeClass: a pod whose RunPodSandbox names the "crun" handler runs, infra container and
// all, under crun with its state in <state_dir>/runtimes/crun, beside a pod on the default runc.
// crun 1.8 refuses hybrid cgroup hierarchies (this development machine's), so the test runs where
// crun can run containers: the cgroup v2 VM of test/vm/run.sh, or a legacy v1 host.
TEST_F(LifecycleTest, APodOnTheCrunHandlerRunsUnderCrunBesideARuncPod) {
  absl::StatusOr<std::string> crun = FindProgram("crun");
  if (!crun.ok()) GTEST_SKIP() << "crun is not installed (apt-get install crun)";
  absl::StatusOr<cgroups::CgroupMode> mode = cgroups::DetectCgroupMode();
  ASSERT_TRUE(mode.ok()) << mode.status();
  if (*mode == cgroups::CgroupMode::kHybrid) {
    GTEST_SKIP() << "crun refuses hybrid cgroup hierarchies (\"cgroups in hybrid mode not "
                    "supported\"); test/vm/run.sh runs this on cgroup v2";
  }
  ASSERT_TRUE(berthd_->Stop().ok());
  ASSERT_TRUE(
      berthd_
          ->Start({.config_toml = absl::StrCat(
                       Config(), "[runtime.handlers.crun]\nruntime_path = \"", *crun, "\"\n")})
          .ok())
      << berthd_->log();
  cri::StatusRequest sreq;
  cri::StatusResponse sresp;
  ASSERT_TRUE(berthd_->runtime().Status(Ctx().get(), sreq, &sresp).ok());
  std::set<std::string> handlers;
  for (const auto& h : sresp.runtime_handlers()) handlers.insert(h.name());
  EXPECT_EQ(handlers, (std::set<std::string>{"", "runc", "crun"}));

  cri::PodSandboxConfig on_crun = Pod("on-crun");
  cri::RunPodSandboxRequest req;
  *req.mutable_config() = on_crun;
  req.set_runtime_handler("crun");
  cri::RunPodSandboxResponse resp;
  grpc::Status st = berthd_->runtime().RunPodSandbox(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message() << berthd_->log();
  const std::string crun_pod = resp.pod_sandbox_id();
  const std::string crun_ctr = CreateContainer(crun_pod, on_crun, "c", {"/bin/sleep", "1000"});
  ASSERT_TRUE(Start(crun_ctr).ok());
  cri::PodSandboxConfig on_runc = Pod("on-runc");
  const std::string runc_pod = RunPod(on_runc);
  const std::string runc_ctr = CreateContainer(runc_pod, on_runc, "c", {"/bin/sleep", "1000"});
  ASSERT_TRUE(Start(runc_ctr).ok());

  auto listed = [](const std::vector<std::string>& argv) {
    absl::StatusOr<RunResult> r = RunProcess(argv);
    EXPECT_TRUE(r.ok() && r->ok()) << (r.ok() ? DescribeFailure(argv, *r) : r.status().ToString());
    return r.ok() ? r->out : std::string();
  };
  const std::string crun_list =
      listed({*crun, "--root", berthd_->state_dir() + "/runtimes/crun", "list"});
  const std::string runc_list = listed({"runc", "--root", berthd_->state_dir() + "/runc", "list"});
  for (const std::string& id : {crun_pod, crun_ctr}) {
    EXPECT_TRUE(absl::StrContains(crun_list, id)) << id << " not in crun's list:\n" << crun_list;
    EXPECT_FALSE(absl::StrContains(runc_list, id)) << id << " in runc's list:\n" << runc_list;
  }
  for (const std::string& id : {runc_pod, runc_ctr}) {
    EXPECT_TRUE(absl::StrContains(runc_list, id)) << id << " not in runc's list:\n" << runc_list;
    EXPECT_FALSE(absl::StrContains(crun_list, id)) << id << " in crun's list:\n" << crun_list;
  }
  cri::PodSandboxStatusRequest psreq;
  psreq.set_pod_sandbox_id(crun_pod);
  cri::PodSandboxStatusResponse psresp;
  ASSERT_TRUE(berthd_->runtime().PodSandboxStatus(Ctx().get(), psreq, &psresp).ok());
  EXPECT_EQ(psresp.status().runtime_handler(), "crun");

  cri::ExecSyncRequest exec;
  exec.set_container_id(crun_ctr);
  exec.add_cmd("/bin/echo");
  exec.add_cmd("from crun");
  exec.set_timeout(30);
  cri::ExecSyncResponse exec_resp;
  st = berthd_->runtime().ExecSync(Ctx().get(), exec, &exec_resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(exec_resp.exit_code(), 0);
  EXPECT_EQ(exec_resp.stdout(), "from crun\n");

  // A berthd restart finds the crun containers through crun.
  berthd_->Kill();
  ASSERT_TRUE(
      berthd_
          ->Start({.config_toml = absl::StrCat(
                       Config(), "[runtime.handlers.crun]\nruntime_path = \"", *crun, "\"\n")})
          .ok())
      << berthd_->log();
  EXPECT_EQ(Status(crun_ctr).state(), cri::CONTAINER_RUNNING);
  cri::StopContainerRequest stop;
  stop.set_container_id(crun_ctr);
  stop.set_timeout(0);  // SIGKILL at once
  cri::StopContainerResponse stop_resp;
  ASSERT_TRUE(berthd_->runtime().StopContainer(Ctx().get(), stop, &stop_resp).ok());
  EXPECT_EQ(WaitExited(crun_ctr).exit_code(), 137);
  EXPECT_TRUE(RemovePod(crun_pod).ok());
  EXPECT_TRUE(RemovePod(runc_pod).ok());
  const std::string after =
      listed({*crun, "--root", berthd_->state_dir() + "/runtimes/crun", "list"});
  EXPECT_FALSE(absl::StrContains(after, crun_ctr)) << after;
  EXPECT_FALSE(absl::StrContains(after, crun_pod)) << after;
}

}  // namespace
}  // namespace berth::test
