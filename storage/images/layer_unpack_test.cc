// Layer unpacking: file kinds and metadata survive, whiteouts become overlayfs form, and
// hand-made malicious tars write nothing outside the layer directory.
#include "storage/images/layer_unpack.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <atomic>
#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "test/registry/tar_builder.h"
#include "test/util/temp_dir.h"

namespace berth::images {
namespace {

using test::Compression;
using test::Dir;
using test::File;
using test::Hardlink;
using test::Symlink;
using test::TarEntry;

namespace fs = std::filesystem;

// A sandbox: <tmp>/outside (a victim directory with one file) and <tmp>/layer (the target).
class UnpackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(outside());
    std::ofstream(outside() + "/victim") << "original";
    fs::create_directories(layer());
  }
  std::string outside() const { return tmp_.path() + "/outside"; }
  std::string layer() const { return tmp_.path() + "/layer"; }

  absl::StatusOr<std::string> Unpack(const std::vector<TarEntry>& entries,
                                     Compression c = Compression::kGzip,
                                     const UnpackLimits& limits = {}) {
    test::Layer l = test::MakeLayer(entries, c);
    std::string path = tmp_.path() + "/layer.tar";
    std::ofstream(path, std::ios::binary) << l.blob;
    auto got = UnpackLayer(path, layer(), limits);
    fs::remove(path);
    if (got.ok()) {
      EXPECT_EQ(*got, l.diff_id);
    }
    return got;
  }

