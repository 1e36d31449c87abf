// RuntimeClass handlers over fakes (runs without root): a pod's runtime_handler picks the runtime
// that runs its infra container and every container of it, across a restart; an unknown handler
// is refused naming it; a handler taken out of the configuration fails its containers' calls
// naming it, leaving the other pods alone.
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/engine.h"
#include "runtime/oci/fake_runtime.h"
#include "runtime/testing/engine_fakes.h"
#include "test/util/temp_dir.h"

namespace berth::engine {
namespace {

namespace cri = runtime::v1;

class HandlersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env_.Init().ok());
    Start();
  }
  void Start() {
    engine_.reset();
    absl::StatusOr<std::unique_ptr<Engine>> e = env_.Start();
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = std::move(*e);
  }
  static cri::PodSandboxConfig Pod(const std::string& name) {
    cri::PodSandboxConfig p;
    p.mutable_metadata()->set_name(name);
    p.mutable_metadata()->set_namespace_("default");
    p.mutable_metadata()->set_uid(absl::StrCat("uid-", name));
    p.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
        cri::NODE);
    return p;
  }
  static cri::ContainerConfig Ctr(const std::string& name) {
    cri::ContainerConfig c;
    c.mutable_metadata()->set_name(name);
    c.mutable_image()->set_image("busybox");
    c.add_command("/bin/sleep");
    return c;
  }
  // A pod on `handler` with one started container; the container's id.
  std::string PodWithContainer(const std::string& name, const std::string& handler,
                               std::string* pod) {
    absl::StatusOr<std::string> p = engine_->RunPodSandbox(Pod(name), handler);
    EXPECT_TRUE(p.ok()) << p.status();
    *pod = p.value_or("");
    absl::StatusOr<std::string> c = engine_->CreateContainer(*pod, Ctr("c"));
    EXPECT_TRUE(c.ok()) << c.status();
    if (c.ok()) {
      EXPECT_TRUE(engine_->StartContainer(*c).ok());
    }
    return c.value_or("");
  }

  test::TempDir dir_;
  bool drop_second_ = false;  // the configuration no longer has "kata-fake"
  fakes::ScratchEngine env_{dir_.path(),
                            {.adjust =
                                 [this](EngineOptions* o) {
                                   if (drop_second_) {
                                     o->runtime_handlers.erase("kata-fake");
                                   }
                                 },
                             .handlers = {"crun-fake", "kata-fake"}}};
  std::unique_ptr<Engine> engine_;
};

TEST_F(HandlersTest, APodsHandlerRunsItsInfraAndEveryContainerOfIt) {
  std::string crun_pod, runc_pod;
  const std::string on_crun = PodWithContainer("on-crun", "crun-fake", &crun_pod);
  const std::string on_runc = PodWithContainer("on-runc", "", &runc_pod);
  oci::FakeRuntime& runc = env_.runtime();
  oci::FakeRuntime& crun = env_.handler_runtime("crun-fake");
  EXPECT_EQ(crun.StatusOf(crun_pod), oci::RuncStatus::kRunning);  // the infra container
  EXPECT_EQ(crun.StatusOf(on_crun), oci::RuncStatus::kRunning);
  EXPECT_EQ(runc.StatusOf(crun_pod), oci::RuncStatus::kUnknown);
  EXPECT_EQ(runc.StatusOf(on_crun), oci::RuncStatus::kUnknown);
  EXPECT_EQ(runc.StatusOf(on_runc), oci::RuncStatus::kRunning);
  EXPECT_EQ(crun.StatusOf(on_runc), oci::RuncStatus::kUnknown);
  EXPECT_EQ(env_.handler_runtime("kata-fake").calls().size(), 0u);
  absl::StatusOr<SandboxView> sb = engine_->GetSandbox(crun_pod);
  ASSERT_TRUE(sb.ok());
  EXPECT_EQ((*sb)->runtime_handler(), "crun-fake");
  absl::StatusOr<ContainerView> cv = engine_->GetContainer(on_crun);
  ASSERT_TRUE(cv.ok());
  EXPECT_EQ((*cv)->config().runtime_handler(), "crun-fake");

  // Exec, update, stop and removal go to the same runtime, also after berthd restarts.
  Start();
  absl::StatusOr<ExecSyncResult> ex = engine_->ExecSync(on_crun, {"true"}, 5);
  EXPECT_TRUE(ex.ok()) << ex.status();
  EXPECT_TRUE(engine_->UpdateContainerResources(on_crun, {}).ok());
  EXPECT_TRUE(engine_->StopContainer(on_crun, 0).ok());
  EXPECT_TRUE(engine_->RemoveContainer(on_crun, /*force=*/false).ok());
  EXPECT_TRUE(engine_->StopPodSandbox(crun_pod).ok());
  EXPECT_TRUE(engine_->RemovePodSandbox(crun_pod).ok());
  std::string crun_calls;
  for (const std::string& call : crun.calls()) absl::StrAppend(&crun_calls, call, "\n");
  for (const char* want : {"exec ", "update ", "kill ", "delete "}) {
    EXPECT_TRUE(absl::StrContains(crun_calls, absl::StrCat(want, on_crun))) << want << crun_calls;
  }
  for (const std::string& call : runc.calls()) {
    EXPECT_FALSE(absl::StrContains(call, on_crun)) << call;
    EXPECT_FALSE(absl::StrContains(call, crun_pod)) << call;
  }
  EXPECT_EQ(crun.StatusOf(on_crun), oci::RuncStatus::kUnknown);  // deleted
  EXPECT_EQ(runc.StatusOf(on_runc), oci::RuncStatus::kRunning);
}

