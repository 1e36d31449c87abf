// OCI spec generation from CRI requests: args, env, users, namespaces, mounts and confinement.
#include "runtime/spec.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "test/util/temp_dir.h"
#include "util/fs.h"

namespace berth::engine {
namespace {

namespace cri = runtime::v1;
using json = nlohmann::json;

class SpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeDirs(root_.path() + "/rootfs/etc").ok());
    ASSERT_TRUE(WriteFileAtomic(root_.path() + "/rootfs/etc/passwd",
                                "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/sh\n")
                    .ok());
    ASSERT_TRUE(WriteFileAtomic(root_.path() + "/rootfs/etc/group", "root:x:0:\nwww:x:33:\n").ok());
    ASSERT_TRUE(MakeDirs(root_.path() + "/pod").ok());
    for (const char* f : {"hosts", "resolv.conf", "hostname"}) {
      ASSERT_TRUE(WriteFileAtomic(absl::StrCat(root_.path(), "/pod/", f), "x\n").ok());
    }
    pod_cfg_.mutable_metadata()->set_name("p");
    pod_cfg_.set_hostname("p-host");
    pod_.pod = &pod_cfg_;
    pod_.sandbox_id = "sb";
    pod_.sandbox_dir = root_.path() + "/pod";
    pod_.netns_path = "/run/berth/netns/sb";
    pod_.infra_pid = 4242;
    image_.add_entrypoint("/entry");
    image_.add_cmd("default-arg");
    image_.add_env("FROM_IMAGE=1");
    image_.add_env("SHARED=image");
    config_.mutable_metadata()->set_name("c");
  }

  absl::StatusOr<json> Build() {
    return BuildContainerSpec(pod_, config_, image_, "cid", root_.path() + "/rootfs",
                              SpecOptions{.cgroups_path = "/berth/berth-cid"});
  }

  static bool HasNamespace(const json& spec, const std::string& type, const std::string& path) {
    for (const auto& ns : spec["linux"]["namespaces"]) {
      if (ns["type"] == type) return path == ns.value("path", "");
    }
    return false;
  }

  test::TempDir root_;
  cri::PodSandboxConfig pod_cfg_;
  PodContext pod_;
  berth::v1::ImageConfig image_;
  cri::ContainerConfig config_;
};

TEST_F(SpecTest, ArgsFollowKubeletRules) {
  EXPECT_EQ(*ContainerArgs(config_, image_), (std::vector<std::string>{"/entry", "default-arg"}));
  config_.add_args("a");
  EXPECT_EQ(*ContainerArgs(config_, image_), (std::vector<std::string>{"/entry", "a"}));
  config_.add_command("/cmd");
  EXPECT_EQ(*ContainerArgs(config_, image_), (std::vector<std::string>{"/cmd", "a"}));
  cri::ContainerConfig none;
  EXPECT_TRUE(absl::IsInvalidArgument(ContainerArgs(none, berth::v1::ImageConfig()).status()));
}

TEST_F(SpecTest, EnvironmentMergesImageAndRequest) {
  auto* kv = config_.add_envs();
  kv->set_key("SHARED");
  kv->set_value("request");
  std::vector<std::string> env = ContainerEnv(config_, image_, "h", "/root");
  EXPECT_NE(std::find(env.begin(), env.end(), "SHARED=request"), env.end());
  EXPECT_NE(std::find(env.begin(), env.end(), "FROM_IMAGE=1"), env.end());
  EXPECT_NE(std::find(env.begin(), env.end(), "HOSTNAME=h"), env.end());
  EXPECT_NE(std::find(env.begin(), env.end(), "HOME=/root"), env.end());
  EXPECT_EQ(std::count_if(env.begin(), env.end(),
                          [](const std::string& e) { return e.rfind("SHARED=", 0) == 0; }),
            1);
}

