// The engine after a node reboot and across clean and unclean stops, over the fake OCI runtime
// (runc's state in memory), a fake pod network and a real StateDB. Runs without root.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/engine.h"
#include "runtime/oci/fake_runtime.h"
#include "runtime/reboot.h"
#include "runtime/testing/engine_fakes.h"
#include "test/util/temp_dir.h"
#include "util/fs.h"

namespace berth::engine {
namespace {

namespace cri = runtime::v1;

class FaultsEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env_.Init().ok());
    fake_ = &env_.runtime();
    StartEngine();
  }

  EngineOptions Options() const { return env_.engine_options(); }

  void StartEngine() {
    absl::StatusOr<std::unique_ptr<Engine>> e = env_.Start();
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = std::move(*e);
  }

  // What a power cycle leaves: runc's state and the volatile state dir are gone.
  void Reboot() {
    engine_.reset();
    fake_->ForgetAll();
    ASSERT_TRUE(RemoveAll(Options().state_dir).ok());
  }

  cri::PodSandboxConfig Pod(const std::string& name) {
    cri::PodSandboxConfig p;
    p.mutable_metadata()->set_name(name);
    p.mutable_metadata()->set_namespace_("default");
    p.mutable_metadata()->set_uid(absl::StrCat("uid-", name));
    return p;
  }
  std::pair<std::string, std::string> PodWithContainer(const std::string& name) {
    absl::StatusOr<std::string> pod = engine_->RunPodSandbox(Pod(name), "");
    EXPECT_TRUE(pod.ok()) << pod.status();
    cri::ContainerConfig c;
    c.mutable_metadata()->set_name("c");
    c.mutable_image()->set_image("busybox");
    absl::StatusOr<std::string> id = engine_->CreateContainer(pod.value_or(""), c);
    EXPECT_TRUE(id.ok()) << id.status();
    EXPECT_TRUE(engine_->StartContainer(id.value_or("")).ok());
    return {pod.value_or(""), id.value_or("")};
  }
  berth::v1::Container Ctr(const std::string& id) {
    absl::StatusOr<ContainerView> v = engine_->GetContainer(id);
    return v.ok() ? **v : berth::v1::Container();
  }
  berth::v1::SandboxStatus PodStatus(const std::string& id) {
    absl::StatusOr<SandboxView> v = engine_->GetSandbox(id);
    return v.ok() ? (*v)->status() : berth::v1::SANDBOX_STATUS_UNKNOWN;
  }

  test::TempDir dir_;
  fakes::ScratchEngine env_{dir_.path(),
                            {.cgroup_parent = "/berth-faults-engine-test", .network = true}};
  fakes::FakeNetwork& network_ = env_.network();
  oci::FakeRuntime* fake_ = nullptr;
  std::unique_ptr<Engine> engine_;
};

TEST_F(FaultsEngineTest, AfterARebootContainersExitUnknownAndPodsReleaseTheirNetworks) {
  std::vector<std::pair<std::string, std::string>> pods;
  for (int i = 0; i < 3; ++i) pods.push_back(PodWithContainer(absl::StrCat("p", i)));
  ASSERT_EQ(network_.reserved(), 3u);
  Reboot();
  StartEngine();
  EXPECT_TRUE(engine_->recovery().rebooted);
  EXPECT_EQ(network_.reserved(), 0u);  // CNI DEL ran for every pod at recovery
  for (const auto& [pod, c] : pods) {
    EXPECT_EQ(PodStatus(pod), berth::v1::SANDBOX_STATUS_NOT_READY);
    EXPECT_TRUE((*engine_->GetSandbox(pod))->ips().empty());
    berth::v1::Container rec = Ctr(c);
    // Stopped and forgotten by runc: Exited, whose removal needs no runc.
    EXPECT_EQ(rec.state().status(), berth::v1::CONTAINER_STATUS_EXITED);
    EXPECT_EQ(rec.state().exit_code(), 255);
    EXPECT_EQ(rec.state().reason(), "Unknown");
    EXPECT_TRUE(absl::StrContains(rec.state().message(), "rebooted")) << rec.state().message();
  }
  EXPECT_EQ(engine_->recovery().pods_not_ready, 3);
  // Removal does not release the network a second time.
  const int teardowns = network_.teardowns();
  for (const auto& [pod, c] : pods) EXPECT_TRUE(engine_->RemovePodSandbox(pod).ok());
  EXPECT_EQ(network_.teardowns(), teardowns);
  EXPECT_TRUE(engine_->ListSandboxes().empty());
  // New pods start.
  auto [pod, c] = PodWithContainer("after");
  EXPECT_EQ(PodStatus(pod), berth::v1::SANDBOX_STATUS_READY);
  EXPECT_EQ(Ctr(c).state().status(), berth::v1::CONTAINER_STATUS_RUNNING);
}

