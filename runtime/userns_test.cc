// Pod user namespaces: mapping validation, pinned namespaces, idmapped trees and staged volumes.
#include "runtime/userns.h"
#include "util/mount.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/nsfs.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "test/util/temp_dir.h"
#include "util/fs.h"

namespace berth::engine {
namespace {

namespace cri = runtime::v1;
using json = nlohmann::json;

constexpr long kNsfsMagic = 0x6e736673;

void AddMapping(IdMappings* m, uint32_t container, uint32_t host, uint32_t length) {
  cri::IDMapping* x = m->Add();
  x->set_container_id(container);
  x->set_host_id(host);
  x->set_length(length);
}

IdMappings PodRange(uint32_t host = 200000) {
  IdMappings m;
  AddMapping(&m, 0, host, 65536);
  return m;
}

cri::NamespaceOption PodUserns(uint32_t host = 200000) {
  cri::NamespaceOption o;
  o.mutable_userns_options()->set_mode(cri::POD);
  *o.mutable_userns_options()->mutable_uids() = PodRange(host);
  *o.mutable_userns_options()->mutable_gids() = PodRange(host);
  return o;
}

// InvalidArgument whose message names `field`.
::testing::AssertionResult NamesField(const absl::Status& st, absl::string_view field) {
  if (!absl::IsInvalidArgument(st)) return ::testing::AssertionFailure() << "got " << st;
  if (!absl::StrContains(st.message(), field)) {
    return ::testing::AssertionFailure() << st.message() << " does not name " << field;
  }
  return ::testing::AssertionSuccess();
}

TEST(UsernsValidationTest, AbsentOrNodeIsTheHostsNamespace) {
  cri::NamespaceOption none;
  EXPECT_FALSE(*ValidatePodUserNamespace(none));
  cri::NamespaceOption node;
  node.mutable_userns_options()->set_mode(cri::NODE);
  EXPECT_FALSE(*ValidatePodUserNamespace(node));
  EXPECT_TRUE(*ValidatePodUserNamespace(PodUserns()));
}

TEST(UsernsValidationTest, ContainerAndTargetModesAreRefused) {
  for (cri::NamespaceMode mode : {cri::CONTAINER, cri::TARGET}) {
    cri::NamespaceOption o = PodUserns();
    o.mutable_userns_options()->set_mode(mode);
    EXPECT_TRUE(NamesField(ValidatePodUserNamespace(o).status(),
                           "linux.security_context.namespace_options.userns_options.mode"));
  }
}

TEST(UsernsValidationTest, NodeModeTakesNoMappings) {
  cri::NamespaceOption o = PodUserns();
  o.mutable_userns_options()->set_mode(cri::NODE);
  EXPECT_TRUE(NamesField(ValidatePodUserNamespace(o).status(), "userns_options.uids"));
}

TEST(UsernsValidationTest, PodModeNeedsMappings) {
  cri::NamespaceOption o = PodUserns();
  o.mutable_userns_options()->clear_uids();
  EXPECT_TRUE(NamesField(ValidatePodUserNamespace(o).status(), "userns_options.uids"));
  o = PodUserns();
  o.mutable_userns_options()->clear_gids();
  EXPECT_TRUE(NamesField(ValidatePodUserNamespace(o).status(), "userns_options.gids"));
}

TEST(UsernsValidationTest, PodModeRefusesTheHostsOtherNamespaces) {
  cri::NamespaceOption o = PodUserns();
  o.set_network(cri::NODE);
  EXPECT_TRUE(NamesField(ValidatePodUserNamespace(o).status(), "namespace_options.network"));
  o = PodUserns();
  o.set_pid(cri::NODE);
  EXPECT_TRUE(NamesField(ValidatePodUserNamespace(o).status(), "namespace_options.pid"));
  o = PodUserns();
  o.set_ipc(cri::NODE);
  EXPECT_TRUE(NamesField(ValidatePodUserNamespace(o).status(), "namespace_options.ipc"));
}

TEST(UsernsValidationTest, BadRangesNameTheMapping) {
  IdMappings m;
  EXPECT_TRUE(NamesField(ValidateIdMappings(m, "f"), "f must have"));
  AddMapping(&m, 0, 200000, 0);
  EXPECT_TRUE(NamesField(ValidateIdMappings(m, "f"), "f[0].length"));
  m = PodRange();
  AddMapping(&m, 70000, 4294967000u, 1000);
  EXPECT_TRUE(NamesField(ValidateIdMappings(m, "f"), "f[1]: host IDs"));
  m = PodRange();
  AddMapping(&m, 4294967000u, 300000, 1000);
  EXPECT_TRUE(NamesField(ValidateIdMappings(m, "f"), "f[1]: container IDs"));
  m = PodRange();
  AddMapping(&m, 65535, 400000, 10);
  EXPECT_TRUE(NamesField(ValidateIdMappings(m, "f"), "f[0] and f[1] overlap in container IDs"));
  m = PodRange();
  AddMapping(&m, 70000, 265535, 10);
  EXPECT_TRUE(NamesField(ValidateIdMappings(m, "f"), "f[0] and f[1] overlap in host IDs"));
  m.Clear();
  AddMapping(&m, 1, 200000, 10);
  EXPECT_TRUE(NamesField(ValidateIdMappings(m, "f"), "must map container ID 0"));
  m.Clear();
  AddMapping(&m, 0, 0, 65536);
  EXPECT_TRUE(NamesField(ValidateIdMappings(m, "f"), "f[0].host_id 0"));
  m.Clear();
  for (uint32_t i = 0; i < 341; ++i) AddMapping(&m, i, 200000 + i, 1);
  EXPECT_TRUE(NamesField(ValidateIdMappings(m, "f"), "at most 340"));
  // Adjacent ranges are fine, and so is the largest range that fits in 32 bits.
  m = PodRange();
  AddMapping(&m, 65536, 265536, 65536);
  EXPECT_TRUE(ValidateIdMappings(m, "f").ok());
  m.Clear();
  AddMapping(&m, 0, 1, 4294967294u);
  EXPECT_TRUE(ValidateIdMappings(m, "f").ok());
}

TEST(UsernsValidationTest, ContainersFollowTheirPod) {
  cri::NamespaceOption pod = PodUserns();
  cri::NamespaceOption host;
  cri::NamespaceOption unset;
  EXPECT_TRUE(ValidateContainerUserNamespace(unset, pod).ok());
  EXPECT_TRUE(ValidateContainerUserNamespace(pod, pod).ok());
  EXPECT_TRUE(ValidateContainerUserNamespace(unset, host).ok());
  cri::NamespaceOption node;
  node.mutable_userns_options()->set_mode(cri::NODE);
  EXPECT_TRUE(ValidateContainerUserNamespace(node, host).ok());
  EXPECT_TRUE(NamesField(ValidateContainerUserNamespace(node, pod), "userns_options.mode"));
  EXPECT_TRUE(NamesField(ValidateContainerUserNamespace(pod, host), "userns_options.mode"));
  EXPECT_TRUE(
      NamesField(ValidateContainerUserNamespace(PodUserns(300000), pod), "userns_options.uids"));
  cri::NamespaceOption container = pod;
  container.mutable_userns_options()->set_mode(cri::CONTAINER);
  EXPECT_TRUE(NamesField(ValidateContainerUserNamespace(container, pod), "userns_options.mode"));
}

TEST(UsernsValidationTest, HostIdsAndMapFile) {
  IdMappings m = PodRange();
  AddMapping(&m, 65536, 500000, 10);
  EXPECT_EQ(*HostIdOf(m, 0), 200000u);
  EXPECT_EQ(*HostIdOf(m, 65535), 265535u);
  EXPECT_EQ(*HostIdOf(m, 65537), 500001u);
  EXPECT_FALSE(HostIdOf(m, 65546).ok());
  EXPECT_EQ(IdMapFile(m), "0 200000 65536\n65536 500000 10\n");
  HostRoot root = *HostRootOf(PodRange(200000), PodRange(300000));
  EXPECT_EQ(root.uid, 200000u);
  EXPECT_EQ(root.gid, 300000u);
}

// The rest makes namespaces and mounts: it needs root and a kernel that berth can use.
class UsernsKernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status st = ProbeUserNamespaces(dir_.path());
    if (!st.ok()) GTEST_SKIP() << "this kernel cannot run pods in user namespaces: " << st;
  }

