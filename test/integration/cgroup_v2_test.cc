// berth on a pure cgroup v2 host, with the cgroup driver the VM chose (BERTH_TEST_CGROUP_DRIVER):
// limits land in v2 files, stats and OOM kills come from them, updates rewrite them, systemd
// scopes are named as kubelet expects and go away, and (BERTH_VM_SYSTEM_SOCKET) berthd under
// deploy/berthd.service restarts without touching its containers. Skips on a v1/hybrid host;
// runs for real in the VM (test/vm/run.sh).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"
#include "runtime/cgroups/mode.h"
#include "test/util/cri_fixture.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace berth::test {
namespace {

std::string Driver() {
  const char* d = getenv("BERTH_TEST_CGROUP_DRIVER");
  return d != nullptr && *d != '\0' ? d : "cgroupfs";
}

std::string OciRuntime() {
  const char* r = getenv("BERTH_TEST_RUNTIME_PATH");
  return r != nullptr && *r != '\0' ? r : "runc";
}

// The v2 directory (relative to /sys/fs/cgroup) of a process: the "0::" line of /proc/<pid>/cgroup.
std::string CgroupOf(int pid) {
  std::string text = ReadFile(absl::StrCat("/proc/", pid, "/cgroup")).value_or("");
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::ConsumePrefix(&line, "0::")) return std::string(line);
  }
  return "";
}

std::string CgroupFile(const std::string& dir, const std::string& file) {
  std::string v =
      ReadFile(absl::StrCat(cgroups::kCgroupRoot, dir, "/", file)).value_or("<missing>");
  return std::string(absl::StripTrailingAsciiWhitespace(v));
}

// systemctl show -p PROP --value UNIT.
std::string SystemdProperty(const std::string& unit, const std::string& prop) {
  absl::StatusOr<RunResult> r = RunProcess({"systemctl", "show", "-p", prop, "--value", unit});
  if (!r.ok()) return "";
  return std::string(absl::StripTrailingAsciiWhitespace(r->out));
}

class CgroupV2Test : public CriFixture {
 public:
  static void SetUpTestSuite() {
    absl::StatusOr<cgroups::CgroupMode> mode = cgroups::DetectCgroupMode();
    if (!mode.ok() || *mode != cgroups::CgroupMode::kUnified) {
      skip_ = absl::StrCat("needs a pure cgroup v2 host (this one is ",
                           mode.ok() ? cgroups::CgroupModeName(*mode) : mode.status().ToString(),
                           "): run test/vm/run.sh");
      return;
    }
    CriFixture::SetUpTestSuite();
  }
  void SetUp() override {
    if (!skip_.empty()) {
      // The VM boots a pure v2 host: a skip there would hide a regression.
      ASSERT_EQ(getenv("BERTH_VM"), nullptr) << skip_;
      GTEST_SKIP() << skip_;
    }
    CriFixture::SetUp();
  }

 protected:
  // A pod in the cgroup kubelet would give a Burstable pod with this driver.
  cri::PodSandboxConfig V2Pod(const std::string& name) {
    cri::PodSandboxConfig pod = Pod(name);
    std::string uid = absl::StrReplaceAll(pod.metadata().uid(), {{"-", "_"}});
    pod.mutable_linux()->set_cgroup_parent(
        Driver() == "systemd" ? absl::StrCat("kubepods-burstable-pod", uid, ".slice")
                              : absl::StrCat("/kubepods/burstable/pod", uid));
    return pod;
  }