TEST_F(FaultsEngineTest, ARestartInTheSameBootIsNoRebootAndAStopIsClean) {
  auto [pod, c] = PodWithContainer("p");
  EXPECT_FALSE(engine_->recovery().clean_shutdown);  // the first start
  engine_.reset();                                   // ~Engine: a clean stop
  StartEngine();
  EXPECT_FALSE(engine_->recovery().rebooted);
  EXPECT_TRUE(engine_->recovery().clean_shutdown);
  EXPECT_EQ(PodStatus(pod), berth::v1::SANDBOX_STATUS_READY);
  EXPECT_EQ(Ctr(c).state().status(), berth::v1::CONTAINER_STATUS_RUNNING);
  EXPECT_EQ(network_.reserved(), 1u);
  // A berthd killed leaves no clean-stop marker (its destructor never runs).
  engine_.reset();
  ASSERT_EQ(unlink(CleanShutdownPath({Options().root, Options().state_dir}).c_str()), 0);
  StartEngine();
  EXPECT_FALSE(engine_->recovery().clean_shutdown);
  EXPECT_FALSE(engine_->recovery().rebooted);
}

TEST_F(FaultsEngineTest, AnExitFileThatSurvivedTheRebootIsStillTheTruth) {
  auto [pod, c] = PodWithContainer("p");
  engine_.reset();
  fake_->Exit(c, 3);  // conmon wrote the exit file; a state dir that is no tmpfs keeps it
  fake_->ForgetAll();
  // The marker names another boot than the kernel's.
  ASSERT_TRUE(
      WriteFileAtomic(BootMarkerPath({Options().root, Options().state_dir}), "another-boot\n")
          .ok());
  StartEngine();
  EXPECT_TRUE(engine_->recovery().rebooted);
  EXPECT_EQ(Ctr(c).state().exit_code(), 3);
  EXPECT_EQ(Ctr(c).state().reason(), "Error");
}

// Recovery reconciles containers on several threads: over many containers in several pods, each
// ends in the state its own exit file and runtime say, and the counts add up; after a reboot,
// every one is counted as ended while berthd was down.
TEST_F(FaultsEngineTest, RecoveryOfManyContainersSideBySideReconcilesEachAndCountsEveryExit) {
  std::vector<std::string> pods, ids;
  for (const char* name : {"a", "b", "c"}) {
    absl::StatusOr<std::string> pod = engine_->RunPodSandbox(Pod(name), "");
    ASSERT_TRUE(pod.ok()) << pod.status();
    pods.push_back(*pod);
  }
  for (int i = 0; i < 60; ++i) {
    cri::ContainerConfig c;
    c.mutable_metadata()->set_name(absl::StrCat("c", i));
    c.mutable_image()->set_image("busybox");
    absl::StatusOr<std::string> id = engine_->CreateContainer(pods[i % pods.size()], c);
    ASSERT_TRUE(id.ok()) << id.status();
    ASSERT_TRUE(engine_->StartContainer(*id).ok());
    ids.push_back(*id);
  }
  engine_.reset();
  // Every third container exited with its index as the code; every fifth of the others was
  // forgotten by the runtime without an exit file.
  int ended = 0;
  for (int i = 0; i < 60; ++i) {
    if (i % 3 == 0) {
      fake_->Exit(ids[i], i);
      ++ended;
    } else if (i % 5 == 0) {
      ASSERT_TRUE(fake_->Delete(ids[i], /*force=*/true).ok());
      ++ended;
    }
  }
  StartEngine();
  EXPECT_EQ(engine_->recovery().containers, 60 + 3);  // and the infra containers
  EXPECT_EQ(engine_->recovery().exited_while_down, ended);
  for (int i = 0; i < 60; ++i) {
    const berth::v1::Container c = Ctr(ids[i]);
    if (i % 3 == 0) {
      EXPECT_EQ(c.state().status(), berth::v1::CONTAINER_STATUS_STOPPED) << i;
      EXPECT_EQ(c.state().exit_code(), i) << i;
    } else if (i % 5 == 0) {
      EXPECT_EQ(c.state().status(), berth::v1::CONTAINER_STATUS_EXITED) << i;
      EXPECT_EQ(c.state().exit_code(), 255) << i;
    } else {
      EXPECT_EQ(c.state().status(), berth::v1::CONTAINER_STATUS_RUNNING) << i;
    }
  }
  for (const std::string& pod : pods) EXPECT_EQ(PodStatus(pod), berth::v1::SANDBOX_STATUS_READY);
  // After a reboot the 40 that still ran (and the 3 infra containers) ended with it.
  Reboot();
  StartEngine();
  EXPECT_EQ(engine_->recovery().exited_while_down, 60 - ended + 3);
  for (int i = 0; i < 60; ++i) {
    if (i % 3 == 0 || i % 5 == 0) continue;  // these had ended before
    EXPECT_EQ(Ctr(ids[i]).state().status(), berth::v1::CONTAINER_STATUS_EXITED) << i;
    EXPECT_EQ(Ctr(ids[i]).state().exit_code(), 255) << i;
  }
  for (const std::string& pod : pods) {
    EXPECT_EQ(PodStatus(pod), berth::v1::SANDBOX_STATUS_NOT_READY);
  }
}

}  // namespace
}  // namespace berth::engine
