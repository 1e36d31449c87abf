// ImageStore against a real docker-registry on loopback: pulls (tag, digest, index, auth, mirror),
// corrupted blobs, concurrent pulls, removal with GC, and real overlay rootfs mounts.
#include "storage/images/image_store.h"

#include <fcntl.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/userns.h"
#include "storage/registry/digest.h"
#include "storage/registry/fake_http_server.h"
#include "storage/state_db.h"
#include "test/registry/tar_builder.h"
#include "test/registry/test_registry.h"
#include "test/util/temp_dir.h"

namespace berth::images {
namespace {

namespace fs = std::filesystem;
using registry::testing::FakeHttpServer;
using registry::testing::FakeRequest;
using registry::testing::StaticRegistry;
using test::Dir;
using test::File;
using test::Hardlink;
using test::MakeLayer;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

size_t CountEntries(const std::string& dir) {
  size_t n = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

// A base layer with the host's static busybox, and a second layer that deletes and adds files.
test::ImageToPush BusyboxImage(const std::string& marker) {
  test::ImageToPush img;
  img.layers.push_back(
      MakeLayer({Dir("bin"), File("bin/busybox", ReadAll("/bin/busybox"), 0755),
                 Hardlink("bin/sh", "bin/busybox"), Dir("etc"), File("etc/hello", "hello\n"),
                 Dir("var"), Dir("var/cache"), File("var/cache/old", "old")}));
  img.layers.push_back(MakeLayer(
      {Dir("etc"), File("etc/.wh.hello", ""), File("etc/marker", marker), Dir("var"),
       Dir("var/cache"), File("var/cache/.wh..wh..opq", ""), File("var/cache/new", "new")},
      test::Compression::kZstd));
  return img;
}

class ImageStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto r = test::TestRegistry::Start();
    ASSERT_TRUE(r.ok()) << r.status();
    registry_ = r->release();
  }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(registry_, nullptr);
    auto db = storage::StateDB::Open(tmp_.path() + "/db", {.sync_writes = false});
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    OpenStore({});
  }

  void OpenStore(registry::RegistryConfig config, PullLimits limits = {},
                 std::string containers_dir = "") {
    store_.reset();
    auto s =
        ImageStore::Open(root(), db_.get(), std::move(config), limits, std::move(containers_dir));
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }

  std::string root() const { return tmp_.path() + "/store"; }
  std::string Ref(const std::string& repo_tag) const { return registry_->host() + "/" + repo_tag; }
  test::PushedImage Push(const std::string& repo, const std::vector<std::string>& tags,
                         const test::ImageToPush& img) {
    auto p = test::PushImage(registry_->host(), repo, tags, img);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *p : test::PushedImage{};
  }

  static test::TestRegistry* registry_;
  test::TempDir tmp_;
  std::unique_ptr<storage::StateDB> db_;
  std::unique_ptr<ImageStore> store_;
};

test::TestRegistry* ImageStoreTest::registry_ = nullptr;

