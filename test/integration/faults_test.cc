// Faults underneath berth (issue #17), against a real berthd, runc, conmon and CNI plugins:
// a node reboot, dead conmons, cgroup leaks, runc/conmon/CNI/disk failures, and a load run
// that must leave nothing behind. Each test's berthd has a cgroup parent of its own, so what it
// leaves is told apart from other berthds on the machine.
#include <signal.h>
#include <sys/wait.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include "absl/base/config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "test/util/cri_fixture.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace berth::test {
namespace {

// A bridge of this process's own (two runs of the suite may overlap), without a host address,
// so that two such bridges on the same subnet do not fight over routes.
std::string Bridge() { return absl::StrCat("bft", getpid() % 100000); }
constexpr char kSubnetPrefix[] = "10.251.9.";
constexpr char kCgroupRoot[] = "/sys/fs/cgroup";

std::vector<std::string> CgroupHierarchies() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(kCgroupRoot, ec)) {
    if (e.is_symlink() || !e.is_directory()) continue;
    if (PathExists(e.path().string() + "/cgroup.procs")) out.push_back(e.path().string());
  }
  if (out.empty() && PathExists(std::string(kCgroupRoot) + "/cgroup.procs"))
    out.push_back(kCgroupRoot);
  return out;
}

std::vector<pid_t> ReadPids(const std::string& file) {
  std::vector<pid_t> out;
  std::ifstream in(file);
  pid_t p;
  while (in >> p) out.push_back(p);
  return out;
}

bool Alive(pid_t pid) { return pid > 0 && kill(pid, 0) == 0; }

// Processes whose argv holds `needle` and starts with `prog` (a path suffix).
std::vector<pid_t> ProcessesWith(const std::string& prog, const std::string& needle) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(e.path().filename().string(), &pid)) continue;
    std::string cmd = ReadFile(e.path().string() + "/cmdline").value_or("");
    std::vector<std::string> argv = absl::StrSplit(cmd, '\0');
    if (argv.empty() || !absl::EndsWith(argv[0], prog)) continue;
    for (const std::string& a : argv) {
      if (absl::StrContains(a, needle)) {
        out.push_back(pid);
        break;
      }
    }
  }
  return out;
}

// Processes with `var` (NAME=value) in their environment and `also` in some variable.
std::vector<pid_t> ProcessesWithEnv(const std::string& var, const std::string& also) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(e.path().filename().string(), &pid)) continue;
    bool has_var = false, has_also = false;
    for (absl::string_view v :
         absl::StrSplit(ReadFile(e.path().string() + "/environ").value_or(""), '\0')) {
      has_var = has_var || v == var;
      has_also = has_also || absl::StrContains(v, also);
    }
    if (has_var && has_also) out.push_back(pid);
  }
  return out;
}

