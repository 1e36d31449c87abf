// Confinement and resources of real containers: seccomp on by default and off when asked,
// capabilities, read-only rootfs, users, OOM kills and live resource updates.
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "test/util/cri_fixture.h"
#include "util/fs.h"

namespace berth::test {
namespace {

class SecurityTest : public CriFixture {
 protected:
  // Creates and starts a container; `edit` adjusts the request first.
  std::string Run(const std::string& pod_id, const cri::PodSandboxConfig& pod, const std::string& name,
                  std::vector<std::string> cmd,
                  const std::function<void(cri::ContainerConfig*)>& edit = nullptr) {
    cri::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod_id);
    *req.mutable_sandbox_config() = pod;
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name(name);
    c->mutable_image()->set_image("busybox");
    for (auto& a : cmd) c->add_command(a);
    if (edit) edit(c);
    cri::CreateContainerResponse resp;
    grpc::Status st = berthd_->runtime().CreateContainer(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    EXPECT_TRUE(Start(resp.container_id()).ok());
    return resp.container_id();
  }

  cri::ExecSyncResponse Exec(const std::string& id, std::vector<std::string> cmd) {
    cri::ExecSyncRequest req;
    req.set_container_id(id);
    for (auto& a : cmd) req.add_cmd(a);
    cri::ExecSyncResponse resp;
    grpc::Status st = berthd_->runtime().ExecSync(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }
};

TEST_F(SecurityTest, SeccompIsOnByDefaultAndOffWhenUnconfined) {
  cri::PodSandboxConfig pod = Pod("seccomp");
  std::string pod_id = RunPod(pod);
  std::string confined = Run(pod_id, pod, "confined", {"/bin/sleep", "1000"});
  EXPECT_TRUE(absl::StrContains(Exec(confined, {"grep", "Seccomp:", "/proc/self/status"}).stdout(), "2"));
  // A syscall outside the profile fails inside: unshare needs CAP_SYS_ADMIN-gated clone flags.
  cri::ExecSyncResponse blocked = Exec(confined, {"/bin/sh", "-c", "busybox unshare -U true"});
  EXPECT_NE(blocked.exit_code(), 0);
  std::string free = Run(pod_id, pod, "free", {"/bin/sleep", "1000"}, [](cri::ContainerConfig* c) {
    c->mutable_linux()->mutable_security_context()->mutable_seccomp()->set_profile_type(
        cri::SecurityProfile::Unconfined);
  });
  EXPECT_TRUE(absl::StrContains(Exec(free, {"grep", "Seccomp:", "/proc/self/status"}).stdout(), "0"));
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

TEST_F(SecurityTest, DroppedCapabilityAndReadOnlyRootfsAndUser) {
  cri::PodSandboxConfig pod = Pod("caps");
  std::string pod_id = RunPod(pod);
  std::string nochown = Run(pod_id, pod, "nochown", {"/bin/sleep", "1000"}, [](cri::ContainerConfig* c) {
    c->mutable_linux()->mutable_security_context()->mutable_capabilities()->add_drop_capabilities("CHOWN");
  });
  EXPECT_NE(Exec(nochown, {"/bin/sh", "-c", "touch /tmp/f && chown 1:1 /tmp/f"}).exit_code(), 0);
  std::string ro = Run(pod_id, pod, "ro", {"/bin/sleep", "1000"}, [](cri::ContainerConfig* c) {
    c->mutable_linux()->mutable_security_context()->set_readonly_rootfs(true);
  });
  cri::ExecSyncResponse write = Exec(ro, {"/bin/sh", "-c", "echo x > /written"});
  EXPECT_NE(write.exit_code(), 0);
  EXPECT_TRUE(absl::StrContains(write.stderr(), "Read-only")) << write.stderr();
  std::string user = Run(pod_id, pod, "user", {"/bin/sleep", "1000"}, [](cri::ContainerConfig* c) {
    c->mutable_linux()->mutable_security_context()->mutable_run_as_user()->set_value(1234);
    c->mutable_linux()->mutable_security_context()->mutable_run_as_group()->set_value(5678);
  });
  EXPECT_EQ(Exec(user, {"id", "-u"}).stdout(), "1234\n");
  EXPECT_EQ(Exec(user, {"id", "-g"}).stdout(), "5678\n");
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

TEST_F(SecurityTest, MemoryLimitKillIsReportedAsOomKilled) {
  cri::PodSandboxConfig pod = Pod("oom");
  std::string pod_id = RunPod(pod);
  std::string id = Run(pod_id, pod, "hog", {"/bin/sh", "-c", "head -c 200000000 /dev/zero | tail > /dev/null"},
                       [](cri::ContainerConfig* c) {
                         c->mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(16 << 20);
                       });
  cri::ContainerStatus s = WaitExited(id);
  EXPECT_EQ(s.reason(), "OOMKilled");
  EXPECT_EQ(s.exit_code(), 137);
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

TEST_F(SecurityTest, UpdateContainerResourcesChangesTheCgroup) {
  cri::PodSandboxConfig pod = Pod("update");
  std::string pod_id = RunPod(pod);
  std::string id = Run(pod_id, pod, "c", {"/bin/sleep", "1000"});
  cri::UpdateContainerResourcesRequest req;
  req.set_container_id(id);
  req.mutable_linux()->set_memory_limit_in_bytes(64 << 20);
  req.mutable_linux()->set_cpu_shares(512);
  cri::UpdateContainerResourcesResponse resp;
  grpc::Status st = berthd_->runtime().UpdateContainerResources(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  std::string path = absl::StrCat("/sys/fs/cgroup/memory/berth/berth-", id, "/memory.limit_in_bytes");
  EXPECT_EQ(ReadFile(path).value_or(""), absl::StrCat(64 << 20, "\n")) << path;
  EXPECT_EQ(ReadFile(absl::StrCat("/sys/fs/cgroup/cpu/berth/berth-", id, "/cpu.shares")).value_or(""), "512\n");
  EXPECT_EQ(Status(id).resources().linux().memory_limit_in_bytes(), 64 << 20);
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

}  // namespace
}  // namespace berth::test