TEST_F(ImageStoreTest, PullByTagRecordsImageAndUnpacksLayers) {
  auto pushed = Push("test/bytag", {"1"}, BusyboxImage("bytag"));
  auto img = store_->Pull(Ref("test/bytag:1"), {});
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_EQ(img->id(), pushed.config_digest);
  ASSERT_EQ(img->repo_tags_size(), 1);
  EXPECT_EQ(img->repo_tags(0), Ref("test/bytag:1"));
  ASSERT_EQ(img->repo_digests_size(), 1);
  EXPECT_EQ(img->repo_digests(0), Ref("test/bytag@") + pushed.manifest_digest);
  EXPECT_EQ(img->chain_ids_size(), 2);
  EXPECT_EQ(img->config().cmd(0), "/bin/sh");
  EXPECT_GT(img->size(), 0u);
  for (const auto& c : img->chain_ids()) {
    EXPECT_TRUE(fs::is_directory(root() + "/layers/" + c.substr(7))) << c;
  }
  EXPECT_TRUE(fs::exists(root() + "/layers/" + img->chain_ids(0).substr(7) + "/bin/busybox"));

  for (const std::string& ref :
       {img->id(), img->id().substr(7), Ref("test/bytag:1"), img->repo_digests(0)}) {
    auto got = store_->Get(ref);
    ASSERT_TRUE(got.ok()) << ref << ": " << got.status();
    EXPECT_EQ(got->id(), img->id());
  }
  EXPECT_TRUE(absl::IsNotFound(store_->Get(Ref("test/bytag:2")).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->Get("busybox").status()));

  // Records survive a restart of the store.
  OpenStore({});
  auto again = store_->Get(Ref("test/bytag:1"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id(), img->id());
  // A second pull fetches nothing new.
  ASSERT_TRUE(store_->Pull(Ref("test/bytag:1"), {}).ok());
  EXPECT_EQ(store_->blobs_downloaded(), 0u);
}

TEST_F(ImageStoreTest, PullByDigest) {
  auto pushed = Push("test/bydigest", {"x"}, BusyboxImage("bydigest"));
  auto img = store_->Pull(Ref("test/bydigest@") + pushed.manifest_digest, {});
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_EQ(img->id(), pushed.config_digest);
  EXPECT_EQ(img->repo_tags_size(), 0);
  auto got = store_->Get(Ref("test/bydigest@") + pushed.manifest_digest);
  ASSERT_TRUE(got.ok());
}

TEST_F(ImageStoreTest, MultiArchIndexPullsTheAmd64Image) {
  test::ImageToPush img = BusyboxImage("index");
  img.multi_arch_index = true;
  auto pushed = Push("test/multi", {"latest"}, img);
  auto got = store_->Pull(Ref("test/multi"), {});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id(), pushed.config_digest);
  EXPECT_NE(got->id(), pushed.other_arch_config_digest);
  EXPECT_EQ(got->config().architecture(), "amd64");
  EXPECT_EQ(got->manifest_digest(), pushed.manifest_digest);
  EXPECT_EQ(got->repo_digests(0), Ref("test/multi@") + pushed.index_digest);
}

TEST_F(ImageStoreTest, BasicAuthNeedsTheRightCredentials) {
  auto reg = test::TestRegistry::Start({.username = "alice", .password = "wonder land"});
  ASSERT_TRUE(reg.ok()) << reg.status();
  auto pushed = test::PushImage((*reg)->host(), "private/app", {"v1"}, BusyboxImage("auth"),
                                "alice", "wonder land");
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  std::string ref = (*reg)->host() + "/private/app:v1";

  auto anon = store_->Pull(ref, {});
  EXPECT_TRUE(absl::IsUnauthenticated(anon.status())) << anon.status();
  registry::Credentials wrong{.username = "alice", .password = "nope"};
  EXPECT_FALSE(store_->Pull(ref, wrong).ok());
  registry::Credentials other_host{
      .username = "alice", .password = "wonder land", .server_address = "elsewhere.example"};
  EXPECT_FALSE(store_->Pull(ref, other_host).ok());

  registry::Credentials right{.username = "alice", .password = "wonder land"};
  auto img = store_->Pull(ref, right);
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_EQ(img->id(), pushed->config_digest);
}

