// A test fixture with a loopback registry holding busybox and a real berthd pointed at it
// through a docker.io mirror, plus helpers for the common CRI calls.
#ifndef BERTH_TEST_UTIL_CRI_FIXTURE_H_
#define BERTH_TEST_UTIL_CRI_FIXTURE_H_

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "test/registry/test_registry.h"
#include "test/util/berthd.h"
#include "test/util/busybox_image.h"
#include "test/util/temp_dir.h"
#include "util/fs.h"

namespace berth::test {

namespace cri = runtime::v1;

class CriFixture : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    auto reg = TestRegistry::Start();
    ASSERT_TRUE(reg.ok()) << reg.status();
    registry_ = std::move(*reg);
    auto pushed = PushBusybox(registry_->host());
    ASSERT_TRUE(pushed.ok()) << pushed.status();
  }
  static void TearDownTestSuite() { registry_.reset(); }

  void SetUp() override {
    ASSERT_TRUE(MakeDirs(dir_.path() + "/cni").ok());
    // Loopback-only pod networking keeps these tests independent of bridges and iptables.
    ASSERT_TRUE(
        WriteFileAtomic(dir_.path() + "/cni/10-lo.conflist",
                        R"({"cniVersion":"1.0.0","name":"lo","plugins":[{"type":"loopback"}]})")
            .ok());
    berthd_ = std::make_unique<Berthd>(dir_.path() + "/d");
    ASSERT_TRUE(berthd_->Start({.config_toml = Config()}).ok()) << berthd_->log();
    cri::PullImageRequest pull;
    pull.mutable_image()->set_image("busybox");
    cri::PullImageResponse presp;
    grpc::Status st = berthd_->images().PullImage(Ctx().get(), pull, &presp);
    ASSERT_TRUE(st.ok()) << st.error_message() << berthd_->log();
  }

  std::string Config() const {
    return absl::StrCat("[network]\ncni_conf_dir = \"", dir_.path(), "/cni\"\n",
                        "[registries.\"docker.io\"]\nmirrors = [\"http://", registry_->host(),
                        "\"]\n");
  }

  cri::PodSandboxConfig Pod(const std::string& name) {
    cri::PodSandboxConfig c;
    c.mutable_metadata()->set_name(name);
    c.mutable_metadata()->set_namespace_("default");
    c.mutable_metadata()->set_uid(absl::StrCat("uid-", name));
    c.set_hostname(name);
    c.set_log_directory(dir_.path() + "/logs/" + name);
    (*c.mutable_labels())["app"] = name;
    return c;
  }

  std::string RunPod(const cri::PodSandboxConfig& config) {
    cri::RunPodSandboxRequest req;
    *req.mutable_config() = config;
    cri::RunPodSandboxResponse resp;
    grpc::Status st = berthd_->runtime().RunPodSandbox(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.pod_sandbox_id();
  }

  std::string CreateContainer(const std::string& pod_id, const cri::PodSandboxConfig& pod,
                              const std::string& name, std::vector<std::string> cmd) {
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
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.container_id();
  }

  grpc::Status Start(const std::string& id) {
    cri::StartContainerRequest req;
    req.set_container_id(id);
    cri::StartContainerResponse resp;
    return berthd_->runtime().StartContainer(Ctx().get(), req, &resp);
  }

  cri::ContainerStatus Status(const std::string& id) {
    cri::ContainerStatusRequest req;
    req.set_container_id(id);
    cri::ContainerStatusResponse resp;
    grpc::Status st = berthd_->runtime().ContainerStatus(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.status();
  }

  cri::ContainerStatus WaitExited(const std::string& id, int seconds = 30) {
    for (int i = 0; i < seconds * 20; ++i) {
      cri::ContainerStatus s = Status(id);
      if (s.state() == cri::CONTAINER_EXITED) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "container " << id << " did not exit";
    return Status(id);
  }

  grpc::Status RemovePod(const std::string& id) {
    cri::StopPodSandboxRequest sreq;
    sreq.set_pod_sandbox_id(id);
    cri::StopPodSandboxResponse sresp;
    grpc::Status st = berthd_->runtime().StopPodSandbox(Ctx().get(), sreq, &sresp);
    if (!st.ok()) return st;
    cri::RemovePodSandboxRequest rreq;
    rreq.set_pod_sandbox_id(id);
    cri::RemovePodSandboxResponse rresp;
    return berthd_->runtime().RemovePodSandbox(Ctx().get(), rreq, &rresp);
  }

  static std::unique_ptr<TestRegistry> registry_;
  TempDir dir_;
  std::unique_ptr<Berthd> berthd_;
};

}  // namespace berth::test

#endif  // BERTH_TEST_UTIL_CRI_FIXTURE_H_