template <typename F>
bool WaitFor(F done, int seconds = 20) {
  for (int i = 0; i < seconds * 20; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

class FaultsTest : public CriFixture {
 protected:
  void SetUp() override {
    // CriFixture's SetUp, on this suite's own config from the first start.
    cgroup_parent_ = absl::StrCat("/berth-faults-", getpid(), "-", ++instances_);
    ipam_ = dir_.path() + "/ipam";
    bin_ = dir_.path() + "/bin";
    ASSERT_TRUE(MakeDirs(bin_).ok());
    ASSERT_TRUE(MakeDirs(dir_.path() + "/cni").ok());
    // runc and conmon behind wrappers the tests can break, remove and restore.
    for (const std::string name : {"runc", "conmon"}) {
      absl::StatusOr<std::string> path = FindProgram(name);
      ASSERT_TRUE(path.ok()) << path.status();
      ASSERT_TRUE(WriteFileAtomic(
                      bin_ + "/" + name,
                      absl::StrCat("#!/bin/sh\n", "if [ -e ", bin_, "/", name, ".broken ]; then\n",
                                   "  echo \"", name, ": injected failure\" >&2\n", "  exit 1\n",
                                   "fi\n", "exec ", *path, " \"$@\"\n"),
                      0755)
                      .ok());
    }
    WriteConflist("");
    berthd_ = std::make_unique<Berthd>(dir_.path() + "/d");
    ASSERT_TRUE(berthd_->Start({.config_toml = FaultsConfig()}).ok()) << berthd_->log();
    cri::PullImageRequest pull;
    pull.mutable_image()->set_image("busybox");
    cri::PullImageResponse presp;
    grpc::Status st = berthd_->images().PullImage(Ctx().get(), pull, &presp);
    ASSERT_TRUE(st.ok()) << st.error_message() << berthd_->log();
  }

  void TearDown() override {
    // BERTH_FAULTS_KEEP_LOGS=dir keeps each test's berthd log there.
    if (const char* keep = getenv("BERTH_FAULTS_KEEP_LOGS");
        keep != nullptr && berthd_ != nullptr) {
      const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
      (void)WriteFileAtomic(absl::StrCat(keep, "/", info->name(), ".log"), berthd_->log());
    }
    berthd_.reset();
    RunProcess({"ip", "link", "delete", Bridge()}).IgnoreError();
    // Whatever a failed test left in our cgroup parent: its processes, then the directories.
    for (const std::string& h : CgroupHierarchies()) {
      const std::string parent = h + cgroup_parent_;
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(parent, ec)) {
        for (pid_t p : ReadPids(e.path().string() + "/cgroup.procs")) kill(p, SIGKILL);
      }
    }
    for (const std::string& h : CgroupHierarchies()) {
      const std::string parent = h + cgroup_parent_;
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(parent, ec)) {
        if (!e.is_directory()) continue;
        WaitFor([&] { return rmdir(e.path().c_str()) == 0 || errno == ENOENT; }, 5);
      }
      rmdir(parent.c_str());
    }
  }

  // The CNI network: a bridge with host-local IPAM in the test's directory, then `extra` plugins.
  void WriteConflist(const std::string& extra) {
    ASSERT_TRUE(
        WriteFileAtomic(
            dir_.path() + "/cni/10-lo.conflist",
            absl::StrCat(R"({"cniVersion":"1.0.0","name":"berthft","plugins":[)",
                         R"({"type":"bridge","bridge":")", Bridge(),
                         R"(","isGateway":false,"ipMasq":false,)",
                         R"("ipam":{"type":"host-local","ranges":[[{"subnet":")", kSubnetPrefix,
                         R"(0/24"}]],"dataDir":")", ipam_, R"("}})", extra, "]}"))
            .ok());
  }

  std::string FaultsConfig(const std::string& extra_network = "",
                           const std::string& extra_tables = "") const {
    return absl::StrCat("[network]\ncni_conf_dir = \"", dir_.path(), "/cni\"\n",
                        "cni_bin_dirs = [\"", bin_, "\", \"/usr/lib/cni\", \"/opt/cni/bin\"]\n",
                        extra_network, "[runtime]\nruntime_path = \"", bin_,
                        "/runc\"\nconmon_path = \"", bin_,
                        "/conmon\"\ncgroup_driver = \"cgroupfs\"\ndefault_cgroup_parent = \"",
                        cgroup_parent_, "\"\n", "[registries.\"docker.io\"]\nmirrors = [\"http://",
                        registry_->host(), "\"]\n", extra_tables);
  }

  void Break(const std::string& part) {
    ASSERT_TRUE(WriteFileAtomic(bin_ + "/" + part + ".broken", "").ok());
  }
  void Mend(const std::string& part) { unlink((bin_ + "/" + part + ".broken").c_str()); }
  void Hide(const std::string& part) {
    ASSERT_EQ(rename((bin_ + "/" + part).c_str(), (bin_ + "/" + part + ".hidden").c_str()), 0);
  }
  void Unhide(const std::string& part) {
    ASSERT_EQ(rename((bin_ + "/" + part + ".hidden").c_str(), (bin_ + "/" + part).c_str()), 0);
  }

  grpc::Status TryRunPod(const cri::PodSandboxConfig& config, std::string* id = nullptr) {
    cri::RunPodSandboxRequest req;
    *req.mutable_config() = config;
    cri::RunPodSandboxResponse resp;
    grpc::Status st = berthd_->runtime().RunPodSandbox(Ctx().get(), req, &resp);
    if (id != nullptr) *id = resp.pod_sandbox_id();
    return st;
  }

  grpc::Status TryCreate(const std::string& pod_id, const cri::PodSandboxConfig& pod,
                         const std::string& name, std::vector<std::string> cmd,
                         std::string* id = nullptr) {
    cri::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod_id);
    *req.mutable_sandbox_config() = pod;
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name(name);
    c->mutable_image()->set_image("busybox");
    for (auto& a : cmd) c->add_command(a);
    c->set_log_path(name + ".log");
    cri::CreateContainerResponse resp;
    grpc::Status st = berthd_->runtime().CreateContainer(Ctx().get(), req, &resp);
    if (id != nullptr) *id = resp.container_id();
    return st;
  }

  cri::PodSandboxStatus PodStatus(const std::string& id) {
    cri::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(id);
    cri::PodSandboxStatusResponse resp;
    grpc::Status st = berthd_->runtime().PodSandboxStatus(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.status();
  }

  grpc::Status ExecSync(const std::string& id) {
    cri::ExecSyncRequest req;
    req.set_container_id(id);
    req.add_cmd("/bin/true");
    req.set_timeout(10);
    cri::ExecSyncResponse resp;
    return berthd_->runtime().ExecSync(Ctx().get(), req, &resp);
  }

  std::vector<std::string> PodIds() {
    cri::ListPodSandboxResponse resp;
    EXPECT_TRUE(berthd_->runtime().ListPodSandbox(Ctx().get(), {}, &resp).ok());
    std::vector<std::string> out;
    for (const auto& p : resp.items()) out.push_back(p.id());
    return out;
  }
  std::vector<std::string> ContainerIds() {
    cri::ListContainersResponse resp;
    EXPECT_TRUE(berthd_->runtime().ListContainers(Ctx().get(), {}, &resp).ok());
    std::vector<std::string> out;
    for (const auto& c : resp.containers()) out.push_back(c.id());
    return out;
  }

  // The processes in container (or pod) id's cgroup.
  std::vector<pid_t> ProcsOf(const std::string& id) {
    for (const std::string& h : CgroupHierarchies()) {
      if (absl::EndsWith(h, "/pids") || h == kCgroupRoot) {
        return ReadPids(absl::StrCat(h, cgroup_parent_, "/berth-", id, "/cgroup.procs"));
      }
    }
    return {};
  }
  pid_t ConmonOf(const std::string& id) {
    std::vector<pid_t> p = ProcessesWith("conmon", id);
    return p.empty() ? 0 : p.front();
  }

  // `berth-*` cgroup directories left in our parent, in any hierarchy.
  std::vector<std::string> CgroupsLeft() {
    std::vector<std::string> out;
    for (const std::string& h : CgroupHierarchies()) {
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(h + cgroup_parent_, ec)) {
        if (e.is_directory() && absl::StartsWith(e.path().filename().string(), "berth-")) {
          out.push_back(e.path().string());
        }
      }
    }
    return out;
  }
  size_t IpReservations() {
    size_t n = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::recursive_directory_iterator(ipam_, ec)) {
      if (absl::StartsWith(e.path().filename().string(), kSubnetPrefix)) ++n;
    }
    return n;
  }
  std::vector<std::string> MountsUnderStateDir() {
    std::vector<std::string> out;
    for (absl::string_view line :
         absl::StrSplit(ReadFile("/proc/self/mountinfo").value_or(""), '\n')) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
      if (f.size() < 5) continue;
      const std::string point(f[4]);
      if (point == berthd_->state_dir() + "/netns") continue;  // the shared netns dir itself
      if (absl::StartsWith(point, berthd_->state_dir() + "/")) out.push_back(point);
    }
    return out;
  }
  std::vector<std::string> Entries(const std::string& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec))
      out.push_back(e.path().string());
    return out;
  }

  // One pod's life through CRI: run, create, start, exec, stop, remove the container, stop and
  // remove the pod. Stops at the first call that fails (the one berthd died in).
  grpc::Status PodLife(const std::string& name) {
    cri::PodSandboxConfig pod = Pod(name);
    std::string pod_id, c;
    if (grpc::Status st = TryRunPod(pod, &pod_id); !st.ok()) return st;
    if (grpc::Status st = TryCreate(pod_id, pod, "c", {"/bin/sleep", "1000"}, &c); !st.ok()) {
      return st;
    }
    if (grpc::Status st = Start(c); !st.ok()) return st;
    if (grpc::Status st = ExecSync(c); !st.ok()) return st;
    cri::StopContainerRequest stop;
    stop.set_container_id(c);
    stop.set_timeout(0);
    cri::StopContainerResponse stop_resp;
    if (grpc::Status st = berthd_->runtime().StopContainer(Ctx().get(), stop, &stop_resp);
        !st.ok()) {
      return st;
    }
    cri::RemoveContainerRequest rm;
    rm.set_container_id(c);
    cri::RemoveContainerResponse rm_resp;
    if (grpc::Status st = berthd_->runtime().RemoveContainer(Ctx().get(), rm, &rm_resp); !st.ok()) {
      return st;
    }
    return RemovePod(pod_id);
  }

  // Nothing of any pod or container is left: records, mounts, netns, cgroups, IPs, conmons,
  // bundles.
  void ExpectNothingLeft() {
    EXPECT_TRUE(PodIds().empty());
    EXPECT_TRUE(ContainerIds().empty());
    EXPECT_TRUE(MountsUnderStateDir().empty()) << absl::StrJoin(MountsUnderStateDir(), "\n");
    EXPECT_TRUE(Entries(berthd_->state_dir() + "/netns").empty())
        << absl::StrJoin(Entries(berthd_->state_dir() + "/netns"), "\n");
    EXPECT_TRUE(Entries(berthd_->state_dir() + "/containers").empty());
    EXPECT_TRUE(Entries(berthd_->state_dir() + "/sandboxes").empty());
    EXPECT_TRUE(CgroupsLeft().empty()) << absl::StrJoin(CgroupsLeft(), "\n");
    EXPECT_EQ(IpReservations(), 0u);
    EXPECT_TRUE(ProcessesWith("conmon", berthd_->state_dir()).empty());
    std::string runc = RunProcess({"runc", "--root", berthd_->state_dir() + "/runc", "list", "-q"})
                           .value_or(RunResult{})
                           .out;
    EXPECT_TRUE(absl::StripAsciiWhitespace(runc).empty()) << "runc still knows: " << runc;
  }

  // A pod with a running container; returns {pod, container}.
  std::pair<std::string, std::string> PodWithContainer(const std::string& name,
                                                       std::vector<std::string> cmd = {"/bin/sleep",
                                                                                       "1000"}) {
    cri::PodSandboxConfig pod = Pod(name);
    std::string pod_id;
    grpc::Status st = TryRunPod(pod, &pod_id);
    EXPECT_TRUE(st.ok()) << st.error_message() << berthd_->log();
    std::string c;
    st = TryCreate(pod_id, pod, "c", cmd, &c);
    EXPECT_TRUE(st.ok()) << st.error_message();
    st = Start(c);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return {pod_id, c};
  }

  // What a power cycle does to berth, short of the cgroups (cgroupfs does not go away here):
  // berthd and every pod process die without a word, every mount under the state dir goes and
  // the state dir (a tmpfs) comes back empty; the root (persistent) stays.
  void SimulateReboot() {
    berthd_->Kill();
    for (pid_t p : ProcessesWith("conmon", berthd_->state_dir())) kill(p, SIGKILL);
    for (const std::string& h : CgroupHierarchies()) {
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(h + cgroup_parent_, ec)) {
        for (pid_t p : ReadPids(e.path().string() + "/cgroup.procs")) kill(p, SIGKILL);
      }
    }
    ASSERT_TRUE(WaitFor([&] {
      for (const std::string& h : CgroupHierarchies()) {
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(h + cgroup_parent_, ec)) {
          if (!ReadPids(e.path().string() + "/cgroup.procs").empty()) return false;
        }
      }
      return ProcessesWith("conmon", berthd_->state_dir()).empty();
    }));
    std::vector<std::string> mounts;
    for (absl::string_view line :
         absl::StrSplit(ReadFile("/proc/self/mountinfo").value_or(""), '\n')) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
      if (f.size() >= 5 &&
          (f[4] == berthd_->state_dir() || absl::StartsWith(f[4], berthd_->state_dir() + "/"))) {
        mounts.emplace_back(f[4]);
      }
    }
    std::sort(mounts.begin(), mounts.end(),
              [](const auto& a, const auto& b) { return a.size() > b.size(); });
    for (const auto& m : mounts) umount2(m.c_str(), MNT_DETACH);
    std::error_code ec;
    std::filesystem::remove_all(berthd_->state_dir(), ec);
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_TRUE(MakeDirs(berthd_->state_dir()).ok());
  }

  static int instances_;
  std::string cgroup_parent_;
  std::string ipam_;
  std::string bin_;
};