TEST_F(ImageStoreTest, MirrorServesAnUnreachableUpstream) {
  Push("library/mirrored", {"1"}, BusyboxImage("mirror"));
  Push("team/app", {"2"}, BusyboxImage("mirror2"));
  registry::RegistryConfig cfg;
  // docker.io is never contacted: the mirror has the image. The closed-port mirror is tried first.
  cfg.hosts["docker.io"].mirrors = {"http://127.0.0.1:1", "http://" + registry_->host()};
  // An upstream on a closed port, reachable only through its mirror.
  cfg.hosts["127.0.0.1:1"].mirrors = {"http://" + registry_->host() + "/"};
  OpenStore(cfg);

  auto img = store_->Pull("mirrored:1", {});
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_EQ(img->repo_tags(0), "docker.io/library/mirrored:1");
  auto got = store_->Get("mirrored:1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id(), img->id());
  EXPECT_TRUE(store_->Get("docker.io/library/mirrored:1").ok());

  auto app = store_->Pull("127.0.0.1:1/team/app:2", {});
  ASSERT_TRUE(app.ok()) << app.status();
  EXPECT_EQ(app->repo_tags(0), "127.0.0.1:1/team/app:2");

  auto missing = store_->Pull("127.0.0.1:1/team/absent:1", {});
  EXPECT_FALSE(missing.ok());
}

TEST_F(ImageStoreTest, CorruptedBlobFailsAndKeepsNothing) {
  test::ImageToPush img;
  img.layers.push_back(MakeLayer({File("data", std::string(100000, 'd'))}));
  auto pushed = Push("test/corrupt", {"1"}, img);
  const std::string& blob = img.layers[0].blob;
  std::string layer_digest = registry::DigestOf(blob);
  std::string bad = blob;
  bad[bad.size() / 2] ^= 0x55;
  std::ofstream(registry_->BlobDataPath(layer_digest), std::ios::binary | std::ios::trunc) << bad;

  auto got = store_->Pull(Ref("test/corrupt:1"), {});
  EXPECT_TRUE(absl::IsDataLoss(got.status())) << got.status();
  EXPECT_FALSE(fs::exists(root() + "/blobs/sha256/" + layer_digest.substr(7)));
  for (auto& e : fs::directory_iterator(root() + "/blobs/sha256")) {
    EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();
  }
  EXPECT_EQ(CountEntries(root() + "/layers"), 0u);
  EXPECT_TRUE(store_->List().empty());
  // Repaired upstream, the pull succeeds.
  std::ofstream(registry_->BlobDataPath(layer_digest), std::ios::binary | std::ios::trunc) << blob;
  EXPECT_TRUE(store_->Pull(Ref("test/corrupt:1"), {}).ok());
}

TEST_F(ImageStoreTest, ConcurrentPullsShareOneDownload) {
  auto pushed = Push("test/concurrent", {"1"}, BusyboxImage("concurrent"));
  std::vector<absl::StatusOr<v1::Image>> results(4, absl::UnknownError("not run"));
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&, i] { results[i] = store_->Pull(Ref("test/concurrent:1"), {}); });
    }
  }
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->id(), pushed.config_digest);
  }
  EXPECT_EQ(store_->blobs_downloaded(), 3u);  // config + two layers, once each
  EXPECT_EQ(store_->List().size(), 1u);
}

TEST_F(ImageStoreTest, RemoveCollectsOnlyUnsharedBlobsAndLayers) {
  Push("test/gc-a", {"1"}, BusyboxImage("gc-a"));
  Push("test/gc-b", {"1"}, BusyboxImage("gc-b"));  // same base layer, different top
  auto a = store_->Pull(Ref("test/gc-a:1"), {});
  auto b = store_->Pull(Ref("test/gc-b:1"), {});
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->chain_ids(0), b->chain_ids(0));
  EXPECT_EQ(CountEntries(root() + "/layers"), 3u);

  ASSERT_TRUE(store_->Remove(Ref("test/gc-a:1")).ok());
  EXPECT_TRUE(absl::IsNotFound(store_->Get(a->id()).status()));
  EXPECT_FALSE(fs::exists(root() + "/layers/" + a->chain_ids(1).substr(7)));
  EXPECT_FALSE(fs::exists(root() + "/blobs/sha256/" + a->id().substr(7)));
  EXPECT_TRUE(fs::exists(root() + "/layers/" + b->chain_ids(0).substr(7) + "/bin/busybox"));
  EXPECT_TRUE(fs::exists(root() + "/blobs/sha256/" + b->layer_digests(0).substr(7)));

  ASSERT_TRUE(store_->Remove(b->id()).ok());
  EXPECT_EQ(CountEntries(root() + "/layers"), 0u);
  EXPECT_EQ(CountEntries(root() + "/blobs/sha256"), 0u);
  EXPECT_EQ(CountEntries(root() + "/l"), 0u);
  EXPECT_TRUE(store_->Remove(Ref("test/gc-a:1")).ok());  // absent is fine
  // Gone from the StateDB too.
  OpenStore({});
  EXPECT_TRUE(store_->List().empty());
}