  nlohmann::json Info(const std::string& id) {
    cri::ContainerStatusRequest req;
    req.set_container_id(id);
    req.set_verbose(true);
    cri::ContainerStatusResponse resp;
    grpc::Status st = berthd_->runtime().ContainerStatus(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return nlohmann::json::parse(resp.info().at("info"), nullptr, false);
  }
  int Pid(const std::string& id) { return Info(id).value("pid", 0); }

  // A started container of `pod` running `cmd` with `resources`.
  std::string RunContainer(const std::string& pod_id, const cri::PodSandboxConfig& pod,
                           const std::string& name, std::vector<std::string> cmd,
                           const cri::LinuxContainerResources* resources = nullptr) {
    cri::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod_id);
    *req.mutable_sandbox_config() = pod;
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name(name);
    c->mutable_image()->set_image("busybox");
    for (auto& a : cmd) c->add_command(a);
    c->set_log_path(name + ".log");
    if (resources != nullptr) *c->mutable_linux()->mutable_resources() = *resources;
    cri::CreateContainerResponse resp;
    grpc::Status st = berthd_->runtime().CreateContainer(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    if (!st.ok()) return "";
    st = Start(resp.container_id());
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.container_id();
  }

  static std::string skip_;
};

std::string CgroupV2Test::skip_;

TEST_F(CgroupV2Test, ContainerLimitsAreV2FilesInTheKubeletCgroup) {
  cri::PodSandboxConfig pod = V2Pod("limits");
  std::string pod_id = RunPod(pod);
  ASSERT_FALSE(pod_id.empty());
  cri::LinuxContainerResources r;
  r.set_cpu_period(100000);
  r.set_cpu_quota(50000);
  r.set_cpu_shares(512);
  r.set_memory_limit_in_bytes(64 << 20);
  std::vector<std::string> sizes = cgroups::HugetlbPageSizes(cgroups::CgroupMode::kUnified);
  bool huge2m = std::find(sizes.begin(), sizes.end(), "2MB") != sizes.end();
  if (huge2m) {
    auto* h = r.add_hugepage_limits();
    h->set_page_size("2MB");
    h->set_limit(4 << 20);
  }
  std::string id = RunContainer(pod_id, pod, "limited", {"sleep", "3600"}, &r);
  ASSERT_FALSE(id.empty());
  std::string dir = CgroupOf(Pid(id));
  std::string uid = absl::StrReplaceAll(pod.metadata().uid(), {{"-", "_"}});
  if (Driver() == "systemd") {
    EXPECT_EQ(dir, absl::StrCat("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod",
                                uid, ".slice/berth-", id, ".scope"));
  } else {
    EXPECT_EQ(dir, absl::StrCat("/kubepods/burstable/pod", uid, "/berth-", id));
  }
  EXPECT_EQ(CgroupFile(dir, "cpu.max"), "50000 100000");
  EXPECT_EQ(CgroupFile(dir, "memory.max"), std::to_string(64 << 20));
  // runc maps shares 2..262144 onto weight 1..10000 linearly (512 -> 20); crun's mapping differs.
  if (OciRuntime() == "runc") {
    EXPECT_EQ(CgroupFile(dir, "cpu.weight"), "20");
  } else {
    EXPECT_NE(CgroupFile(dir, "cpu.weight"), "100");
  }
  if (huge2m) {
    EXPECT_EQ(CgroupFile(dir, "hugetlb.2MB.max"), std::to_string(4 << 20));
  }
  // Pids are counted in the container's cgroup (the pod-level limit is kubelet's).
  EXPECT_EQ(CgroupFile(dir, "pids.current"), "1");
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

TEST_F(CgroupV2Test, StatsComeFromV2Files) {
  cri::PodSandboxConfig pod = V2Pod("stats");
  std::string pod_id = RunPod(pod);
  ASSERT_FALSE(pod_id.empty());
  cri::LinuxContainerResources r;
  r.set_memory_limit_in_bytes(256 << 20);
  // Spins a little, keeps 4 MiB in its writable layer, then sleeps.
  std::string id = RunContainer(pod_id, pod, "busy",
                                {"sh", "-c",
                                 "dd if=/dev/zero of=/layer-file bs=1M count=4; i=0; "
                                 "while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 3600"},
                                &r);
  ASSERT_FALSE(id.empty());
  std::string dir = CgroupOf(Pid(id));
  cri::ContainerStats s;
  for (int i = 0; i < 600; ++i) {  // bounds a hang only
    cri::ContainerStatsRequest req;
    req.set_container_id(id);
    cri::ContainerStatsResponse resp;
    grpc::Status st = berthd_->runtime().ContainerStats(Ctx().get(), req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    s = resp.stats();
    if (s.cpu().usage_core_nano_seconds().value() > 0 &&
        s.memory().working_set_bytes().value() > 0 &&
        s.writable_layer().used_bytes().value() >= (4u << 20)) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GT(s.cpu().usage_core_nano_seconds().value(), 0u);
  EXPECT_GT(s.memory().working_set_bytes().value(), 0u);
  EXPECT_GT(s.memory().usage_bytes().value(), 0u);
  EXPECT_GE(s.memory().usage_bytes().value(), s.memory().working_set_bytes().value());
  // memory.max minus the working set.
  EXPECT_EQ(s.memory().available_bytes().value(),
            (256u << 20) - s.memory().working_set_bytes().value());
  EXPECT_GE(s.writable_layer().used_bytes().value(), 4u << 20);
  // What memory.stat and cpu.stat say right now is at least what was reported before.
  uint64_t current = 0;
  ASSERT_TRUE(absl::SimpleAtoi(CgroupFile(dir, "memory.current"), &current)) << dir;
  EXPECT_GT(current, 0u);
  EXPECT_TRUE(absl::StrContains(CgroupFile(dir, "cpu.stat"), "usage_usec"));

  cri::PodSandboxStatsRequest preq;
  preq.set_pod_sandbox_id(pod_id);
  cri::PodSandboxStatsResponse presp;
  grpc::Status st = berthd_->runtime().PodSandboxStats(Ctx().get(), preq, &presp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const cri::LinuxPodSandboxStats& ps = presp.stats().linux();
  EXPECT_GT(ps.cpu().usage_core_nano_seconds().value(), 0u);
  EXPECT_GT(ps.memory().working_set_bytes().value(), 0u);
  // pause, and the container's sh (its dd has exited).
  EXPECT_GE(ps.process().process_count().value(), 2u);
  ASSERT_EQ(ps.containers_size(), 1);
  EXPECT_EQ(ps.containers(0).attributes().id(), id);
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

TEST_F(CgroupV2Test, OomKillIsReportedFromMemoryEvents) {
  cri::PodSandboxConfig pod = V2Pod("oom");
  std::string pod_id = RunPod(pod);
  ASSERT_FALSE(pod_id.empty());
  cri::LinuxContainerResources r;
  r.set_memory_limit_in_bytes(16 << 20);
  r.set_memory_swap_limit_in_bytes(16 << 20);  // no swapping instead of dying
  // dd's 64 MiB buffer cannot fit.
  std::string id = RunContainer(pod_id, pod, "oom",
                                {"dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"}, &r);
  ASSERT_FALSE(id.empty());
  cri::ContainerStatus s = WaitExited(id, 120);
  EXPECT_EQ(s.reason(), "OOMKilled") << s.message();
  EXPECT_EQ(s.exit_code(), 137);
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

TEST_F(CgroupV2Test, UpdateContainerResourcesRewritesV2Files) {
  cri::PodSandboxConfig pod = V2Pod("update");
  std::string pod_id = RunPod(pod);
  ASSERT_FALSE(pod_id.empty());
  cri::LinuxContainerResources r;
  r.set_cpu_period(100000);
  r.set_cpu_quota(50000);
  r.set_memory_limit_in_bytes(64 << 20);
  std::string id = RunContainer(pod_id, pod, "resized", {"sleep", "3600"}, &r);
  ASSERT_FALSE(id.empty());
  std::string dir = CgroupOf(Pid(id));
  ASSERT_EQ(CgroupFile(dir, "memory.max"), std::to_string(64 << 20));

  cri::UpdateContainerResourcesRequest ureq;
  ureq.set_container_id(id);
  auto* lr = ureq.mutable_linux();
  lr->set_cpu_period(100000);
  lr->set_cpu_quota(20000);
  lr->set_memory_limit_in_bytes(128 << 20);
  cri::UpdateContainerResourcesResponse uresp;
  grpc::Status st = berthd_->runtime().UpdateContainerResources(Ctx().get(), ureq, &uresp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(CgroupFile(dir, "memory.max"), std::to_string(128 << 20));
  EXPECT_EQ(CgroupFile(dir, "cpu.max"), "20000 100000");
  cri::ContainerStatus cs = Status(id);
  EXPECT_EQ(cs.resources().linux().memory_limit_in_bytes(), 128 << 20);
  EXPECT_EQ(cs.resources().linux().cpu_quota(), 20000);

  // The pod-level resources kubelet sends for in-place pod resize are kept and shown.
  cri::UpdatePodSandboxResourcesRequest preq;
  preq.set_pod_sandbox_id(pod_id);
  preq.mutable_resources()->set_memory_limit_in_bytes(256 << 20);
  cri::UpdatePodSandboxResourcesResponse presp;
  st = berthd_->runtime().UpdatePodSandboxResources(Ctx().get(), preq, &presp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  cri::PodSandboxStatusRequest sreq;
  sreq.set_pod_sandbox_id(pod_id);
  sreq.set_verbose(true);
  cri::PodSandboxStatusResponse sresp;
  st = berthd_->runtime().PodSandboxStatus(Ctx().get(), sreq, &sresp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(absl::StrContains(sresp.info().at("info"), std::to_string(256 << 20)))
      << sresp.info().at("info");
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

TEST_F(CgroupV2Test, CgroupsAreGoneAfterRemoval) {
  cri::PodSandboxConfig pod = V2Pod("gone");
  std::string pod_id = RunPod(pod);
  ASSERT_FALSE(pod_id.empty());
  std::string id = RunContainer(pod_id, pod, "c", {"sleep", "3600"});
  ASSERT_FALSE(id.empty());
  std::string dir = CgroupOf(Pid(id));
  ASSERT_FALSE(dir.empty());
  std::string scope = absl::StrCat("berth-", id, ".scope");
  std::string slice = std::string(cgroups::kCgroupRoot) + dir.substr(0, dir.rfind('/'));
  if (Driver() == "systemd") {
    // One transient scope per container, made through systemd, inside the pod's slice.
    EXPECT_EQ(SystemdProperty(scope, "ActiveState"), "active");
    EXPECT_EQ(SystemdProperty(scope, "Slice"), pod.linux().cgroup_parent());
    EXPECT_EQ(SystemdProperty(pod.linux().cgroup_parent(), "ActiveState"), "active");
  }
  ASSERT_TRUE(RemovePod(pod_id).ok());
  EXPECT_FALSE(PathExists(absl::StrCat(cgroups::kCgroupRoot, dir))) << dir;
  if (Driver() == "systemd") {
    std::string state = SystemdProperty(scope, "ActiveState");
    EXPECT_TRUE(state == "inactive" || state.empty()) << scope << " is " << state;
  }
  // The pod's slice or directory is kubelet's to remove; it holds nothing of berth's any more.
  std::string left = ReadFile(slice + "/cgroup.procs").value_or("");
  EXPECT_EQ(left, "") << slice;
}

TEST_F(CgroupV2Test, UserNamespacePodRunsWithLimits) {
  // The pod's root (an unmapped host uid) must be able to walk to the infra rootfs.
  ASSERT_EQ(chmod(dir_.path().c_str(), 0711), 0);
  cri::PodSandboxConfig pod = V2Pod("userns");
  auto* u = pod.mutable_linux()
                ->mutable_security_context()
                ->mutable_namespace_options()
                ->mutable_userns_options();
  u->set_mode(cri::POD);
  for (auto* m : {u->add_uids(), u->add_gids()}) {
    m->set_container_id(0);
    m->set_host_id(300000);
    m->set_length(65536);
  }
  std::string pod_id = RunPod(pod);
  ASSERT_FALSE(pod_id.empty());
  cri::LinuxContainerResources r;
  r.set_memory_limit_in_bytes(64 << 20);
  std::string id = RunContainer(pod_id, pod, "c", {"sleep", "3600"}, &r);
  ASSERT_FALSE(id.empty());
  int pid = Pid(id);
  std::string dir = CgroupOf(pid);
  EXPECT_EQ(CgroupFile(dir, "memory.max"), std::to_string(64 << 20));
  std::string uid_map = ReadFile(absl::StrCat("/proc/", pid, "/uid_map")).value_or("");
  EXPECT_TRUE(absl::StrContains(uid_map, "300000")) << uid_map;
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

// berthd as the node runs it: deploy/berthd.service (Type=notify, Delegate=yes, KillMode=process),
// reached at BERTH_VM_SYSTEM_SOCKET. The VM's guest script sets it.
class SystemBerthdTest : public CgroupV2Test {
 public:
  void SetUp() override {
    const char* sock = getenv("BERTH_VM_SYSTEM_SOCKET");
    if (sock == nullptr || *sock == '\0') {
      GTEST_SKIP() << "no berthd.service to restart (BERTH_VM_SYSTEM_SOCKET unset; the VM sets it)";
    }
    CgroupV2Test::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    socket_ = sock;
    Connect();
  }

 protected:
  void Connect() {
    channel_ =
        grpc::CreateChannel(absl::StrCat("unix://", socket_), grpc::InsecureChannelCredentials());
    runtime_ = cri::RuntimeService::NewStub(channel_);
    images_ = cri::ImageService::NewStub(channel_);
  }
  std::string socket_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<cri::RuntimeService::Stub> runtime_;
  std::unique_ptr<cri::ImageService::Stub> images_;
};

TEST_F(SystemBerthdTest, RestartThroughSystemdLeavesContainersRunning) {
  EXPECT_EQ(SystemdProperty("berthd.service", "Type"), "notify");
  EXPECT_EQ(SystemdProperty("berthd.service", "ActiveState"), "active");
  EXPECT_EQ(SystemdProperty("berthd.service", "Delegate"), "yes");
  cri::StatusRequest sreq;
  cri::StatusResponse sresp;
  grpc::Status st = runtime_->Status(Ctx().get(), sreq, &sresp);
  ASSERT_TRUE(st.ok()) << st.error_message();

  // The service's berthd pulls busybox from this test's loopback registry (plain HTTP to a
  // loopback registry needs no configuration).
  const std::string image = absl::StrCat(registry_->host(), "/library/busybox:latest");
  cri::PullImageRequest pull;
  pull.mutable_image()->set_image(image);
  cri::PullImageResponse presp;
  st = images_->PullImage(Ctx(120).get(), pull, &presp);
  ASSERT_TRUE(st.ok()) << st.error_message();

  cri::PodSandboxConfig pod = V2Pod("restart");
  cri::RunPodSandboxRequest rreq;
  *rreq.mutable_config() = pod;
  cri::RunPodSandboxResponse rresp;
  st = runtime_->RunPodSandbox(Ctx().get(), rreq, &rresp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const std::string pod_id = rresp.pod_sandbox_id();
  cri::CreateContainerRequest creq;
  creq.set_pod_sandbox_id(pod_id);
  *creq.mutable_sandbox_config() = pod;
  creq.mutable_config()->mutable_metadata()->set_name("sleeper");
  creq.mutable_config()->mutable_image()->set_image(image);
  creq.mutable_config()->add_command("sleep");
  creq.mutable_config()->add_command("3600");
  cri::CreateContainerResponse cresp;
  st = runtime_->CreateContainer(Ctx().get(), creq, &cresp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const std::string id = cresp.container_id();
  cri::StartContainerRequest startreq;
  startreq.set_container_id(id);
  cri::StartContainerResponse startresp;
  st = runtime_->StartContainer(Ctx().get(), startreq, &startresp);
  ASSERT_TRUE(st.ok()) << st.error_message();

  auto pid_of = [&]() {
    cri::ContainerStatusRequest req;
    req.set_container_id(id);
    req.set_verbose(true);
    cri::ContainerStatusResponse resp;
    grpc::Status s = runtime_->ContainerStatus(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return std::make_pair(
        resp.status().state(),
        nlohmann::json::parse(resp.info().at("info"), nullptr, false).value("pid", 0));
  };
  auto [state, pid] = pid_of();
  ASSERT_EQ(state, cri::CONTAINER_RUNNING);
  ASSERT_GT(pid, 0);
  std::string dir = CgroupOf(pid);
  std::string main_pid = SystemdProperty("berthd.service", "MainPID");

  // Type=notify: systemctl returns once the new berthd has said READY=1.
  absl::StatusOr<RunResult> restart = RunProcess({"systemctl", "restart", "berthd.service"});
  ASSERT_TRUE(restart.ok()) << restart.status();
  ASSERT_TRUE(restart->ok()) << restart->err;
  EXPECT_EQ(SystemdProperty("berthd.service", "ActiveState"), "active");
  EXPECT_NE(SystemdProperty("berthd.service", "MainPID"), main_pid);
  Connect();
  EXPECT_EQ(kill(pid, 0), 0) << "the container's process did not survive the restart";
  EXPECT_EQ(CgroupOf(pid), dir);
  auto [state2, pid2] = pid_of();
  EXPECT_EQ(state2, cri::CONTAINER_RUNNING);
  EXPECT_EQ(pid2, pid);
  if (Driver() == "systemd") {
    EXPECT_EQ(SystemdProperty(absl::StrCat("berth-", id, ".scope"), "ActiveState"), "active");
  }

  cri::StopPodSandboxRequest stop;
  stop.set_pod_sandbox_id(pod_id);
  cri::StopPodSandboxResponse stopresp;
  st = runtime_->StopPodSandbox(Ctx().get(), stop, &stopresp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  cri::RemovePodSandboxRequest rm;
  rm.set_pod_sandbox_id(pod_id);
  cri::RemovePodSandboxResponse rmresp;
  st = runtime_->RemovePodSandbox(Ctx().get(), rm, &rmresp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_FALSE(PathExists(absl::StrCat(cgroups::kCgroupRoot, dir))) << dir;
}

}  // namespace
}  // namespace berth::test