  // What a process that joins the user namespace at `path` reads from /proc/self/uid_map.
  static std::string UidMapSeenInside(const std::string& path) {
    int p[2];
    if (pipe(p) != 0) return "";
    pid_t pid = fork();
    if (pid == 0) {
      close(p[0]);
      int fd = open(path.c_str(), O_RDONLY);
      if (fd < 0 || setns(fd, CLONE_NEWUSER) != 0) _exit(1);
      int m = open("/proc/self/uid_map", O_RDONLY);
      char buf[256];
      ssize_t n = m < 0 ? -1 : read(m, buf, sizeof(buf));
      if (n > 0 && write(p[1], buf, n) != n) _exit(1);
      _exit(0);
    }
    close(p[1]);
    std::string out;
    char buf[256];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof(buf))) > 0) out.append(buf, n);
    close(p[0]);
    waitpid(pid, nullptr, 0);
    return out;
  }

  static bool IsNsfs(const std::string& path) {
    struct statfs st;
    return statfs(path.c_str(), &st) == 0 && st.f_type == kNsfsMagic;
  }

  test::TempDir dir_;
};

TEST_F(UsernsKernelTest, PodNamespacesArePinnedAndTheNetnsBelongsToTheUserns) {
  const std::string user = dir_.path() + "/userns", net = dir_.path() + "/netns";
  ASSERT_TRUE(CreatePodNamespaces(PodRange(), PodRange(), user, net).ok());
  EXPECT_TRUE(IsNsfs(user));
  EXPECT_TRUE(IsNsfs(net));
  EXPECT_EQ(UidMapSeenInside(user), absl::StrCat("         0     200000      65536\n"));
  absl::StatusOr<UniqueFd> userns = OpenUserNamespace(user);
  ASSERT_TRUE(userns.ok()) << userns.status();
  UniqueFd netns(open(net.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(netns.valid());
  UniqueFd owner(ioctl(netns.get(), NS_GET_USERNS));
  ASSERT_TRUE(owner.valid()) << strerror(errno);
  struct stat a, b;
  ASSERT_EQ(fstat(owner.get(), &a), 0);
  ASSERT_EQ(fstat(userns->get(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_FALSE(OpenUserNamespace(net).ok());  // a netns is not a user namespace

  // A second pin at the same place is refused; removal is idempotent and leaves nothing.
  EXPECT_FALSE(CreatePodNamespaces(PodRange(), PodRange(), user, "").ok());
  ASSERT_TRUE(RemovePinnedNamespace(user).ok());
  ASSERT_TRUE(RemovePinnedNamespace(net).ok());
  EXPECT_TRUE(RemovePinnedNamespace(user).ok());
  EXPECT_FALSE(PathExists(user));
  EXPECT_FALSE(PathExists(net));
}

TEST_F(UsernsKernelTest, IdmappedTreeShowsHostRootAsTheNamespacesRoot) {
  ASSERT_TRUE(MakeDirs(dir_.path() + "/src").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/src/f", "x").ok());
  ASSERT_EQ(chown((dir_.path() + "/src/f").c_str(), 1000, 1000), 0);
  absl::StatusOr<UniqueFd> userns = NewUserNamespace(PodRange(), PodRange());
  ASSERT_TRUE(userns.ok()) << userns.status();
  absl::StatusOr<UniqueFd> tree = IdmappedClone(dir_.path() + "/src", userns->get(), true);
  ASSERT_TRUE(tree.ok()) << tree.status();
  struct stat st;
  ASSERT_EQ(fstatat(tree->get(), "f", &st, 0), 0);
  EXPECT_EQ(st.st_uid, 201000u);
  EXPECT_EQ(st.st_gid, 201000u);
  EXPECT_TRUE(
      absl::IsNotFound(IdmappedClone(dir_.path() + "/absent", userns->get(), true).status()));
}

TEST_F(UsernsKernelTest, StagedVolumesAreIdmappedUntilReleased) {
  const std::string vol = dir_.path() + "/vol", file = dir_.path() + "/hosts";
  ASSERT_TRUE(MakeDirs(vol).ok());
  ASSERT_TRUE(WriteFileAtomic(vol + "/data", "keep").ok());
  ASSERT_TRUE(WriteFileAtomic(file, "127.0.0.1 localhost\n").ok());
  const std::string pod_userns = dir_.path() + "/userns";
  ASSERT_TRUE(CreatePodNamespaces(PodRange(), PodRange(), pod_userns, "").ok());

  cri::ContainerConfig config;
  auto add = [&](const std::string& host, const std::string& dst, uint32_t host_id) {
    cri::Mount* m = config.add_mounts();
    m->set_host_path(host);
    m->set_container_path(dst);
    *m->mutable_uidmappings() = PodRange(host_id);
    *m->mutable_gidmappings() = PodRange(host_id);
  };
  add(vol, "/data", 200000);                        // the pod's mappings: its pinned namespace
  add(file, "/etc/hosts", 300000);                  // others: a namespace of its own
  config.add_mounts()->set_host_path(dir_.path());  // no mappings: left alone
  config.mutable_mounts(2)->set_container_path("/plain");
  json spec = {{"mounts", json::array()}};
  for (const auto& m : config.mounts()) {
    spec["mounts"].push_back({{"destination", m.container_path()},
                              {"type", "bind"},
                              {"source", m.host_path()},
                              {"options", {"rbind"}}});
  }
  const std::string staging = dir_.path() + "/staging/ctr";
  {
    absl::StatusOr<StagedMounts> staged =
        StageIdmappedMounts(config, pod_userns, PodRange(), PodRange(), staging, &spec);
    ASSERT_TRUE(staged.ok()) << staged.status();
    EXPECT_EQ(staged->size(), 2u);
    EXPECT_EQ(spec["mounts"][0]["source"], staging + "/0");
    EXPECT_EQ(spec["mounts"][1]["source"], staging + "/1");
    EXPECT_EQ(spec["mounts"][2]["source"], dir_.path());
    struct stat st;
    ASSERT_EQ(stat((staging + "/0/data").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 200000u);
    ASSERT_EQ(stat((staging + "/1").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 300000u);
  }
  // Released: nothing mounted or left in the staging directory, the volumes untouched.
  EXPECT_FALSE(PathExists(staging));
  EXPECT_EQ(ReadFile(vol + "/data").value_or(""), "keep");
  EXPECT_TRUE(PathExists(file));
  EXPECT_TRUE(RemovePinnedNamespace(pod_userns).ok());
}

TEST_F(UsernsKernelTest, StagingRefusesBadVolumeMappings) {
  cri::ContainerConfig config;
  cri::Mount* m = config.add_mounts();
  m->set_host_path(dir_.path());
  m->set_container_path("/data");
  *m->mutable_uidmappings() = PodRange();
  json spec = {{"mounts", json::array()}};
  EXPECT_TRUE(NamesField(
      StageIdmappedMounts(config, "", PodRange(), PodRange(), dir_.path() + "/s", &spec).status(),
      "mounts[0].gidMappings"));
  *m->mutable_gidmappings() = PodRange();
  m->set_propagation(cri::PROPAGATION_BIDIRECTIONAL);
  EXPECT_TRUE(NamesField(
      StageIdmappedMounts(config, "", PodRange(), PodRange(), dir_.path() + "/s", &spec).status(),
      "mounts[0].propagation"));
  EXPECT_FALSE(PathExists(dir_.path() + "/s"));
}

TEST_F(UsernsKernelTest, LeftoverStagedMountsAreDetachedNotEmptied) {
  const std::string vol = dir_.path() + "/vol";
  ASSERT_TRUE(MakeDirs(vol).ok());
  ASSERT_TRUE(WriteFileAtomic(vol + "/data", "keep").ok());
  // What a berthd killed between staging and runc create leaves behind.
  const std::string point = dir_.path() + "/idmap/ctr/0";
  ASSERT_TRUE(MakeDirs(point).ok());
  absl::StatusOr<UniqueFd> userns = NewUserNamespace(PodRange(), PodRange());
  ASSERT_TRUE(userns.ok());
  absl::StatusOr<UniqueFd> tree = IdmappedClone(vol, userns->get(), true);
  ASSERT_TRUE(tree.ok());
  ASSERT_EQ(move_mount(tree->get(), "", AT_FDCWD, point.c_str(), MOVE_MOUNT_F_EMPTY_PATH), 0);
  ASSERT_TRUE(RemoveStagedMounts(dir_.path() + "/idmap").ok());
  EXPECT_FALSE(PathExists(dir_.path() + "/idmap/ctr"));
  EXPECT_EQ(ReadFile(vol + "/data").value_or(""), "keep");
  EXPECT_TRUE(RemoveStagedMounts(dir_.path() + "/absent").ok());
}

TEST(UsernsPathTest, RootfsMustBeReachableByOthers) {
  test::TempDir dir;
  ASSERT_TRUE(MakeDirs(dir.path() + "/a/b/rootfs").ok());
  ASSERT_EQ(chmod(dir.path().c_str(), 0711), 0);
  ASSERT_EQ(chmod((dir.path() + "/a").c_str(), 0700), 0);
  const HostRoot root{200000, 200000};
  absl::Status st = CheckReachableFromUserNamespace(dir.path() + "/a/b/rootfs", root);
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), dir.path() + "/a has mode 0700")) << st;
  ASSERT_EQ(chmod((dir.path() + "/a").c_str(), 0711), 0);
  EXPECT_TRUE(CheckReachableFromUserNamespace(dir.path() + "/a/b/rootfs", root).ok());
  // A private directory of the pod's root is as good.
  ASSERT_EQ(chmod((dir.path() + "/a/b").c_str(), 0700), 0);
  EXPECT_FALSE(CheckReachableFromUserNamespace(dir.path() + "/a/b/rootfs", root).ok());
  ASSERT_EQ(chown((dir.path() + "/a/b").c_str(), 200000, 200000), 0);
  EXPECT_TRUE(CheckReachableFromUserNamespace(dir.path() + "/a/b/rootfs", root).ok());
}

}  // namespace
}  // namespace berth::engine