TEST_F(ImageStoreTest, TagMovesToTheNewlyPulledImage) {
  Push("test/moving", {"v"}, BusyboxImage("first"));
  auto first = store_->Pull(Ref("test/moving:v"), {});
  ASSERT_TRUE(first.ok());
  Push("test/moving", {"v"}, BusyboxImage("second"));
  auto second = store_->Pull(Ref("test/moving:v"), {});
  ASSERT_TRUE(second.ok());
  ASSERT_NE(first->id(), second->id());
  auto old = store_->Get(first->id());
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->repo_tags_size(), 0);
  EXPECT_EQ(store_->Get(Ref("test/moving:v"))->id(), second->id());
}

TEST_F(ImageStoreTest, MountedRootfsShowsLayersAndWhiteoutsAndKeepsLayersUntilRemoved) {
  Push("test/rootfs", {"1"}, BusyboxImage("rootfs"));
  auto img = store_->Pull(Ref("test/rootfs:1"), {});
  ASSERT_TRUE(img.ok()) << img.status();
  std::string target = tmp_.path() + "/rootfs-mnt";
  absl::Cleanup cleanup = [&] { (void)store_->RemoveContainerStorage("ctr1"); };
  auto mounted = store_->MountRootfs("ctr1", img->id(), target);
  ASSERT_TRUE(mounted.ok()) << mounted.status();
  EXPECT_TRUE(fs::exists(target + "/bin/busybox"));
  EXPECT_TRUE(fs::exists(target + "/bin/sh"));
  EXPECT_FALSE(fs::exists(target + "/etc/hello"));  // whited out by the top layer
  EXPECT_EQ(ReadAll(target + "/etc/marker"), "rootfs");
  EXPECT_FALSE(fs::exists(target + "/var/cache/old"));  // opaque directory
  EXPECT_TRUE(fs::exists(target + "/var/cache/new"));
  // Mounting again is a no-op; a bad id is refused.
  EXPECT_TRUE(store_->MountRootfs("ctr1", img->id(), target).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(store_->MountRootfs("../x", img->id(), target).status()));
  EXPECT_TRUE(absl::IsNotFound(
      store_->MountRootfs("ctr2", "sha256:" + std::string(64, '0'), tmp_.path() + "/m2").status()));

  std::ofstream(target + "/written") << std::string(10000, 'w');
  auto usage = store_->WritableLayerUsage("ctr1");
  ASSERT_TRUE(usage.ok()) << usage.status();
  EXPECT_GE(usage->inodes, 1u);
  EXPECT_GE(usage->bytes, 10000u);
  auto fsu = store_->ImageFsUsage();
  ASSERT_TRUE(fsu.ok()) << fsu.status();
  EXPECT_GT(fsu->usage.bytes, 0u);
  EXPECT_GT(fsu->usage.inodes, 0u);
  EXPECT_FALSE(fsu->mountpoint.empty());

  // The image goes, its layers stay while the container's storage exists.
  ASSERT_TRUE(store_->Remove(img->id()).ok());
  EXPECT_TRUE(fs::exists(target + "/bin/busybox"));
  for (const auto& c : img->chain_ids()) EXPECT_TRUE(fs::exists(root() + "/layers/" + c.substr(7)));

  ASSERT_TRUE(store_->UnmountRootfs("ctr1").ok());
  EXPECT_TRUE(store_->UnmountRootfs("ctr1").ok());
  EXPECT_FALSE(fs::exists(target + "/bin/busybox"));
  ASSERT_TRUE(store_->RemoveContainerStorage("ctr1").ok());
  EXPECT_TRUE(store_->RemoveContainerStorage("ctr1").ok());
  EXPECT_EQ(CountEntries(root() + "/layers"), 0u);
  EXPECT_FALSE(fs::exists(root() + "/containers/ctr1"));
}