int FaultsTest::instances_ = 0;

// ---------------------------------------------------------------------------------------------
// Item 2: a node reboot.

TEST_F(FaultsTest, AfterARebootPodsAreNotReadyContainersExitedIpsFreedAndNewPodsStart) {
  std::vector<std::pair<std::string, std::string>> pods;
  for (int i = 0; i < 3; ++i) pods.push_back(PodWithContainer(absl::StrCat("reboot", i)));
  ASSERT_EQ(IpReservations(), 3u);
  SimulateReboot();
  ASSERT_TRUE(berthd_->Start({.config_toml = FaultsConfig()}).ok()) << berthd_->log();
  EXPECT_TRUE(absl::StrContains(berthd_->log(), "rebooted")) << berthd_->log();

  for (const auto& [pod, c] : pods) {
    EXPECT_EQ(PodStatus(pod).state(), cri::SANDBOX_NOTREADY) << pod;
    cri::ContainerStatus s = Status(c);
    EXPECT_EQ(s.state(), cri::CONTAINER_EXITED);
    EXPECT_EQ(s.exit_code(), 255);  // unknown, as containerd reports it
    EXPECT_EQ(s.reason(), "Unknown");
    EXPECT_TRUE(absl::StrContains(s.message(), "reboot")) << s.message();
  }
  // CNI DEL ran from the cached results at recovery: the reservations are free already.
  EXPECT_EQ(IpReservations(), 0u);

  // New pods start (kubelet's next attempt), with an IP and a running container.
  auto [fresh, fresh_c] = PodWithContainer("after-reboot");
  EXPECT_EQ(PodStatus(fresh).state(), cri::SANDBOX_READY);
  EXPECT_FALSE(PodStatus(fresh).network().ip().empty());
  EXPECT_EQ(Status(fresh_c).state(), cri::CONTAINER_RUNNING);
  EXPECT_TRUE(ExecSync(fresh_c).ok());

  for (const auto& [pod, c] : pods) EXPECT_TRUE(RemovePod(pod).ok());
  EXPECT_TRUE(RemovePod(fresh).ok());
  // Item 4: the containers runc forgot with the reboot leave no cgroup behind either.
  ExpectNothingLeft();
}

