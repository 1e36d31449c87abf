// Pod networking through CRI with the real bridge, host-local, portmap and loopback plugins:
// pod IPs and pod-to-pod traffic, hostPort from the host's loopback, host-network pods,
// teardown after a berthd crash, and nothing left behind.
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "test/util/cri_fixture.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace berth::test {
namespace {

constexpr char kBridge[] = "berthit0";

class NetworkTest : public CriFixture {
 protected:
  void SetUp() override {
    CriFixture::SetUp();  // loopback-only daemon; restart it on a bridge network
    ASSERT_TRUE(berthd_->Stop().ok());
    ipam_ = dir_.path() + "/ipam";
    ASSERT_TRUE(WriteFileAtomic(
                    dir_.path() + "/cni/10-lo.conflist",
                    absl::StrCat(
                        R"({"cniVersion":"1.0.0","name":"berthit","plugins":[)",
                        R"({"type":"bridge","bridge":")", kBridge,
                        R"(","isGateway":true,"ipMasq":false,"hairpinMode":true,)",
                        R"("ipam":{"type":"host-local","ranges":[[{"subnet":"10.251.7.0/24"}]],)",
                        R"("dataDir":")", ipam_, R"("}},)",
                        // No loopback plugin, as in deploy/cni: berthd brings
                        // up lo itself (Web() waits on 127.0.0.1 inside).
                        R"({"type":"portmap","capabilities":{"portMappings":true},"snat":true}]})"))
                    .ok());
    ASSERT_TRUE(berthd_->Start({.config_toml = Config()}).ok()) << berthd_->log();
  }
  void TearDown() override {
    berthd_.reset();
    RunProcess({"ip", "link", "delete", kBridge}).IgnoreError();
  }

  std::string PodIp(const std::string& pod_id) {
    cri::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(pod_id);
    cri::PodSandboxStatusResponse resp;
    EXPECT_TRUE(berthd_->runtime().PodSandboxStatus(Ctx().get(), req, &resp).ok());
    return resp.status().network().ip();
  }

  cri::ExecSyncResponse Exec(const std::string& id, std::vector<std::string> cmd) {
    cri::ExecSyncRequest req;
    req.set_container_id(id);
    for (auto& a : cmd) req.add_cmd(a);
    req.set_timeout(20);
    cri::ExecSyncResponse resp;
    grpc::Status st = berthd_->runtime().ExecSync(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }

  std::string Web(const std::string& pod_id, const cri::PodSandboxConfig& pod) {
    std::string id =
        CreateContainer(pod_id, pod, "web",
                        {"/bin/sh", "-c",
                         absl::StrCat("echo from-", pod.metadata().name(),
                                      " > /tmp/index.html; exec httpd -f -p 8080 -h /tmp")});
    EXPECT_TRUE(Start(id).ok());
    for (int i = 0; i < 100; ++i) {  // until httpd listens
      if (Exec(id, {"wget", "-qO-", "http://127.0.0.1:8080/index.html"}).exit_code() == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return id;
  }

  std::string ipam_;
};

TEST_F(NetworkTest, PodsGetDistinctIpsAndReachEachOther) {
  cri::PodSandboxConfig a = Pod("neta"), b = Pod("netb");
  std::string pa = RunPod(a), pb = RunPod(b);
  std::string ipa = PodIp(pa), ipb = PodIp(pb);
  EXPECT_TRUE(absl::StartsWith(ipa, "10.251.7.")) << ipa;
  EXPECT_TRUE(absl::StartsWith(ipb, "10.251.7.")) << ipb;
  EXPECT_NE(ipa, ipb);
  Web(pa, a);
  std::string client = CreateContainer(pb, b, "client", {"/bin/sleep", "1000"});
  ASSERT_TRUE(Start(client).ok());
  cri::ExecSyncResponse r =
      Exec(client, {"wget", "-qO-", absl::StrCat("http://", ipa, ":8080/index.html")});
  EXPECT_EQ(r.stdout(), "from-neta\n") << r.stderr();
  // The pod's hosts file names its own IP.
  EXPECT_TRUE(absl::StrContains(Exec(client, {"cat", "/etc/hosts"}).stdout(), ipb));
  EXPECT_TRUE(RemovePod(pa).ok());
  EXPECT_TRUE(RemovePod(pb).ok());
}

TEST_F(NetworkTest, HostPortAnswersOnTheHostsLoopback) {
  cri::PodSandboxConfig pod = Pod("hostport");
  auto* pm = pod.add_port_mappings();
  pm->set_container_port(8080);
  pm->set_host_port(18731);
  std::string pod_id = RunPod(pod);
  Web(pod_id, pod);
  absl::StatusOr<RunResult> r =
      RunProcess({"wget", "-qO-", "-T", "5", "http://127.0.0.1:18731/index.html"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "from-hostport\n") << r->err;
  EXPECT_TRUE(RemovePod(pod_id).ok());
  absl::StatusOr<RunResult> gone =
      RunProcess({"wget", "-qO-", "-T", "2", "http://127.0.0.1:18731/index.html"});
  EXPECT_NE(gone->exit_code, 0) << "the host port still answers after the pod is gone";
}

TEST_F(NetworkTest, HostNetworkPodSeesTheHostsInterfaces) {
  cri::PodSandboxConfig pod = Pod("hostnet");
  pod.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
      cri::NODE);
  std::string pod_id = RunPod(pod);
  EXPECT_EQ(PodIp(pod_id), "");
  std::string c = CreateContainer(pod_id, pod, "c", {"/bin/sleep", "1000"});
  ASSERT_TRUE(Start(c).ok());
  std::string inside = Exec(c, {"cat", "/proc/net/dev"}).stdout();
  std::string outside = ReadFile("/proc/net/dev").value_or("");
  // Every host interface is visible inside.
  int names = 0;
  for (absl::string_view line : absl::StrSplit(outside, '\n')) {
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    std::string name(absl::StripAsciiWhitespace(line.substr(0, colon)));
    EXPECT_TRUE(absl::StrContains(inside, name + ":")) << name << " missing in\n" << inside;
    ++names;
  }
  EXPECT_GT(names, 1);
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

TEST_F(NetworkTest, TeardownAfterACrashAndNothingLeftBehind) {
  std::vector<std::string> pods;
  for (int i = 0; i < 20; ++i) pods.push_back(RunPod(Pod(absl::StrCat("leak", i))));
  berthd_->Kill();
  ASSERT_TRUE(berthd_->Start({.config_toml = Config()}).ok()) << berthd_->log();
  for (const auto& p : pods) ASSERT_TRUE(RemovePod(p).ok());
  // No IP reservations, netns files or veths remain.
  size_t reservations = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(ipam_, ec)) {
    std::string name = e.path().filename();
    if (absl::StartsWith(name, "10.251.")) ++reservations;
  }
  EXPECT_EQ(reservations, 0u);
  EXPECT_TRUE(std::filesystem::is_empty(berthd_->state_dir() + "/netns", ec));
  std::string links = RunProcess({"ip", "-o", "link", "show", "master", kBridge})->out;
  EXPECT_TRUE(links.empty()) << links;
}

// CNI ADD runs while the infra container starts: when ADD fails, RunPodSandbox fails with the
// plugin's message and the pod leaves nothing behind (no record, infra process, IP, veth, netns).
TEST_F(NetworkTest, FailedCniAddFailsThePodAndLeavesNothingBehind) {
  ASSERT_TRUE(berthd_->Stop().ok());
  const std::string bin = dir_.path() + "/cnibin";
  ASSERT_TRUE(MakeDirs(bin).ok());
  ASSERT_TRUE(WriteFileAtomic(bin + "/refuse-add", R"(#!/bin/sh
case "$CNI_COMMAND" in
  ADD) echo '{"cniVersion":"1.0.0","code":11,"msg":"refuse-add says no"}'; exit 1 ;;
  VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
esac
exit 0
)",
                              0755)
                  .ok());
  ASSERT_TRUE(
      WriteFileAtomic(
          dir_.path() + "/cni/10-lo.conflist",
          absl::StrCat(R"({"cniVersion":"1.0.0","name":"berthit","plugins":[)",
                       R"({"type":"bridge","bridge":")", kBridge,
                       R"(","ipam":{"type":"host-local","ranges":[[{"subnet":"10.251.7.0/24"}]],)",
                       R"("dataDir":")", ipam_, R"("}},)", R"({"type":"refuse-add"}]})"))
          .ok());
  const std::string config = absl::StrReplaceAll(
      Config(), {{"[network]\n", absl::StrCat("[network]\ncni_bin_dirs = [\"", bin,
                                              "\", \"/usr/lib/cni\", \"/opt/cni/bin\"]\n")}});
  ASSERT_TRUE(berthd_->Start({.config_toml = config}).ok()) << berthd_->log();

  for (int i = 0; i < 3; ++i) {
    cri::RunPodSandboxRequest req;
    *req.mutable_config() = Pod(absl::StrCat("refused", i));
    cri::RunPodSandboxResponse resp;
    grpc::Status st = berthd_->runtime().RunPodSandbox(Ctx().get(), req, &resp);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error_message().find("refuse-add says no"), std::string::npos)
        << st.error_message();
  }
  cri::ListPodSandboxResponse pods;
  ASSERT_TRUE(berthd_->runtime().ListPodSandbox(Ctx().get(), {}, &pods).ok());
  EXPECT_EQ(pods.items_size(), 0);
  std::string runc =
      RunProcess({"runc", "--root", berthd_->state_dir() + "/runc", "list", "-q"})->out;
  EXPECT_TRUE(absl::StripAsciiWhitespace(runc).empty()) << "infra containers left: " << runc;
  size_t reservations = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(ipam_, ec)) {
    if (absl::StartsWith(e.path().filename().string(), "10.251.")) ++reservations;
  }
  EXPECT_EQ(reservations, 0u);
  EXPECT_TRUE(std::filesystem::is_empty(berthd_->state_dir() + "/netns", ec));
  std::string links = RunProcess({"ip", "-o", "link", "show", "master", kBridge})->out;
  EXPECT_TRUE(links.empty()) << links;
  ASSERT_TRUE(berthd_->Stop().ok());
}

}  // namespace
}  // namespace berth::test