// images.containers_dir elsewhere: the rootfs's upper directory lies there (the mount failed
// with ENOENT looking for it under the store), and GC still sees the layers a container uses
// (it looked under <root>/containers and deleted the layers of running containers).
TEST_F(ImageStoreTest, WritableLayersElsewhereMountAndKeepTheirLayers) {
  const std::string elsewhere = tmp_.path() + "/writable";
  OpenStore({}, {}, elsewhere);
  Push("test/elsewhere", {"1"}, BusyboxImage("elsewhere"));
  auto img = store_->Pull(Ref("test/elsewhere:1"), {});
  ASSERT_TRUE(img.ok()) << img.status();
  std::string target = tmp_.path() + "/elsewhere-mnt";
  absl::Cleanup cleanup = [&] { (void)store_->RemoveContainerStorage("ctr1"); };
  auto mounted = store_->MountRootfs("ctr1", img->id(), target);
  ASSERT_TRUE(mounted.ok()) << mounted.status();
  std::ofstream(target + "/written") << "w";
  EXPECT_TRUE(fs::exists(elsewhere + "/ctr1/upper/written"));
  ASSERT_TRUE(store_->Remove(img->id()).ok());
  EXPECT_EQ(ReadAll(target + "/etc/marker"), "elsewhere");
  for (const auto& c : img->chain_ids()) EXPECT_TRUE(fs::exists(root() + "/layers/" + c.substr(7)));
  ASSERT_TRUE(store_->RemoveContainerStorage("ctr1").ok());
  EXPECT_EQ(CountEntries(root() + "/layers"), 0u);
  EXPECT_FALSE(fs::exists(elsewhere + "/ctr1"));
}

// KEP-4639: an image volume is the image's files, read-only; the image is in use (Remove refuses
// it, GC keeps its layers) until the container's storage goes.
TEST_F(ImageStoreTest, ImageVolumesAreReadOnlyAndKeepTheirImage) {
  Push("test/volume", {"1"}, BusyboxImage("volume"));
  test::ImageToPush one;
  one.layers.push_back(MakeLayer({Dir("data"), File("data/model", "weights")}));
  Push("test/one-layer", {"1"}, one);
  auto img = store_->Pull(Ref("test/volume:1"), {});
  ASSERT_TRUE(img.ok()) << img.status();
  auto single = store_->Pull(Ref("test/one-layer:1"), {});
  ASSERT_TRUE(single.ok()) << single.status();
  absl::Cleanup cleanup = [&] { (void)store_->RemoveContainerStorage("ctr1"); };
  const std::string v0 = tmp_.path() + "/vol0", v1 = tmp_.path() + "/vol1";
  auto m0 = store_->MountImageVolume("ctr1", 0, img->id(), v0);
  ASSERT_TRUE(m0.ok()) << m0.status();
  auto m1 = store_->MountImageVolume("ctr1", 1, single->id(), v1);
  ASSERT_TRUE(m1.ok()) << m1.status();
  EXPECT_EQ(ReadAll(v0 + "/etc/marker"), "volume");
  EXPECT_FALSE(fs::exists(v0 + "/etc/hello"));  // whiteouts apply
  EXPECT_EQ(ReadAll(v1 + "/data/model"), "weights");
  for (const std::string& v : {v0, v1}) {
    errno = 0;
    EXPECT_LT(open((v + "/new").c_str(), O_CREAT | O_WRONLY, 0644), 0);
    EXPECT_EQ(errno, EROFS) << v;
  }
  EXPECT_TRUE(store_->MountImageVolume("ctr1", 0, img->id(), v0).ok());  // again: a no-op
  EXPECT_TRUE(absl::IsNotFound(
      store_->MountImageVolume("ctr1", 2, "sha256:" + std::string(64, '0'), v1 + "x").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store_->MountImageVolume("../x", 0, img->id(), v0).status()));

  absl::Status refused = store_->Remove(Ref("test/volume:1"));
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "ctr1")) << refused;
  ASSERT_TRUE(store_->GarbageCollect().ok());
  for (const auto& c : img->chain_ids()) EXPECT_TRUE(fs::exists(root() + "/layers/" + c.substr(7)));

  ASSERT_TRUE(store_->UnmountRootfs("ctr1").ok());
  EXPECT_FALSE(fs::exists(v0 + "/etc/marker"));
  EXPECT_FALSE(fs::exists(v1 + "/data/model"));
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->Remove(img->id())));  // the container remains
  ASSERT_TRUE(store_->RemoveContainerStorage("ctr1").ok());
  EXPECT_TRUE(store_->Remove(img->id()).ok());
  EXPECT_TRUE(store_->Remove(single->id()).ok());
  EXPECT_EQ(CountEntries(root() + "/layers"), 0u);
}