TEST_F(HandlersTest, AnUnknownHandlerIsRefusedNamingItAndTheConfiguredOnes) {
  absl::StatusOr<std::string> p = engine_->RunPodSandbox(Pod("p"), "gvisor");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(p.status().message(), "\"gvisor\"")) << p.status();
  EXPECT_TRUE(absl::StrContains(p.status().message(), "runc, crun-fake, kata-fake")) << p.status();
  EXPECT_TRUE(engine_->ListSandboxes().empty());
  // "runc" is the default's name, as "" is.
  absl::StatusOr<std::string> runc = engine_->RunPodSandbox(Pod("r"), "runc");
  ASSERT_TRUE(runc.ok()) << runc.status();
  EXPECT_EQ(env_.runtime().StatusOf(*runc), oci::RuncStatus::kRunning);
  EXPECT_EQ(engine_->RuntimeHandlerNames(),
            (std::vector<std::string>{"runc", "", "crun-fake", "kata-fake"}));
}

TEST_F(HandlersTest, AHandlerTakenOutOfTheConfigurationFailsItsContainersCallsNamingIt) {
  std::string kata_pod, runc_pod;
  const std::string on_kata = PodWithContainer("on-kata", "kata-fake", &kata_pod);
  const std::string on_runc = PodWithContainer("on-runc", "", &runc_pod);
  drop_second_ = true;
  Start();
  absl::StatusOr<ExecSyncResult> ex = engine_->ExecSync(on_kata, {"true"}, 5);
  ASSERT_FALSE(ex.ok());
  EXPECT_EQ(ex.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(ex.status().message(), "\"kata-fake\" is not configured"))
      << ex.status();
  absl::Status rm = engine_->RemoveContainer(on_kata, /*force=*/true);
  EXPECT_EQ(rm.code(), absl::StatusCode::kFailedPrecondition) << rm;
  absl::StatusOr<ContainerView> still = engine_->GetContainer(on_kata);
  EXPECT_TRUE(still.ok()) << "a container its runtime cannot delete stays listed";
  EXPECT_EQ(engine_->RunPodSandbox(Pod("new"), "kata-fake").status().code(),
            absl::StatusCode::kInvalidArgument);
  // The default runtime's pods are untouched.
  EXPECT_TRUE(engine_->ExecSync(on_runc, {"true"}, 5).ok());
  // Configured again: its containers are served and removable.
  drop_second_ = false;
  Start();
  EXPECT_TRUE(engine_->ExecSync(on_kata, {"true"}, 5).ok());
  EXPECT_TRUE(engine_->RemovePodSandbox(kata_pod).ok());
  EXPECT_FALSE(engine_->GetContainer(on_kata).ok());
  EXPECT_EQ(env_.handler_runtime("kata-fake").StatusOf(on_kata), oci::RuncStatus::kUnknown);
}

}  // namespace
}  // namespace berth::engine