TEST_F(SpecTest, ContainerJoinsThePodsNamespacesAndFiles) {
  auto spec = Build();
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(HasNamespace(*spec, "network", "/run/berth/netns/sb"));
  EXPECT_TRUE(HasNamespace(*spec, "ipc", "/proc/4242/ns/ipc"));
  EXPECT_TRUE(HasNamespace(*spec, "uts", "/proc/4242/ns/uts"));
  // CRI's zero value for the PID mode is POD: the pod's PID namespace is shared.
  EXPECT_TRUE(HasNamespace(*spec, "pid", "/proc/4242/ns/pid"));
  EXPECT_EQ((*spec)["hostname"], "p-host");
  std::set<std::string> dsts;
  for (const auto& m : (*spec)["mounts"]) dsts.insert(m["destination"]);
  for (const char* d :
       {"/proc", "/dev", "/dev/shm", "/sys", "/etc/hosts", "/etc/resolv.conf", "/etc/hostname"}) {
    EXPECT_TRUE(dsts.count(d)) << d;
  }
  EXPECT_EQ((*spec)["linux"]["cgroupsPath"], "/berth/berth-cid");
  EXPECT_EQ((*spec)["annotations"]["io.kubernetes.cri.sandbox-id"], "sb");
}

TEST_F(SpecTest, ContainerPidModeGetsAPrivatePidNamespace) {
  config_.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
      cri::CONTAINER);
  auto spec = Build();
  ASSERT_TRUE(spec.ok());
  EXPECT_TRUE(HasNamespace(*spec, "pid", ""));
}

TEST_F(SpecTest, DefaultsConfineTheContainer) {
  auto spec = Build();
  ASSERT_TRUE(spec.ok());
  EXPECT_TRUE(spec->at("linux").contains("seccomp"));
  EXPECT_FALSE((*spec)["linux"]["maskedPaths"].empty());
  EXPECT_FALSE((*spec)["linux"]["readonlyPaths"].empty());
  auto caps = (*spec)["process"]["capabilities"]["bounding"];
  EXPECT_NE(std::find(caps.begin(), caps.end(), "CAP_CHOWN"), caps.end());
  EXPECT_EQ(std::find(caps.begin(), caps.end(), "CAP_SYS_ADMIN"), caps.end());
}

TEST_F(SpecTest, PrivilegedDropsConfinement) {
  config_.mutable_linux()->mutable_security_context()->set_privileged(true);
  auto spec = Build();
  ASSERT_TRUE(spec.ok());
  EXPECT_FALSE(spec->at("linux").contains("seccomp"));
  EXPECT_FALSE(spec->at("linux").contains("maskedPaths"));
  auto caps = (*spec)["process"]["capabilities"]["bounding"];
  EXPECT_NE(std::find(caps.begin(), caps.end(), "CAP_SYS_ADMIN"), caps.end());
}

TEST_F(SpecTest, CapabilityChangesAndBadNames) {
  auto* c = config_.mutable_linux()->mutable_security_context()->mutable_capabilities();
  c->add_add_capabilities("NET_ADMIN");
  c->add_drop_capabilities("CHOWN");
  auto spec = Build();
  ASSERT_TRUE(spec.ok());
  auto caps = (*spec)["process"]["capabilities"]["effective"];
  EXPECT_NE(std::find(caps.begin(), caps.end(), "CAP_NET_ADMIN"), caps.end());
  EXPECT_EQ(std::find(caps.begin(), caps.end(), "CAP_CHOWN"), caps.end());
  c->add_add_capabilities("NOT_A_CAP");
  EXPECT_TRUE(absl::IsInvalidArgument(Build().status()));
}

TEST_F(SpecTest, UserFromImageAndRequest) {
  image_.set_user("www");
  auto spec = Build();
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ((*spec)["process"]["user"]["uid"], 33);
  config_.mutable_linux()->mutable_security_context()->mutable_run_as_user()->set_value(1000);
  spec = Build();
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ((*spec)["process"]["user"]["uid"], 1000);
}

TEST_F(SpecTest, RunAsGroupWithoutUserIsRefused) {
  config_.mutable_linux()->mutable_security_context()->mutable_run_as_group()->set_value(5);
  absl::Status st = Build().status();
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_NE(st.message().find("run_as_group"), std::string::npos);
}

TEST_F(SpecTest, MountPathsAreValidated) {
  auto* m = config_.add_mounts();
  m->set_container_path("/data/../etc");
  m->set_host_path(root_.path());
  EXPECT_TRUE(absl::IsInvalidArgument(Build().status()));
  m->set_container_path("relative");
  EXPECT_TRUE(absl::IsInvalidArgument(Build().status()));
  m->set_container_path("/data");
  m->set_readonly(true);
  m->set_propagation(cri::PROPAGATION_HOST_TO_CONTAINER);
  auto spec = Build();
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ((*spec)["linux"]["rootfsPropagation"], "rslave");
}