TEST_F(ImageStoreTest, DeepLayerChainsMount) {
  test::ImageToPush img;
  for (int i = 0; i < 60; ++i) {
    img.layers.push_back(MakeLayer({File(absl::StrCat("f", i), absl::StrCat(i))}));
  }
  Push("test/deep", {"1"}, img);
  auto got = store_->Pull(Ref("test/deep:1"), {});
  ASSERT_TRUE(got.ok()) << got.status();
  std::string target = tmp_.path() + "/deep-mnt";
  absl::Cleanup cleanup = [&] { (void)store_->RemoveContainerStorage("deep"); };
  ASSERT_TRUE(store_->MountRootfs("deep", got->id(), target).ok());
  EXPECT_EQ(ReadAll(target + "/f0"), "0");
  EXPECT_EQ(ReadAll(target + "/f59"), "59");
}

// Creates (or copies up) `path` as host uid/gid 200000 would: root of a pod mapped there.
bool WriteAsMappedRoot(const std::string& path) {
  pid_t pid = fork();
  if (pid == 0) {
    if (setfsgid(200000) < 0 || setfsuid(200000) < 0) _exit(2);
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    _exit(fd >= 0 && write(fd, "x", 1) == 1 ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST_F(ImageStoreTest, IdmappedRootfsShowsLayersAsTheNamespacesRootAndWritesUnderIt) {
  runtime::v1::IDMapping m;
  m.set_container_id(0);
  m.set_host_id(200000);
  m.set_length(65536);
  engine::IdMappings maps;
  *maps.Add() = m;
  if (absl::Status st = engine::ProbeUserNamespaces(tmp_.path()); !st.ok()) {
    GTEST_SKIP() << "this kernel cannot run pods in user namespaces: " << st;
  }
  absl::StatusOr<UniqueFd> userns = engine::NewUserNamespace(maps, maps);
  ASSERT_TRUE(userns.ok()) << userns.status();
  Push("test/idmapped", {"1"}, BusyboxImage("idmapped"));
  auto img = store_->Pull(Ref("test/idmapped:1"), {});
  ASSERT_TRUE(img.ok()) << img.status();
  std::string target = tmp_.path() + "/idmapped-mnt";
  absl::Cleanup cleanup = [&] { (void)store_->RemoveContainerStorage("uctr"); };
  ImageStore::LayerIdmap idmap{userns->get(), 200000, 200000};
  ASSERT_TRUE(store_->MountRootfs("uctr", img->id(), target, &idmap).ok());
  struct stat st;
  ASSERT_EQ(stat((target + "/bin/busybox").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 200000u);  // host root in the layer, the pod's root here
  EXPECT_EQ(st.st_gid, 200000u);
  ASSERT_EQ(stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 200000u);
  EXPECT_FALSE(fs::exists(target + "/etc/hello"));  // whiteouts still apply
  EXPECT_TRUE(fs::exists(target + "/var/cache/new"));

  // What the pod's root writes, new or copied up, lands in the upper dir under its host IDs;
  // the shared layers keep host root. (It has no rights on the host: let it reach the mount.)
  ASSERT_EQ(chmod(tmp_.path().c_str(), 0711), 0);
  ASSERT_TRUE(WriteAsMappedRoot(target + "/newfile"));
  ASSERT_TRUE(WriteAsMappedRoot(target + "/etc/marker"));
  const std::string upper = root() + "/containers/uctr/upper";
  for (const char* f : {"/newfile", "/etc/marker", "/etc"}) {
    ASSERT_EQ(stat((upper + f).c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_uid, 200000u) << f;
    EXPECT_EQ(st.st_gid, 200000u) << f;
  }
  EXPECT_EQ(ReadAll(target + "/etc/marker"), "idmappedx");
  for (const auto& c : img->chain_ids()) {
    ASSERT_EQ(stat((root() + "/layers/" + c.substr(7)).c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0u);
  }
  ASSERT_TRUE(store_->RemoveContainerStorage("uctr").ok());
  EXPECT_FALSE(fs::exists(target + "/bin/busybox"));
}

TEST_F(ImageStoreTest, IdPrefixesNeverNameAnImageOutsideListFilters) {
  Push("test/private", {"1"}, BusyboxImage("private"));
  auto img = store_->Pull(Ref("test/private:1"), {});
  ASSERT_TRUE(img.ok()) << img.status();
  const std::string hex = img->id().substr(7);
  for (const std::string& prefix :
       {"sha256:" + hex.substr(0, 2), hex.substr(0, 2), hex.substr(0, 12),
        "sha256:" + hex.substr(0, 12), hex.substr(0, 63)}) {
    EXPECT_TRUE(absl::IsNotFound(store_->Get(prefix).status())) << prefix;
    EXPECT_TRUE(
        absl::IsNotFound(store_->MountRootfs("p", prefix, tmp_.path() + "/never-mounted").status()))
        << prefix;
    EXPECT_TRUE(store_->Remove(prefix).ok()) << prefix;  // absent: nothing removed
    EXPECT_TRUE(store_->Get(img->id()).ok()) << prefix;
  }
  EXPECT_FALSE(fs::exists(root() + "/containers/p/mountpoint"));
  EXPECT_TRUE(store_->Get(hex).ok());
  // List filters take a unique prefix of at least 12 digits, as crictl prints ids.
  for (const std::string& prefix :
       {hex.substr(0, 12), "sha256:" + hex.substr(0, 12), hex, Ref("test/private:1")}) {
    auto got = store_->GetForListFilter(prefix);
    ASSERT_TRUE(got.ok()) << prefix << ": " << got.status();
    EXPECT_EQ(got->id(), img->id());
  }
  for (const std::string& prefix :
       {hex.substr(0, 11), "sha256:" + hex.substr(0, 2), hex.substr(0, 1)}) {
    EXPECT_TRUE(absl::IsNotFound(store_->GetForListFilter(prefix).status())) << prefix;
  }
}

// Pull-time budgets: each refusal names the blob and the berth.toml key.
class PullLimitsTest : public ImageStoreTest {
 protected:
  absl::Status PullWith(PullLimits limits, const std::string& repo, const test::ImageToPush& img,
                        test::PushedImage* pushed = nullptr) {
    test::PushedImage p = Push(repo, {"1"}, img);
    if (pushed != nullptr) *pushed = p;
    OpenStore({}, limits);
    absl::Status s = store_->Pull(Ref(repo + ":1"), {}).status();
    // Layers that did fit may stay for the next try (GC takes them); the refused one never does.
    if (img.layers.size() == 1) {
      EXPECT_EQ(CountEntries(root() + "/layers"), 0u);
    }
    EXPECT_EQ(CountEntries(root() + "/tmp"), 0u);
    EXPECT_TRUE(store_->List().empty());
    return s;
  }
};

TEST_F(PullLimitsTest, GzipBombStopsAtTheLayerLimit) {
  test::ImageToPush img;
  img.layers.push_back(MakeLayer({File("zeros", std::string(64 << 20, '\0'))}));
  ASSERT_LT(img.layers[0].blob.size(), 1u << 20);
  PullLimits limits;
  limits.max_layer_bytes = 1 << 20;
  absl::Status s = PullWith(limits, "test/bomb", img);
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_NE(s.message().find(registry::DigestOf(img.layers[0].blob)), std::string::npos) << s;
  EXPECT_NE(s.message().find("images.max_layer_bytes"), std::string::npos) << s;
}

TEST_F(PullLimitsTest, LayersAddUpToTheImageLimit) {
  test::ImageToPush img;
  img.layers.push_back(MakeLayer({File("a", std::string(700 << 10, 'a'))}));
  img.layers.push_back(MakeLayer({File("b", std::string(700 << 10, 'b'))}));
  PullLimits limits;
  limits.max_layer_bytes = 1 << 20;
  limits.max_image_bytes = 1 << 20;
  absl::Status s = PullWith(limits, "test/big-image", img);
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_NE(s.message().find("images.max_image_bytes"), std::string::npos) << s;
}

TEST_F(PullLimitsTest, EntriesPerLayerAreLimited) {
  std::vector<test::TarEntry> many;
  for (int i = 0; i < 20; ++i) many.push_back(File(absl::StrCat("f", i), "x"));
  test::ImageToPush img;
  img.layers.push_back(MakeLayer(many));
  PullLimits limits;
  limits.max_layer_entries = 10;
  absl::Status s = PullWith(limits, "test/many-files", img);
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_NE(s.message().find("images.max_layer_entries"), std::string::npos) << s;
}

TEST_F(PullLimitsTest, LayerCountAndConfigSizeAreLimited) {
  PullLimits layers;
  layers.max_layers = 1;
  test::PushedImage pushed;
  absl::Status s = PullWith(layers, "test/two-layers", BusyboxImage("two"), &pushed);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_NE(s.message().find("images.max_layers"), std::string::npos) << s;
  EXPECT_NE(s.message().find(pushed.manifest_digest), std::string::npos) << s;
  PullLimits config;
  config.max_config_bytes = 10;
  s = PullWith(config, "test/config-size", BusyboxImage("cfg"), &pushed);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_NE(s.message().find("images.max_config_bytes"), std::string::npos) << s;
  EXPECT_NE(s.message().find(pushed.config_digest), std::string::npos) << s;
}

TEST_F(PullLimitsTest, FreeSpaceFloorRefusesThePullBeforeAnyDownload) {
  PullLimits limits;
  limits.min_free_bytes = int64_t{1} << 62;
  absl::Status s = PullWith(limits, "test/no-room", BusyboxImage("room"));
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_NE(s.message().find("images.min_free_bytes"), std::string::npos) << s;
  EXPECT_EQ(store_->blobs_downloaded(), 0u);
  EXPECT_EQ(CountEntries(root() + "/blobs/sha256"), 1u);  // the manifest only
}

TEST_F(ImageStoreTest, DeeplyNestedImageConfigIsRefusedAtPullNamingTheBlob) {
  StaticRegistry content;
  std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers",)"
                       R"("diff_ids":[]},"history":)" +
                       std::string(4 << 20, '[') + std::string(4 << 20, ']') + "}";
  std::string config_digest = content.AddBlob("deep/config", config);
  std::string manifest = absl::StrCat(
      R"({"schemaVersion":2,"mediaType":")", registry::kOciManifest,
      R"(","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")",
      config_digest, R"(","size":)", config.size(), R"(},"layers":[]})");
  content.AddManifest("deep/config", "1", manifest, registry::kOciManifest);
  auto server =
      FakeHttpServer::Start([&content](const FakeRequest& r) { return content.Answer(r); });
  ASSERT_TRUE(server.ok()) << server.status();
  auto got = store_->Pull((*server)->host() + "/deep/config:1", {});
  EXPECT_TRUE(absl::IsInvalidArgument(got.status())) << got.status();
  EXPECT_NE(got.status().message().find(config_digest), std::string::npos) << got.status();
  EXPECT_NE(got.status().message().find("deeper than"), std::string::npos) << got.status();
  EXPECT_TRUE(store_->List().empty());
}

TEST_F(ImageStoreTest, BadReferencesAreInvalidArgument) {
  EXPECT_TRUE(absl::IsInvalidArgument(store_->Pull("UPPER", {}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store_->Get("").status()));
  EXPECT_TRUE(absl::IsNotFound(store_->Pull(Ref("test/never:1"), {}).status()));
}

}  // namespace
}  // namespace berth::images