  // Everything below tmp_ except the layer directory must be exactly as SetUp left it.
  void ExpectNothingOutsideLayer() {
    std::set<std::string> found;
    for (auto& e : fs::recursive_directory_iterator(tmp_.path())) {
      std::string p = e.path().string();
      if (p.rfind(layer() + "/", 0) == 0) continue;
      found.insert(p.substr(tmp_.path().size()));
    }
    EXPECT_EQ(found, (std::set<std::string>{"/layer", "/outside", "/outside/victim"}));
    std::ifstream in(outside() + "/victim");
    std::string content((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(content, "original");
    struct stat st;
    ASSERT_EQ(stat((outside() + "/victim").c_str(), &st), 0);
    EXPECT_EQ(st.st_nlink, 1u);
  }

  test::TempDir tmp_;
};

TEST_F(UnpackTest, KeepsFilesModesOwnersLinksDevicesAndXattrs) {
  TarEntry owned = File("etc/owned", "x", 0640);
  owned.uid = 1234;
  owned.gid = 5678;
  owned.xattrs["user.note"] = "kept";
  TarEntry dev{"dev/null0", TarEntry::kCharDevice, "", 0666};
  dev.dev_major = 1;
  dev.dev_minor = 3;
  auto d = Unpack({Dir("bin"), File("bin/busybox", "#!elf", 04755),
                   Hardlink("bin/sh", "bin/busybox"), Symlink("bin/abs", "/bin/busybox"),
                   Dir("etc"), owned, Dir("dev"), dev, File("/rooted", "stripped")});
  ASSERT_TRUE(d.ok()) << d.status();
  struct stat bb, sh, ow, dv, ln;
  ASSERT_EQ(lstat((layer() + "/bin/busybox").c_str(), &bb), 0);
  ASSERT_EQ(lstat((layer() + "/bin/sh").c_str(), &sh), 0);
  EXPECT_EQ(bb.st_ino, sh.st_ino);
  EXPECT_EQ(bb.st_mode & 07777, 04755);
  ASSERT_EQ(lstat((layer() + "/bin/abs").c_str(), &ln), 0);
  EXPECT_TRUE(S_ISLNK(ln.st_mode));
  EXPECT_EQ(fs::read_symlink(layer() + "/bin/abs").string(), "/bin/busybox");
  ASSERT_EQ(lstat((layer() + "/etc/owned").c_str(), &ow), 0);
  EXPECT_EQ(ow.st_uid, 1234u);
  EXPECT_EQ(ow.st_gid, 5678u);
  EXPECT_EQ(ow.st_mode & 07777, 0640);
  char buf[16] = {0};
  ASSERT_EQ(lgetxattr((layer() + "/etc/owned").c_str(), "user.note", buf, sizeof(buf)), 4);
  EXPECT_STREQ(buf, "kept");
  ASSERT_EQ(lstat((layer() + "/dev/null0").c_str(), &dv), 0);
  EXPECT_TRUE(S_ISCHR(dv.st_mode));
  EXPECT_EQ(major(dv.st_rdev), 1u);
  EXPECT_EQ(minor(dv.st_rdev), 3u);
  EXPECT_TRUE(fs::exists(layer() + "/rooted"));
  ExpectNothingOutsideLayer();
}

TEST_F(UnpackTest, ZstdAndPlainTarUnpack) {
  ASSERT_TRUE(Unpack({File("z", "zstd")}, Compression::kZstd).ok());
  EXPECT_TRUE(fs::exists(layer() + "/z"));
  ASSERT_TRUE(Unpack({File("p", "plain")}, Compression::kNone).ok());
  EXPECT_TRUE(fs::exists(layer() + "/p"));
}

TEST_F(UnpackTest, WhiteoutsBecomeOverlayCharDevicesAndOpaqueXattrs) {
  auto d = Unpack({Dir("etc"), File("etc/.wh.gone", ""), Dir("var"), Dir("var/cache"),
                   File("var/cache/.wh..wh..opq", ""), File("var/cache/new", "n"),
                   File("deep/er/.wh.x", "")});
  ASSERT_TRUE(d.ok()) << d.status();
  struct stat st;
  ASSERT_EQ(lstat((layer() + "/etc/gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_FALSE(fs::exists(layer() + "/etc/.wh.gone"));
  ASSERT_EQ(lstat((layer() + "/deep/er/x").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  char v[4] = {0};
  ASSERT_EQ(lgetxattr((layer() + "/var/cache").c_str(), "trusted.overlay.opaque", v, sizeof(v)), 1);
  EXPECT_EQ(v[0], 'y');
  EXPECT_FALSE(fs::exists(layer() + "/var/cache/.wh..wh..opq"));
  EXPECT_TRUE(fs::exists(layer() + "/var/cache/new"));
}

TEST_F(UnpackTest, OverlayXattrsFromTheTarAreDropped) {
  TarEntry d = Dir("redir");
  d.xattrs["trusted.overlay.redirect"] = "/etc";
  ASSERT_TRUE(Unpack({d}).ok());
  char v[16];
  EXPECT_LT(lgetxattr((layer() + "/redir").c_str(), "trusted.overlay.redirect", v, sizeof(v)), 0);
}

TEST_F(UnpackTest, DotDotPathIsRejected) {
  auto d = Unpack({File("../outside/victim", "pwned"), File("../escaped", "pwned")});
  EXPECT_TRUE(absl::IsInvalidArgument(d.status())) << d.status();
  ExpectNothingOutsideLayer();
}

TEST_F(UnpackTest, DotDotInsideThePathIsRejected) {
  auto d = Unpack({Dir("a"), File("a/../../escaped", "pwned")});
  EXPECT_TRUE(absl::IsInvalidArgument(d.status())) << d.status();
  ExpectNothingOutsideLayer();
}

TEST_F(UnpackTest, AbsolutePathStaysInsideTheLayer) {
  std::string abs_target = outside() + "/victim";
  auto d = Unpack({File(abs_target, "pwned")});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(fs::exists(layer() + abs_target));
  ExpectNothingOutsideLayer();
}

TEST_F(UnpackTest, WritingThroughAnAbsoluteSymlinkIsRejected) {
  auto d =
      Unpack({Symlink("link", outside()), File("link/victim", "pwned"), File("link/new", "pwned")});
  EXPECT_TRUE(absl::IsInvalidArgument(d.status())) << d.status();
  ExpectNothingOutsideLayer();
}

TEST_F(UnpackTest, WritingThroughARelativeSymlinkOutIsRejected) {
  auto d = Unpack({Symlink("up", "../outside"), File("up/new", "pwned")});
  EXPECT_TRUE(absl::IsInvalidArgument(d.status())) << d.status();
  ExpectNothingOutsideLayer();
}

TEST_F(UnpackTest, ReplacingASymlinkWithAFileDoesNotFollowIt) {
  auto d = Unpack({Symlink("victim", outside() + "/victim"), File("victim", "pwned")});
  ASSERT_TRUE(d.ok()) << d.status();
  struct stat st;
  ASSERT_EQ(lstat((layer() + "/victim").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  ExpectNothingOutsideLayer();
}

TEST_F(UnpackTest, HardlinkToATargetOutsideIsRejected) {
  auto d = Unpack({Hardlink("hl", "../outside/victim")});
  EXPECT_TRUE(absl::IsInvalidArgument(d.status())) << d.status();
  ExpectNothingOutsideLayer();
}

TEST_F(UnpackTest, HardlinkToAnAbsoluteHostPathDoesNotLinkTheHostFile) {
  auto d = Unpack({Hardlink("hl", outside() + "/victim")});
  EXPECT_FALSE(d.ok());  // resolved inside the layer, where it does not exist
  EXPECT_FALSE(fs::exists(layer() + "/hl"));
  ExpectNothingOutsideLayer();
}

TEST_F(UnpackTest, HardlinkThroughASymlinkIsRejected) {
  auto d = Unpack({Symlink("s", outside()), Hardlink("hl", "s/victim")});
  EXPECT_TRUE(absl::IsInvalidArgument(d.status())) << d.status();
  ExpectNothingOutsideLayer();
}

TEST_F(UnpackTest, WhiteoutThroughASymlinkIsRejected) {
  auto d = Unpack({Symlink("s", outside()), File("s/.wh.victim", "")});
  EXPECT_TRUE(absl::IsInvalidArgument(d.status())) << d.status();
  ExpectNothingOutsideLayer();
}

TEST_F(UnpackTest, GzipBombStopsAtTheByteLimit) {
  UnpackLimits limits;
  limits.max_bytes = 1 << 20;
  auto d = Unpack({File("zeros", std::string(64 << 20, '\0'))}, Compression::kGzip, limits);
  EXPECT_TRUE(absl::IsResourceExhausted(d.status())) << d.status();
  EXPECT_NE(d.status().message().find("images.max_layer_bytes"), std::string::npos) << d.status();
  struct stat st;
  if (lstat((layer() + "/zeros").c_str(), &st) == 0) {
    EXPECT_LE(st.st_size, 2 << 20);
  }
  ExpectNothingOutsideLayer();
}

TEST_F(UnpackTest, EntryLimitCountsEveryHeader) {
  std::vector<TarEntry> many;
  for (int i = 0; i < 11; ++i) many.push_back(File(absl::StrCat("f", i), ""));
  UnpackLimits limits;
  limits.max_entries = 10;
  auto d = Unpack(many, Compression::kNone, limits);
  EXPECT_TRUE(absl::IsResourceExhausted(d.status())) << d.status();
  EXPECT_NE(d.status().message().find("images.max_layer_entries"), std::string::npos);
  many.pop_back();
  fs::remove_all(layer());
  fs::create_directories(layer());
  EXPECT_TRUE(Unpack(many, Compression::kNone, limits).ok());
}

TEST_F(UnpackTest, ImageBudgetIsSharedByLayers) {
  std::atomic<int64_t> left{3 << 20};
  UnpackLimits limits;
  limits.image_bytes_left = &left;
  limits.image_max_bytes = 3 << 20;
  ASSERT_TRUE(Unpack({File("a", std::string(2 << 20, 'a'))}, Compression::kGzip, limits).ok());
  fs::remove_all(layer());
  fs::create_directories(layer());
  auto d = Unpack({File("b", std::string(2 << 20, 'b'))}, Compression::kGzip, limits);
  EXPECT_TRUE(absl::IsResourceExhausted(d.status())) << d.status();
  EXPECT_NE(d.status().message().find("images.max_image_bytes"), std::string::npos);
}

TEST_F(UnpackTest, FreeSpaceFloorStopsTheUnpack) {
  struct statvfs fsi;
  ASSERT_EQ(statvfs(layer().c_str(), &fsi), 0);
  UnpackLimits limits;
  limits.min_free_bytes = static_cast<uint64_t>(fsi.f_bavail) * fsi.f_frsize + (1 << 30);
  auto d = Unpack({File("f", "data")}, Compression::kGzip, limits);
  EXPECT_TRUE(absl::IsResourceExhausted(d.status())) << d.status();
  EXPECT_NE(d.status().message().find("images.min_free_bytes"), std::string::npos);
}

TEST_F(UnpackTest, OverlongPathsAreInvalidArgumentNotWritten) {
  std::string deep;
  for (int i = 0; i < 30; ++i) deep += std::string(200, 'd') + "/";
  auto d = Unpack({File(deep + "f", "x")});
  EXPECT_TRUE(absl::IsInvalidArgument(d.status())) << d.status();
  EXPECT_LT(d.status().message().size(), 1000u);
  auto c = Unpack({File(std::string(300, 'n'), "x")});
  EXPECT_TRUE(absl::IsInvalidArgument(c.status())) << c.status();
  auto h = Unpack({File("t", "x"), Hardlink("h", deep + "t")});
  EXPECT_TRUE(absl::IsInvalidArgument(h.status())) << h.status();
  ExpectNothingOutsideLayer();
}

TEST_F(UnpackTest, WhiteoutOfADirectoryInTheSameLayerIsInvalid) {
  auto d = Unpack({Dir("keep"), File("keep/file", "x"), File(".wh.keep", "")});
  EXPECT_TRUE(absl::IsInvalidArgument(d.status())) << d.status();
}

TEST_F(UnpackTest, DotDotWhiteoutsAndOpaqueThroughSymlinksAreRejected) {
  EXPECT_TRUE(absl::IsInvalidArgument(Unpack({File("a/.wh..", "")}).status()));
  fs::remove_all(layer());
  fs::create_directories(layer());
  auto d = Unpack({Symlink("s", outside()), File("s/.wh..wh..opq", "")});
  EXPECT_TRUE(absl::IsInvalidArgument(d.status())) << d.status();
  char v[4];
  EXPECT_LT(lgetxattr(outside().c_str(), "trusted.overlay.opaque", v, sizeof(v)), 0);
  ExpectNothingOutsideLayer();
}

TEST_F(UnpackTest, SymlinkChainsOutAreNotFollowed) {
  auto d = Unpack({Symlink("b", "../outside"), Symlink("a", "b"), File("a/victim", "pwned")});
  EXPECT_TRUE(absl::IsInvalidArgument(d.status())) << d.status();
  ExpectNothingOutsideLayer();
  fs::remove_all(layer());
  fs::create_directories(layer());
  // Links to a symlink link the symlink itself, never what it points at.
  auto h = Unpack({Symlink("b", outside() + "/victim"), Symlink("a", "b"), Hardlink("h", "a")});
  ASSERT_TRUE(h.ok()) << h.status();
  struct stat st;
  ASSERT_EQ(lstat((layer() + "/h").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ExpectNothingOutsideLayer();
}

TEST_F(UnpackTest, UserOverlayXattrsAreDroppedToo) {
  TarEntry d = Dir("redir");
  d.xattrs["user.overlay.redirect"] = "/etc";
  d.xattrs["user.kept"] = "1";
  ASSERT_TRUE(Unpack({d}).ok());
  char v[16];
  EXPECT_LT(lgetxattr((layer() + "/redir").c_str(), "user.overlay.redirect", v, sizeof(v)), 0);
  EXPECT_EQ(lgetxattr((layer() + "/redir").c_str(), "user.kept", v, sizeof(v)), 1);
}

TEST_F(UnpackTest, GarbageIsAnErrorNotACrash) {
  std::string path = tmp_.path() + "/junk";
  std::ofstream(path) << std::string(3000, 'j');
  EXPECT_FALSE(UnpackLayer(path, layer()).ok());
  EXPECT_FALSE(UnpackLayer(tmp_.path() + "/absent", layer()).ok());
  fs::remove(path);
}

}  // namespace
}  // namespace berth::images