// Found by //server:cri_request_fuzz: two recursive read-only mounts at one path made
// CreateContainer answer INTERNAL (the first staged copy took both spec entries).
TEST_F(SpecTest, TwoMountsAtOnePathAreRefused) {
  for (const char* path : {"/data", "/data/"}) {
    auto* m = config_.add_mounts();
    m->set_container_path(path);
    m->set_host_path(root_.path());
  }
  absl::Status st = Build().status();
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "mounts[1].container_path")) << st;
  config_.mutable_mounts(1)->set_container_path("/data2");
  EXPECT_TRUE(Build().ok());
}

TEST_F(SpecTest, OomScoreAdjIsClampedToTheFloor) {
  EXPECT_EQ(ClampOomScoreAdj(-998, 0), 0);
  EXPECT_EQ(ClampOomScoreAdj(500, 0), 500);
  EXPECT_EQ(ClampOomScoreAdj(-998, -1000), -998);
}

TEST_F(SpecTest, InfraSpecRunsPauseReadOnlyWithNewNamespaces) {
  auto spec =
      BuildInfraSpec(pod_, "/var/lib/berth/infra-rootfs", "/pause",
                     SpecOptions{.cgroups_path = "/berth/berth-sb", .oom_score_adj_floor = 0});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ((*spec)["process"]["args"], json::array({"/pause"}));
  EXPECT_TRUE((*spec)["root"]["readonly"].get<bool>());
  EXPECT_EQ((*spec)["process"]["oomScoreAdj"], 0);
  EXPECT_TRUE(HasNamespace(*spec, "network", "/run/berth/netns/sb"));
  EXPECT_TRUE(HasNamespace(*spec, "ipc", ""));
  EXPECT_TRUE((*spec)["process"]["noNewPrivileges"].get<bool>());
}

TEST_F(SpecTest, HostUserNamespaceHasNoUserEntryOrMappings) {
  auto spec = Build();
  ASSERT_TRUE(spec.ok());
  for (const auto& ns : (*spec)["linux"]["namespaces"]) EXPECT_NE(ns["type"], "user");
  EXPECT_FALSE((*spec)["linux"].contains("uidMappings"));
  EXPECT_FALSE((*spec)["linux"].contains("gidMappings"));
}

TEST_F(SpecTest, PodUserNamespaceIsJoinedByEveryContainerWithItsMappings) {
  pod_.userns_path = "/run/berth/sandboxes/sb/userns";
  cri::IDMapping m;
  m.set_container_id(0);
  m.set_host_id(200000);
  m.set_length(65536);
  pod_.uid_mappings = {m};
  m.set_host_id(300000);
  pod_.gid_mappings = {m};
  config_.mutable_linux()->mutable_security_context()->mutable_run_as_user()->set_value(1000);
  const json uids = json::array({{{"containerID", 0}, {"hostID", 200000}, {"size", 65536}}});
  const json gids = json::array({{{"containerID", 0}, {"hostID", 300000}, {"size", 65536}}});
  auto infra = BuildInfraSpec(pod_, "/var/lib/berth/infra-rootfs", "/pause",
                              SpecOptions{.cgroups_path = "/berth/berth-sb"});
  ASSERT_TRUE(infra.ok()) << infra.status();
  auto container = Build();
  ASSERT_TRUE(container.ok()) << container.status();
  for (const json* spec : {&*infra, &*container}) {
    EXPECT_TRUE(HasNamespace(*spec, "user", "/run/berth/sandboxes/sb/userns"));
    EXPECT_EQ((*spec)["linux"]["uidMappings"], uids);
    EXPECT_EQ((*spec)["linux"]["gidMappings"], gids);
    EXPECT_TRUE(HasNamespace(*spec, "network", "/run/berth/netns/sb"));
  }
  // IDs in the request are the container's: the pause process runs as the pod's root.
  EXPECT_EQ((*infra)["process"]["user"]["uid"], 0);
  EXPECT_EQ((*container)["process"]["user"]["uid"], 1000);
}

}  // namespace
}  // namespace berth::engine