TEST_F(FaultsTest, ACleanRestartIsNoReboot) {
  auto [pod, c] = PodWithContainer("clean");
  ASSERT_TRUE(berthd_->Stop().ok());
  ASSERT_TRUE(berthd_->Start({.config_toml = FaultsConfig()}).ok()) << berthd_->log();
  EXPECT_TRUE(absl::StrContains(berthd_->log(), "after a clean stop")) << berthd_->log();
  EXPECT_EQ(PodStatus(pod).state(), cri::SANDBOX_READY);
  EXPECT_EQ(Status(c).state(), cri::CONTAINER_RUNNING);
  EXPECT_EQ(IpReservations(), 1u);
  EXPECT_TRUE(RemovePod(pod).ok());
  ExpectNothingLeft();
}

// ---------------------------------------------------------------------------------------------
// Item 3: a dead conmon.

TEST_F(FaultsTest, ADeadConmonAndContainerAreReportedExitedAndExecFails) {
  // Not a structured binding: clang 14 cannot capture one in a lambda.
  std::string pod, c;
  std::tie(pod, c) = PodWithContainer("deadconmon");
  const pid_t conmon = ConmonOf(c);
  std::vector<pid_t> procs = ProcsOf(c);
  ASSERT_GT(conmon, 0);
  ASSERT_FALSE(procs.empty());
  kill(conmon, SIGKILL);
  for (pid_t p : procs) kill(p, SIGKILL);
  EXPECT_TRUE(WaitFor([&] { return Status(c).state() == cri::CONTAINER_EXITED; }, 10))
      << "still " << cri::ContainerState_Name(Status(c).state()) << "\n"
      << berthd_->log();
  cri::ContainerStatus s = Status(c);
  EXPECT_EQ(s.exit_code(), 255);
  EXPECT_EQ(s.reason(), "Unknown");
  EXPECT_TRUE(absl::StrContains(s.message(), "conmon")) << s.message();
  EXPECT_EQ(ExecSync(c).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(PodStatus(pod).state(), cri::SANDBOX_READY);  // its infra container is fine
  EXPECT_TRUE(RemovePod(pod).ok());
  ExpectNothingLeft();
}

TEST_F(FaultsTest, AContainerThatOutlivesItsConmonIsKilledAndReportedExited) {
  // Not a structured binding: clang 14 cannot capture one in a lambda.
  std::string pod, c;
  std::tie(pod, c) = PodWithContainer("orphaned");
  const pid_t conmon = ConmonOf(c);
  std::vector<pid_t> procs = ProcsOf(c);
  ASSERT_GT(conmon, 0);
  ASSERT_FALSE(procs.empty());
  kill(conmon, SIGKILL);
  EXPECT_TRUE(WaitFor([&] { return Status(c).state() == cri::CONTAINER_EXITED; }, 10))
      << berthd_->log();
  EXPECT_EQ(Status(c).exit_code(), 255);
  // Without its monitor nobody would collect its output or its exit: berth killed it.
  EXPECT_TRUE(WaitFor([&] { return ProcsOf(c).empty(); }, 10));
  EXPECT_EQ(ExecSync(c).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(RemovePod(pod).ok());
  ExpectNothingLeft();
}

TEST_F(FaultsTest, AnInfraContainerWhoseConmonDiesMakesThePodNotReady) {
  // Not a structured binding: clang 14 cannot capture one in a lambda.
  std::string pod, c;
  std::tie(pod, c) = PodWithContainer("deadinfra");
  const pid_t conmon = ConmonOf(pod);  // the infra container's id is the pod's
  ASSERT_GT(conmon, 0);
  kill(conmon, SIGKILL);
  EXPECT_TRUE(WaitFor([&] { return PodStatus(pod).state() == cri::SANDBOX_NOTREADY; }, 10))
      << berthd_->log();
  EXPECT_TRUE(RemovePod(pod).ok());
  ExpectNothingLeft();
}

TEST_F(FaultsTest, ConmonsThatDiedWhileBerthdWasDownAreFoundAtRecovery) {
  auto [pod, both] = PodWithContainer("down");
  cri::PodSandboxConfig cfg = Pod("down");
  std::string alone;
  ASSERT_TRUE(TryCreate(pod, cfg, "alone", {"/bin/sleep", "1000"}, &alone).ok());
  ASSERT_TRUE(Start(alone).ok());
  const pid_t conmon_both = ConmonOf(both), conmon_alone = ConmonOf(alone);
  std::vector<pid_t> procs_both = ProcsOf(both);
  ASSERT_GT(conmon_both, 0);
  ASSERT_GT(conmon_alone, 0);
  berthd_->Kill();
  kill(conmon_both, SIGKILL);
  for (pid_t p : procs_both) kill(p, SIGKILL);  // runc: stopped, no exit file
  kill(conmon_alone, SIGKILL);                  // runc: running, but nobody monitors it
  ASSERT_TRUE(WaitFor([&] { return !Alive(conmon_both) && !Alive(conmon_alone); }));
  ASSERT_TRUE(berthd_->Start({.config_toml = FaultsConfig()}).ok()) << berthd_->log();
  for (const std::string& id : {both, alone}) {
    EXPECT_TRUE(WaitFor([&] { return Status(id).state() == cri::CONTAINER_EXITED; }, 10)) << id;
    EXPECT_EQ(Status(id).exit_code(), 255) << id;
  }
  EXPECT_TRUE(WaitFor([&] { return ProcsOf(alone).empty(); }, 10));
  EXPECT_EQ(PodStatus(pod).state(), cri::SANDBOX_READY);
  EXPECT_TRUE(RemovePod(pod).ok());
  ExpectNothingLeft();
}

// ---------------------------------------------------------------------------------------------
// Item 4: cgroup leaks.

// A bulk forced removal (`crictl rmp -f` of many pods at once) of containers whose processes
// have children in the pod's shared PID namespace: runc's own cgroup removal gives up after a
// few tries while the killed processes are still going; berth finishes it.
TEST_F(FaultsTest, BulkForcedRemovalOfManyPodsLeavesNoCgroup) {
  std::vector<std::string> pods;
  for (int i = 0; i < 12; ++i) {
    pods.push_back(
        PodWithContainer(absl::StrCat("bulk", i),
                         {"/bin/sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 1000 & done; wait"})
            .first);
  }
  std::vector<std::thread> threads;
  std::atomic<int> failures = 0;
  for (const std::string& p : pods) {
    threads.emplace_back([&, p] {
      cri::RemovePodSandboxRequest req;
      req.set_pod_sandbox_id(p);
      cri::RemovePodSandboxResponse resp;
      if (!berthd_->runtime().RemovePodSandbox(Ctx().get(), req, &resp).ok()) ++failures;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  ExpectNothingLeft();
}

TEST_F(FaultsTest, OrphanedCgroupsAreSweptAtStart) {
  // What a berthd that crashed mid-removal, or an older one, left: berth-<id> cgroups of no
  // container, emptied long ago.
  const std::string orphan = absl::StrCat("berth-", std::string(64, 'e'));
  const std::string recent = absl::StrCat("berth-", std::string(64, 'f'));
  for (const std::string& h : CgroupHierarchies()) {
    for (const std::string& name : {orphan, recent}) {
      const std::string d = absl::StrCat(h, cgroup_parent_, "/", name);
      MakeDirs(d).IgnoreError();
    }
    timeval old[2] = {{1, 0}, {1, 0}};
    utimes(absl::StrCat(h, cgroup_parent_, "/", orphan).c_str(), old);
  }
  auto [pod, c] = PodWithContainer("sweep");
  ASSERT_TRUE(berthd_->Stop().ok());
  ASSERT_TRUE(berthd_->Start({.config_toml = FaultsConfig()}).ok()) << berthd_->log();
  auto left = [&](const std::string& name) {
    for (const std::string& h : CgroupHierarchies()) {
      if (PathExists(absl::StrCat(h, cgroup_parent_, "/", name))) return true;
    }
    return false;
  };
  EXPECT_TRUE(WaitFor([&] { return !left(orphan); }, 20)) << berthd_->log();
  // A young one may be a creation under way (or another berthd's): it stays.
  EXPECT_TRUE(left(recent));
  // The pod's own cgroups are not orphans.
  EXPECT_FALSE(ProcsOf(c).empty());
  EXPECT_EQ(Status(c).state(), cri::CONTAINER_RUNNING);
  for (const std::string& h : CgroupHierarchies())
    rmdir(absl::StrCat(h, cgroup_parent_, "/", recent).c_str());
  EXPECT_TRUE(RemovePod(pod).ok());
  ExpectNothingLeft();
}

// ---------------------------------------------------------------------------------------------
// Item 6: parts below berth failing.

TEST_F(FaultsTest, RuncFailingOrMissingFailsCleanlyNamingItAndServiceResumes) {
  auto [pod, c] = PodWithContainer("runcfault");
  const cri::PodSandboxConfig cfg = Pod("runcfault");
  for (bool missing : {false, true}) {
    SCOPED_TRACE(missing ? "runc missing" : "runc failing");
    if (missing) {
      Hide("runc");
    } else {
      Break("runc");
    }
    grpc::Status st = TryRunPod(Pod(missing ? "rp-missing" : "rp-failing"));
    EXPECT_FALSE(st.ok());
    EXPECT_TRUE(absl::StrContains(st.error_message(), "runc")) << st.error_message();
    st = TryCreate(pod, cfg, missing ? "cmissing" : "cfailing", {"/bin/sleep", "1000"});
    EXPECT_FALSE(st.ok());
    EXPECT_TRUE(absl::StrContains(st.error_message(), "runc")) << st.error_message();
    // Nothing half-made: only the first pod and its container are listed.
    EXPECT_EQ(PodIds(), std::vector<std::string>{pod});
    EXPECT_EQ(ContainerIds(), std::vector<std::string>{c});
    if (missing) {
      Unhide("runc");
    } else {
      Mend("runc");
    }
  }
  EXPECT_EQ(Entries(berthd_->state_dir() + "/containers").size(), 2u);  // pod's infra + c
  EXPECT_EQ(IpReservations(), 1u);
  // A restart while runc fails learns nothing from it and changes nothing.
  Break("runc");
  ASSERT_TRUE(berthd_->Stop().ok());
  ASSERT_TRUE(berthd_->Start({.config_toml = FaultsConfig()}).ok()) << berthd_->log();
  EXPECT_EQ(Status(c).state(), cri::CONTAINER_RUNNING);
  EXPECT_EQ(PodStatus(pod).state(), cri::SANDBOX_READY);
  Mend("runc");
  // Back to normal.
  auto [pod2, c2] = PodWithContainer("runc-mended");
  EXPECT_EQ(Status(c2).state(), cri::CONTAINER_RUNNING);
  EXPECT_TRUE(ExecSync(c).ok());
  EXPECT_TRUE(RemovePod(pod).ok());
  EXPECT_TRUE(RemovePod(pod2).ok());
  ExpectNothingLeft();
}

TEST_F(FaultsTest, ConmonFailingOrMissingFailsCleanlyNamingItAndServiceResumes) {
  for (bool missing : {false, true}) {
    SCOPED_TRACE(missing ? "conmon missing" : "conmon failing");
    if (missing) {
      Hide("conmon");
    } else {
      Break("conmon");
    }
    grpc::Status st = TryRunPod(Pod(missing ? "cm-missing" : "cm-failing"));
    EXPECT_FALSE(st.ok());
    EXPECT_TRUE(absl::StrContains(st.error_message(), "conmon")) << st.error_message();
    EXPECT_TRUE(PodIds().empty());
    if (missing) {
      Unhide("conmon");
    } else {
      Mend("conmon");
    }
  }
  EXPECT_EQ(IpReservations(), 0u);
  auto [pod, c] = PodWithContainer("conmon-mended");
  EXPECT_EQ(Status(c).state(), cri::CONTAINER_RUNNING);
  EXPECT_TRUE(RemovePod(pod).ok());
  ExpectNothingLeft();
}

TEST_F(FaultsTest, AHangingCniPluginIsCutOffByTheTimeoutAndServiceResumes) {
  berthd_->Kill();  // no pods yet: restarted on a shorter plugin timeout
  ASSERT_TRUE(WriteFileAtomic(bin_ + "/hang-add", R"(#!/bin/sh
case "$CNI_COMMAND" in
  ADD) exec sleep 1000 ;;
  VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
esac
exit 0
)",
                              0755)
                  .ok());
  WriteConflist(R"(,{"type":"hang-add"})");
  ASSERT_TRUE(berthd_->Start({.config_toml = FaultsConfig("plugin_timeout_seconds = 2\n")}).ok())
      << berthd_->log();
  grpc::Status st = TryRunPod(Pod("hung"));
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(absl::StrContains(st.error_message(), "hang-add")) << st.error_message();
  EXPECT_TRUE(absl::StrContains(st.error_message(), "did not finish")) << st.error_message();
  EXPECT_TRUE(PodIds().empty());
  EXPECT_TRUE(ProcessesWithEnv("CNI_COMMAND=ADD", berthd_->state_dir()).empty())
      << "the hung plugin still runs";
  EXPECT_EQ(IpReservations(), 0u);
  ExpectNothingLeft();
  // The plugin goes from the config: pods start again, without a restart.
  WriteConflist("");
  auto [pod, c] = PodWithContainer("unhung");
  EXPECT_EQ(PodStatus(pod).state(), cri::SANDBOX_READY);
  EXPECT_TRUE(RemovePod(pod).ok());
  ExpectNothingLeft();
}

// The root dir's filesystem fills up (a small loop-mounted ext4): calls fail with the reason,
// nothing is half-made, the state DB survives, and service resumes once there is room.
TEST_F(FaultsTest, AFullRootDiskFailsCallsCleanlyAndServiceResumesWithTheStateIntact) {
  berthd_->Kill();  // no pods yet: this test's berthd has its root on a small filesystem
  berthd_.reset();
  const std::string dir = dir_.path() + "/full";
  const std::string image = dir_.path() + "/root.img";
  ASSERT_TRUE(MakeDirs(dir + "/root").ok());
  ASSERT_TRUE(RunProcess({"truncate", "-s", "96M", image}).ok());
  absl::StatusOr<RunResult> mkfs = RunProcess({"mkfs.ext4", "-q", "-F", "-m", "0", image});
  if (!mkfs.ok() || !mkfs->ok()) GTEST_SKIP() << "no mkfs.ext4 here";
  absl::StatusOr<RunResult> mnt = RunProcess({"mount", "-o", "loop", image, dir + "/root"});
  if (!mnt.ok() || !mnt->ok())
    GTEST_SKIP() << "no loop devices here: " << (mnt.ok() ? mnt->err : "");
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{dir + "/root"};
  berthd_ = std::make_unique<Berthd>(dir);
  // No free-space floor for pulls: the disk is to fill up, not to be refused early.
  const std::string config = FaultsConfig("", "[images]\nmin_free_bytes = 0\n");
  ASSERT_TRUE(berthd_->Start({.config_toml = config}).ok()) << berthd_->log();
  cri::PullImageRequest pull;
  pull.mutable_image()->set_image("busybox");
  cri::PullImageResponse presp;
  grpc::Status pulled = berthd_->images().PullImage(Ctx().get(), pull, &presp);
  ASSERT_TRUE(pulled.ok()) << pulled.error_message();
  auto [pod, c] = PodWithContainer("before-full");

  // Fill it.
  const std::string filler = dir + "/root/filler";
  {
    std::ofstream f(filler, std::ios::binary);
    std::string block(1 << 20, 'x');
    while (f.write(block.data(), block.size())) {
    }
  }
  {
    std::ofstream f(filler + "-small", std::ios::binary);
    while (f.put('x')) {
    }
  }
  // What the calls write to the root: the StateDB (RocksDB preallocates its WAL, so small
  // records still fit), the CNI cache and the containers' writable layers. Each call either
  // works whole or fails naming the lack of space and leaves nothing; creating a container,
  // whose writable layer needs room, fails.
  std::vector<std::string> want_pods = {pod}, want_ctrs = {c};
  int failures = 0;
  auto outcome = [&](const grpc::Status& st, const std::string& id,
                     std::vector<std::string>* made) {
    if (st.ok()) {
      made->push_back(id);
      return;
    }
    ++failures;
    EXPECT_TRUE(
        absl::StrContains(absl::AsciiStrToLower(st.error_message()), "no space left on device"))
        << st.error_message();
  };
  for (int i = 0; i < 3; ++i) {
    std::string id;
    grpc::Status st = TryRunPod(Pod(absl::StrCat("full", i)), &id);
    outcome(st, id, &want_pods);
    st = TryCreate(pod, Pod("before-full"), absl::StrCat("cfull", i), {"/bin/sleep", "1000"}, &id);
    EXPECT_FALSE(st.ok()) << "a writable layer was made on a full disk";
    outcome(st, id, &want_ctrs);
  }
  EXPECT_GE(failures, 3);
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(sorted(PodIds()), sorted(want_pods));
  EXPECT_EQ(sorted(ContainerIds()), sorted(want_ctrs));
  EXPECT_EQ(Status(c).state(), cri::CONTAINER_RUNNING);

  // Room again: service resumes without a restart.
  unlink(filler.c_str());
  unlink((filler + "-small").c_str());
  auto [pod2, c2] = PodWithContainer("after-full");
  EXPECT_EQ(Status(c2).state(), cri::CONTAINER_RUNNING);
  want_pods.push_back(pod2);
  want_ctrs.push_back(c2);
  // The state DB is whole: a restart finds exactly what was made, and it works.
  ASSERT_TRUE(berthd_->Stop().ok());
  ASSERT_TRUE(berthd_->Start({.config_toml = config}).ok()) << berthd_->log();
  EXPECT_EQ(sorted(PodIds()), sorted(want_pods));
  EXPECT_EQ(sorted(ContainerIds()), sorted(want_ctrs));
  EXPECT_EQ(Status(c).state(), cri::CONTAINER_RUNNING);
  EXPECT_TRUE(ExecSync(c2).ok());
  for (const std::string& p : want_pods) EXPECT_TRUE(RemovePod(p).ok());
  ExpectNothingLeft();
  berthd_.reset();
}

// ---------------------------------------------------------------------------------------------
// Item 8: under load.

long RssKb(pid_t pid) {
  for (absl::string_view line :
       absl::StrSplit(ReadFile(absl::StrCat("/proc/", pid, "/status")).value_or(""), '\n')) {
    if (absl::ConsumePrefix(&line, "VmRSS:")) {
      long kb = 0;
      (void)absl::SimpleAtoi(absl::StripSuffix(absl::StripAsciiWhitespace(line), " kB"), &kb);
      return kb;
    }
  }
  return 0;
}

#ifdef ABSL_HAVE_ADDRESS_SANITIZER
constexpr bool kAddressSanitizer = true;  // berthd is built as this test is (--config=asan)
#else
constexpr bool kAddressSanitizer = false;
#endif

int EnvInt(const char* name, int fallback) {
  const char* v = getenv(name);
  int n = 0;
  return v != nullptr && absl::SimpleAtoi(v, &n) && n > 0 ? n : fallback;
}

// 20 parallel loops creating and removing a pod with a container. In CI a few cycles each; the
// issue's five minutes: BERTH_FAULTS_LOAD_SECONDS=300 (see docs/ARCHITECTURE.md).
// ---------------------------------------------------------------------------------------------
// Item 5: crash points. berthd_crash_points dies by SIGKILL at the step BERTH_CRASH_AT names
// (util/crash_point.h: after every record saved, every runc, CNI, netns, mount and directory
// step). A first run records every step one pod's life passes; then, for each step in turn, the
// same life is cut there, berthd comes back, and what the crash left must converge: each pod and
// container listed is usable or removable through CRI, and once they are removed nothing at all
// is left (records, mounts, netns, cgroups, IPs, conmons, runc state, writable layers).

TEST_F(FaultsTest, ACrashAtEveryStepOfAPodsLifeConverges) {
  const std::string points_log = dir_.path() + "/crash-points";
  ASSERT_TRUE(berthd_->Stop().ok());
  ASSERT_TRUE(berthd_
                  ->Start({.config_toml = FaultsConfig(),
                           .binary = "server/berthd_crash_points",
                           .env = {"BERTH_CRASH_POINTS_LOG=" + points_log}})
                  .ok())
      << berthd_->log();
  grpc::Status life = PodLife("plan");
  ASSERT_TRUE(life.ok()) << life.error_message() << berthd_->log();
  ASSERT_TRUE(berthd_->Stop().ok());
  std::vector<std::string> points;
  for (absl::string_view p :
       absl::StrSplit(ReadFile(points_log).value_or(""), '\n', absl::SkipEmpty())) {
    points.emplace_back(p);
  }
  // Every kind of step: records of both kinds, runc, CNI, netns, mounts, directories.
  for (const char* kind :
       {"pod:", "container:", "runc:create", "runc:start", "runc:kill", "runc:delete", "cni:add",
        "cni:del", "netns:create", "netns:remove", "rootfs:mount", "rootfs:remove", "tmpfs:mount",
        "bundle:remove", "pod-dir:remove"}) {
    EXPECT_TRUE(std::any_of(points.begin(), points.end(),
                            [&](const std::string& p) { return absl::StartsWith(p, kind); }))
        << "no " << kind << " step in " << absl::StrJoin(points, " ");
  }
  std::cerr << points.size() << " crash points: " << absl::StrJoin(points, " ") << "\n";
  // BERTH_CRASH_POINTS_ONLY=<n> runs the n-th one alone (from 0), when one fails.
  const int only = EnvInt("BERTH_CRASH_POINTS_ONLY", -1);
  for (size_t i = 0; i < points.size(); ++i) {
    if (only >= 0 && static_cast<size_t>(only) != i) continue;
    const std::string& point = points[i];
    SCOPED_TRACE(absl::StrCat("crash point ", i, ": ", point));
    ASSERT_TRUE(berthd_
                    ->Start({.config_toml = FaultsConfig(),
                             .binary = "server/berthd_crash_points",
                             .env = {"BERTH_CRASH_AT=" + point}})
                    .ok())
        << berthd_->log();
    life = PodLife(absl::StrCat("crash", i));
    EXPECT_FALSE(life.ok()) << "berthd did not die at " << point;
    absl::StatusOr<int> died = berthd_->WaitForExit(60);
    ASSERT_TRUE(died.ok()) << "berthd still runs after " << point << ": " << died.status();
    EXPECT_TRUE(WIFSIGNALED(*died) && WTERMSIG(*died) == SIGKILL) << point << ": " << *died;
    ASSERT_TRUE(berthd_->Start({.config_toml = FaultsConfig()}).ok()) << berthd_->log();
    // Whatever is listed is usable or goes cleanly: a running container answers an exec, a
    // created one starts; then every container and pod is removed through CRI.
    cri::ListContainersResponse listed;
    ASSERT_TRUE(berthd_->runtime().ListContainers(Ctx().get(), {}, &listed).ok());
    for (const auto& c : listed.containers()) {
      if (c.state() == cri::CONTAINER_RUNNING) {
        grpc::Status st = ExecSync(c.id());
        EXPECT_TRUE(st.ok()) << point << ": exec in " << c.id() << ": " << st.error_message();
      } else if (c.state() == cri::CONTAINER_CREATED) {
        grpc::Status st = Start(c.id());
        EXPECT_TRUE(st.ok()) << point << ": start " << c.id() << ": " << st.error_message();
      }
      cri::RemoveContainerRequest rm;
      rm.set_container_id(c.id());
      cri::RemoveContainerResponse rm_resp;
      grpc::Status st = berthd_->runtime().RemoveContainer(Ctx().get(), rm, &rm_resp);
      EXPECT_TRUE(st.ok()) << point << ": remove " << c.id() << ": " << st.error_message();
    }
    for (const std::string& pod : PodIds()) {
      grpc::Status st = RemovePod(pod);
      EXPECT_TRUE(st.ok()) << point << ": remove pod " << pod << ": " << st.error_message();
    }
    ExpectNothingLeft();
    EXPECT_TRUE(Entries(berthd_->root() + "/images/containers").empty())
        << point << ": " << absl::StrJoin(Entries(berthd_->root() + "/images/containers"), " ");
    // And service goes on: a new pod's whole life works.
    life = PodLife(absl::StrCat("after", i));
    EXPECT_TRUE(life.ok()) << point << ": " << life.error_message();
    ASSERT_TRUE(berthd_->Stop().ok());
    if (HasFailure()) {
      ADD_FAILURE() << "berthd's log:\n" << berthd_->log();
      break;
    }
  }
  ASSERT_TRUE(berthd_->Start({.config_toml = FaultsConfig()}).ok()) << berthd_->log();
}

TEST_F(FaultsTest, TwentyParallelLoopsOfPodsLeaveNothingBehind) {
  const int loops = EnvInt("BERTH_FAULTS_LOAD_LOOPS", 20);
  const int cycles = EnvInt("BERTH_FAULTS_LOAD_CYCLES", 3);
  const int seconds = EnvInt("BERTH_FAULTS_LOAD_SECONDS", 0);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  // One warm-up cycle, so the RSS compared is after the first allocations of every path.
  auto [wp, wc] = PodWithContainer("warmup");
  ASSERT_TRUE(RemovePod(wp).ok());
  const long rss_before = RssKb(berthd_->pid());
  std::atomic<int> errors = 0, done = 0;
  std::mutex mu;
  std::vector<std::string> messages;
  auto fail = [&](const std::string& what, const grpc::Status& st) {
    ++errors;
    std::lock_guard<std::mutex> l(mu);
    if (messages.size() < 10) messages.push_back(absl::StrCat(what, ": ", st.error_message()));
  };
  // RSS every 10 s, to see it level off over a long run.
  std::vector<long> samples;
  std::atomic<bool> running = true;
  std::thread sampler([&] {
    for (int tick = 1; running; ++tick) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (tick % 100 == 0) samples.push_back(RssKb(berthd_->pid()));
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < loops; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; seconds > 0 ? std::chrono::steady_clock::now() < until : i < cycles; ++i) {
        cri::PodSandboxConfig pod = Pod(absl::StrCat("load", t));
        pod.mutable_metadata()->set_attempt(i);
        std::string pod_id, c;
        if (grpc::Status st = TryRunPod(pod, &pod_id); !st.ok()) {
          fail("RunPodSandbox", st);
          continue;
        }
        if (grpc::Status st =
                TryCreate(pod_id, pod, "c", {"/bin/sh", "-c", "sleep 1000 & exec sleep 1000"}, &c);
            !st.ok()) {
          fail("CreateContainer", st);
        } else if (grpc::Status st = Start(c); !st.ok()) {
          fail("StartContainer", st);
        }
        if (grpc::Status st = RemovePod(pod_id); !st.ok()) fail("Stop/RemovePodSandbox", st);
        ++done;
      }
    });
  }
  for (auto& t : threads) t.join();
  running = false;
  sampler.join();
  const long rss_after = RssKb(berthd_->pid());
  std::cout << "load: " << done << " pod cycles in " << loops << " loops, " << errors
            << " errors; berthd RSS " << rss_before << " kB before, " << rss_after
            << " kB after; every 10 s: " << absl::StrJoin(samples, " ") << "\n";
  EXPECT_EQ(errors, 0) << absl::StrJoin(messages, "\n");
  ExpectNothingLeft();
  // Flat, within allocator noise: a leak per pod would show as megabytes here. Not under ASan,
  // where berthd's RSS is mostly its allocator's quarantine (freed blocks held back, up to 256
  // MiB) and shadow memory; there LeakSanitizer checks berthd at the Stop below, and a report
  // fails the test (test/util/berthd.cc).
  if (!kAddressSanitizer) {
    EXPECT_LT(rss_after - rss_before, 64 * 1024)
        << "berthd grew from " << rss_before << " to " << rss_after << " kB";
  }
  // Records too: a restart finds nothing.
  ASSERT_TRUE(berthd_->Stop().ok());
  ASSERT_TRUE(berthd_->Start({.config_toml = FaultsConfig()}).ok()) << berthd_->log();
  EXPECT_TRUE(PodIds().empty());
  EXPECT_TRUE(ContainerIds().empty());
}

}  // namespace
}  // namespace berth::test
