// Confinement and resources of real containers: seccomp on by default and off when asked,
// capabilities, read-only rootfs, users, pod user namespaces, OOM kills and live resource updates.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "runtime/userns.h"
#include "test/util/cri_fixture.h"
#include "util/fs.h"

namespace berth::test {
namespace {

class SecurityTest : public CriFixture {
 protected:
  // Creates and starts a container; `edit` adjusts the request first.
  std::string Run(const std::string& pod_id, const cri::PodSandboxConfig& pod,
                  const std::string& name, std::vector<std::string> cmd,
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
  EXPECT_TRUE(
      absl::StrContains(Exec(confined, {"grep", "Seccomp:", "/proc/self/status"}).stdout(), "2"));
  // A syscall outside the profile fails inside: unshare needs CAP_SYS_ADMIN-gated clone flags.
  cri::ExecSyncResponse blocked = Exec(confined, {"/bin/sh", "-c", "busybox unshare -U true"});
  EXPECT_NE(blocked.exit_code(), 0);
  std::string free = Run(pod_id, pod, "free", {"/bin/sleep", "1000"}, [](cri::ContainerConfig* c) {
    c->mutable_linux()->mutable_security_context()->mutable_seccomp()->set_profile_type(
        cri::SecurityProfile::Unconfined);
  });
  EXPECT_TRUE(
      absl::StrContains(Exec(free, {"grep", "Seccomp:", "/proc/self/status"}).stdout(), "0"));
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

TEST_F(SecurityTest, DroppedCapabilityAndReadOnlyRootfsAndUser) {
  cri::PodSandboxConfig pod = Pod("caps");
  std::string pod_id = RunPod(pod);
  std::string nochown =
      Run(pod_id, pod, "nochown", {"/bin/sleep", "1000"}, [](cri::ContainerConfig* c) {
        c->mutable_linux()
            ->mutable_security_context()
            ->mutable_capabilities()
            ->add_drop_capabilities("CHOWN");
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

// kubelet's userns_options for hostUsers: false: one uid and one gid range of 65536.
void SetPodUserns(cri::NamespaceOption* nso, uint32_t host_id = 200000) {
  auto* u = nso->mutable_userns_options();
  u->set_mode(cri::POD);
  for (auto* m : {u->add_uids(), u->add_gids()}) {
    m->set_container_id(0);
    m->set_host_id(host_id);
    m->set_length(65536);
  }
}

std::vector<std::string> Fields(const std::string& s) {
  return absl::StrSplit(s, absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
}

// Mount points under `dir`, from this process's mountinfo.
std::vector<std::string> MountsUnder(const std::string& dir) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f = Fields(line);
    if (f.size() > 4 && absl::StartsWith(f[4], dir + "/")) out.push_back(f[4]);
  }
  return out;
}

class UserNamespaceTest : public SecurityTest {
 protected:
  void SetUp() override {
    SecurityTest::SetUp();
    if (absl::Status st = engine::ProbeUserNamespaces(dir_.path()); !st.ok()) {
      GTEST_SKIP() << "this kernel cannot run pods in user namespaces: " << st;
    }
  }

  // A container's main process on the host, from conmon's pid file.
  pid_t HostPid(const std::string& id) {
    int pid = 0;
    std::string s =
        ReadFile(absl::StrCat(berthd_->state_dir(), "/containers/", id, "/pidfile")).value_or("");
    EXPECT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(s), &pid)) << s;
    return pid;
  }

  // The real, effective, saved and filesystem uids from the host's /proc/<pid>/status.
  std::string HostUids(pid_t pid) {
    std::string status = ReadFile(absl::StrCat("/proc/", pid, "/status")).value_or("");
    for (absl::string_view line : absl::StrSplit(status, '\n')) {
      if (absl::ConsumePrefix(&line, "Uid:")) return absl::StrJoin(Fields(std::string(line)), " ");
    }
    return "";
  }
};

TEST_F(UserNamespaceTest, PodRunsInOneMappedUserNamespace) {
  cri::StatusRequest sreq;
  cri::StatusResponse sresp;
  ASSERT_TRUE(berthd_->runtime().Status(Ctx().get(), sreq, &sresp).ok());
  ASSERT_GT(sresp.runtime_handlers_size(), 0);
  for (const auto& h : sresp.runtime_handlers()) {
    EXPECT_TRUE(h.features().user_namespaces()) << "handler \"" << h.name() << "\"";
  }

  cri::PodSandboxConfig pod = Pod("userns");
  SetPodUserns(pod.mutable_linux()->mutable_security_context()->mutable_namespace_options());
  {
    // mkdtemp made the test's directory 0700: the pod's root could not reach its rootfs.
    cri::RunPodSandboxRequest req;
    *req.mutable_config() = pod;
    cri::RunPodSandboxResponse resp;
    grpc::Status st = berthd_->runtime().RunPodSandbox(Ctx().get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
    EXPECT_TRUE(absl::StrContains(st.error_message(), dir_.path() + " has mode 0700"))
        << st.error_message();
  }
  ASSERT_EQ(chmod(dir_.path().c_str(), 0711), 0);
  std::string pod_id = RunPod(pod);
  ASSERT_FALSE(pod_id.empty());
  // The first container asks as kubelet does (the pod's options again), the second not at all.
  std::string first =
      Run(pod_id, pod, "first", {"/bin/sleep", "1000"}, [](cri::ContainerConfig* c) {
        SetPodUserns(c->mutable_linux()->mutable_security_context()->mutable_namespace_options());
      });
  std::string second = Run(pod_id, pod, "second", {"/bin/sleep", "1000"});

  EXPECT_EQ(Fields(Exec(first, {"cat", "/proc/self/uid_map"}).stdout()),
            (std::vector<std::string>{"0", "200000", "65536"}));
  EXPECT_EQ(Fields(Exec(first, {"cat", "/proc/self/gid_map"}).stdout()),
            (std::vector<std::string>{"0", "200000", "65536"}));
  EXPECT_EQ(Exec(first, {"id", "-u"}).stdout(), "0\n");
  // The image's files (host root in the layers) belong to the pod's root.
  std::vector<std::string> ls = Fields(Exec(first, {"ls", "-ln", "/bin/busybox"}).stdout());
  ASSERT_GE(ls.size(), 4u);
  EXPECT_EQ(ls[2], "0");
  EXPECT_EQ(ls[3], "0");
  // What it writes lands in its upper dir under the pod's host IDs.
  EXPECT_EQ(Exec(first, {"touch", "/newfile"}).exit_code(), 0);
  struct stat st;
  const std::string upper = absl::StrCat(berthd_->root(), "/images/containers/", first, "/upper");
  ASSERT_EQ(stat((upper + "/newfile").c_str(), &st), 0) << upper;
  EXPECT_EQ(st.st_uid, 200000u);
  EXPECT_EQ(st.st_gid, 200000u);
  // The pod's files and /dev/shm are its root's too, and sysfs is mounted (the pod owns its netns).
  for (const char* f : {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/dev/shm"}) {
    std::vector<std::string> l = Fields(Exec(first, {"ls", "-lnd", f}).stdout());
    ASSERT_GE(l.size(), 4u) << f;
    EXPECT_EQ(l[2], "0") << f;
  }
  EXPECT_EQ(Exec(first, {"sh", "-c", "echo x >> /etc/hosts && touch /dev/shm/f"}).exit_code(), 0);
  EXPECT_TRUE(absl::StrContains(Exec(first, {"grep", " /sys ", "/proc/mounts"}).stdout(), "sysfs"));
  EXPECT_TRUE(absl::StrContains(Exec(first, {"ls", "/sys/class/net"}).stdout(), "lo"));

  // One user namespace for the pod: both containers and the pinned file are the same one.
  std::string ns_first = Exec(first, {"/bin/busybox", "readlink", "/proc/self/ns/user"}).stdout();
  EXPECT_TRUE(absl::StartsWith(ns_first, "user:[")) << ns_first;
  EXPECT_EQ(ns_first, Exec(second, {"/bin/busybox", "readlink", "/proc/self/ns/user"}).stdout());
  const std::string pin = absl::StrCat(berthd_->state_dir(), "/sandboxes/", pod_id, "/userns");
  ASSERT_EQ(stat(pin.c_str(), &st), 0);
  EXPECT_EQ(ns_first, absl::StrCat("user:[", st.st_ino, "]\n"));
  // From the host, the containers and the pause process run as host uid 200000.
  EXPECT_EQ(HostUids(HostPid(first)), "200000 200000 200000 200000");
  EXPECT_EQ(HostUids(HostPid(second)), "200000 200000 200000 200000");
  EXPECT_EQ(HostUids(HostPid(pod_id)), "200000 200000 200000 200000");

  ASSERT_TRUE(RemovePod(pod_id).ok());
  for (const std::string& m : MountsUnder(dir_.path())) {
    EXPECT_FALSE(absl::StrContains(m, pod_id) || absl::StrContains(m, first) ||
                 absl::StrContains(m, second) || absl::StrContains(m, "/idmap"))
        << "left mounted: " << m;
  }
}

TEST_F(UserNamespaceTest, PodUserNamespaceSurvivesABerthdCrash) {
  ASSERT_EQ(chmod(dir_.path().c_str(), 0711), 0);
  cri::PodSandboxConfig pod = Pod("userns-restart");
  SetPodUserns(pod.mutable_linux()->mutable_security_context()->mutable_namespace_options(),
               330000);
  std::string pod_id = RunPod(pod);
  ASSERT_FALSE(pod_id.empty());
  std::string before = Run(pod_id, pod, "before", {"/bin/sleep", "1000"});
  berthd_->Kill();
  ASSERT_TRUE(berthd_->Start({.config_toml = Config()}).ok()) << berthd_->log();
  // The pinned namespace and the recorded mappings serve containers made after the restart.
  std::string after = Run(pod_id, pod, "after", {"/bin/sleep", "1000"});
  std::string ns = Exec(before, {"/bin/busybox", "readlink", "/proc/self/ns/user"}).stdout();
  EXPECT_TRUE(absl::StartsWith(ns, "user:[")) << ns;
  EXPECT_EQ(ns, Exec(after, {"/bin/busybox", "readlink", "/proc/self/ns/user"}).stdout());
  EXPECT_EQ(HostUids(HostPid(after)), "330000 330000 330000 330000");
  ASSERT_TRUE(RemovePod(pod_id).ok());
  EXPECT_TRUE(MountsUnder(dir_.path()).empty()) << absl::StrJoin(MountsUnder(dir_.path()), ", ");
}

TEST_F(UserNamespaceTest, VolumesWithMappingsAreIdmapped) {
  ASSERT_EQ(chmod(dir_.path().c_str(), 0711), 0);
  const std::string vol = dir_.path() + "/vol";
  ASSERT_TRUE(MakeDirs(vol, 0755).ok());
  ASSERT_TRUE(WriteFileAtomic(vol + "/data", "host\n", 0644).ok());
  cri::PodSandboxConfig pod = Pod("userns-vol");
  SetPodUserns(pod.mutable_linux()->mutable_security_context()->mutable_namespace_options());
  std::string pod_id = RunPod(pod);
  ASSERT_FALSE(pod_id.empty());
  std::string id = Run(pod_id, pod, "c", {"/bin/sleep", "1000"}, [&](cri::ContainerConfig* c) {
    auto* mapped = c->add_mounts();
    mapped->set_host_path(vol);
    mapped->set_container_path("/mapped");
    auto* plain = c->add_mounts();
    plain->set_host_path(vol);
    plain->set_container_path("/plain");
    const auto& u = pod.linux().security_context().namespace_options().userns_options();
    *mapped->mutable_uidmappings() = u.uids();
    *mapped->mutable_gidmappings() = u.gids();
  });
  // Through the idmapped mount host root's file is the pod root's, and writable by it; without
  // mappings it belongs to nobody.
  std::vector<std::string> l = Fields(Exec(id, {"ls", "-ln", "/mapped/data"}).stdout());
  ASSERT_GE(l.size(), 4u);
  EXPECT_EQ(l[2], "0");
  EXPECT_EQ(Exec(id, {"sh", "-c", "echo pod >> /mapped/data"}).exit_code(), 0);
  l = Fields(Exec(id, {"ls", "-ln", "/plain/data"}).stdout());
  ASSERT_GE(l.size(), 4u);
  EXPECT_EQ(l[2], "65534");
  EXPECT_EQ(ReadFile(vol + "/data").value_or(""), "host\npod\n");
  struct stat st;
  ASSERT_EQ(stat((vol + "/data").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  // The idmapped copy was attached only for runc create.
  EXPECT_FALSE(PathExists(absl::StrCat(berthd_->state_dir(), "/idmap/", id)));
  ASSERT_TRUE(RemovePod(pod_id).ok());
  EXPECT_TRUE(MountsUnder(dir_.path()).empty()) << absl::StrJoin(MountsUnder(dir_.path()), ", ");
}

TEST_F(SecurityTest, BadUserNamespaceOptionsAreInvalidArgument) {
  const std::string field = "linux.security_context.namespace_options.userns_options";
  auto run = [&](const std::function<void(cri::UserNamespace*)>& edit) {
    cri::PodSandboxConfig pod = Pod("bad-userns");
    auto* nso = pod.mutable_linux()->mutable_security_context()->mutable_namespace_options();
    SetPodUserns(nso);
    edit(nso->mutable_userns_options());
    cri::RunPodSandboxRequest req;
    *req.mutable_config() = pod;
    cri::RunPodSandboxResponse resp;
    return berthd_->runtime().RunPodSandbox(Ctx().get(), req, &resp);
  };
  struct Case {
    std::function<void(cri::UserNamespace*)> edit;
    std::string names;
  };
  std::vector<Case> cases = {
      {[](cri::UserNamespace* u) { u->set_mode(cri::CONTAINER); }, field + ".mode"},
      {[](cri::UserNamespace* u) { u->set_mode(cri::TARGET); }, field + ".mode"},
      {[](cri::UserNamespace* u) { u->set_mode(cri::NODE); }, field + ".uids"},
      {[](cri::UserNamespace* u) { u->clear_uids(); }, field + ".uids"},
      {[](cri::UserNamespace* u) { u->clear_gids(); }, field + ".gids"},
      {[](cri::UserNamespace* u) { u->mutable_uids(0)->set_host_id(0); },
       field + ".uids[0].host_id"},
      {[](cri::UserNamespace* u) { u->mutable_uids(0)->set_length(0); }, field + ".uids[0].length"},
      {[](cri::UserNamespace* u) { u->mutable_gids(0)->set_host_id(4294967295u); },
       field + ".gids[0]"},
      {[](cri::UserNamespace* u) { *u->add_uids() = u->uids(0); }, "overlap"},
  };
  for (const Case& c : cases) {
    grpc::Status st = run(c.edit);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.names << ": " << st.error_message();
    EXPECT_TRUE(absl::StrContains(st.error_message(), c.names)) << st.error_message();
  }
  // A container cannot leave its pod's user namespace, nor ask for one in a pod without.
  cri::PodSandboxConfig pod = Pod("host-users");
  std::string pod_id = RunPod(pod);
  cri::CreateContainerRequest req;
  req.set_pod_sandbox_id(pod_id);
  *req.mutable_sandbox_config() = pod;
  req.mutable_config()->mutable_metadata()->set_name("c");
  req.mutable_config()->mutable_image()->set_image("busybox");
  req.mutable_config()->add_command("/bin/true");
  SetPodUserns(req.mutable_config()
                   ->mutable_linux()
                   ->mutable_security_context()
                   ->mutable_namespace_options());
  cri::CreateContainerResponse resp;
  grpc::Status st = berthd_->runtime().CreateContainer(Ctx().get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_TRUE(absl::StrContains(st.error_message(), field + ".mode")) << st.error_message();
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

TEST_F(SecurityTest, MemoryLimitKillIsReportedAsOomKilled) {
  cri::PodSandboxConfig pod = Pod("oom");
  std::string pod_id = RunPod(pod);
  std::string id =
      Run(pod_id, pod, "hog", {"/bin/sh", "-c", "head -c 200000000 /dev/zero | tail > /dev/null"},
          [](cri::ContainerConfig* c) {
            c->mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(16 << 20);
          });
  cri::ContainerStatus s = WaitExited(id);
  EXPECT_EQ(s.reason(), "OOMKilled");
  EXPECT_EQ(s.exit_code(), 137);
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

// Only a worker is OOM-killed and the container's init exits 0: OOMKilled all the same, as
// containerd reports it. On cgroup v1 conmon's eventfd on memory.oom_control sees every OOM kill
// in the cgroup; on v2 the count in memory.events, read at the exit, does (test/vm/run.sh).
TEST_F(SecurityTest, AnOomKilledWorkerMakesTheContainerOomKilled) {
  cri::PodSandboxConfig pod = Pod("oom-worker");
  std::string pod_id = RunPod(pod);
  std::string id =
      Run(pod_id, pod, "worker",
          {"/bin/sh", "-c", "head -c 200000000 /dev/zero | tail > /dev/null; exit 0"},
          [](cri::ContainerConfig* c) {
            c->mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(16 << 20);
          });
  cri::ContainerStatus s = WaitExited(id);
  EXPECT_EQ(s.reason(), "OOMKilled");
  EXPECT_EQ(s.exit_code(), 0);
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

TEST_F(SecurityTest, UpdateContainerResourcesChangesTheCgroup) {
  if (!PathExists("/sys/fs/cgroup/memory/memory.limit_in_bytes")) {
    GTEST_SKIP()
        << "reads v1 files; on cgroup v2 //test/integration:cgroup_v2_test checks the update";
  }
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
  std::string path =
      absl::StrCat("/sys/fs/cgroup/memory/berth/berth-", id, "/memory.limit_in_bytes");
  EXPECT_EQ(ReadFile(path).value_or(""), absl::StrCat(64 << 20, "\n")) << path;
  EXPECT_EQ(
      ReadFile(absl::StrCat("/sys/fs/cgroup/cpu/berth/berth-", id, "/cpu.shares")).value_or(""),
      "512\n");
  EXPECT_EQ(Status(id).resources().linux().memory_limit_in_bytes(), 64 << 20);
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

}  // namespace
}  // namespace berth::test
