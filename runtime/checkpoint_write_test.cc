// Writing checkpoints: the writable layer survives archive and restore with its whiteouts,
// links, xattrs and holes, never takes a host file along when the container swaps a directory
// for a symlink mid-walk, and FIFOs and devices fail the checkpoint.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "runtime/checkpoint.h"
#include "runtime/checkpoint_test_util.h"
#include "runtime/checkpoint_testing.h"
#include "test/util/temp_dir.h"
#include "util/fd.h"
#include "util/fs.h"

namespace berth::engine {
namespace {

using namespace checkpoint_test;  // NOLINT: the shared helpers of these tests

TEST(CheckpointTest, ArchiveReadsBackWithItsWritableLayer) {
  test::TempDir t;
  const std::string upper = t.path() + "/upper", dir = t.path() + "/ckpt";
  // An overlay upper dir: a changed file with a second link, a symlink, a deleted file (0/0
  // character device), an opaque directory, and a user xattr.
  ASSERT_TRUE(MakeDirs(upper + "/etc").ok());
  ASSERT_TRUE(MakeDirs(upper + "/var/cache").ok());
  ASSERT_TRUE(WriteFileAtomic(upper + "/etc/counter", "41\n", 0640).ok());
  ASSERT_EQ(link((upper + "/etc/counter").c_str(), (upper + "/etc/counter.link").c_str()), 0);
  ASSERT_EQ(symlink("counter", (upper + "/etc/alias").c_str()), 0);
  ASSERT_EQ(mknod((upper + "/etc/deleted").c_str(), S_IFCHR | 0, makedev(0, 0)), 0);
  ASSERT_EQ(setxattr((upper + "/var/cache").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  ASSERT_EQ(setxattr((upper + "/etc/counter").c_str(), "user.note", "kept", 4, 0), 0);
  MakeCheckpointDir(dir, "c0ffee");
  ASSERT_TRUE(WriteRootfsDiff(upper, dir + "/" + kCheckpointRootfsDiff).ok());
  CheckpointArchive a;
  absl::Status diff;
  ASSERT_NO_FATAL_FAILURE(ArchiveAndRestore(dir, t.path(), &a, &diff));
  ASSERT_TRUE(diff.ok()) << diff;
  EXPECT_EQ(a.container.config().id(), "c0ffee");
  EXPECT_EQ(a.container.config().cri().metadata().name(), "counter");
  EXPECT_EQ(a.spec, R"({"ociVersion":"1.0.2"})");
  EXPECT_EQ(a.checkpointed_at_ns, 1234);
  EXPECT_TRUE(a.has_rootfs_diff);

  const std::string unpacked = t.path() + "/unpacked", restored = t.path() + "/restored";
  EXPECT_EQ(ReadFile(unpacked + "/checkpoint/pages-1.img").value_or(""), std::string(100000, 'p'));
  EXPECT_FALSE(PathExists(unpacked + "/" + kCheckpointRootfsDiff));  // moved into the upper dir
  EXPECT_EQ(ReadFile(restored + "/etc/counter").value_or(""), "41\n");
  struct stat a1, a2, wh;
  ASSERT_EQ(lstat((restored + "/etc/counter").c_str(), &a1), 0);
  ASSERT_EQ(lstat((restored + "/etc/counter.link").c_str(), &a2), 0);
  EXPECT_EQ(a1.st_ino, a2.st_ino);
  EXPECT_EQ(a1.st_mode & 07777, 0640u);
  char target[64] = {};
  ASSERT_GT(readlink((restored + "/etc/alias").c_str(), target, sizeof(target) - 1), 0);
  EXPECT_STREQ(target, "counter");
  ASSERT_EQ(lstat((restored + "/etc/deleted").c_str(), &wh), 0);
  EXPECT_TRUE(S_ISCHR(wh.st_mode));
  EXPECT_EQ(wh.st_rdev, makedev(0, 0));
  char v[8] = {};
  EXPECT_EQ(getxattr((restored + "/var/cache").c_str(), "trusted.overlay.opaque", v, sizeof(v)), 1);
  EXPECT_EQ(v[0], 'y');
  EXPECT_FALSE(PathExists(restored + "/var/cache/.wh..wh..opq"));
  EXPECT_EQ(getxattr((restored + "/etc/counter").c_str(), "user.note", v, sizeof(v)), 4);
}

// A host file only root may read, which no container may ever get into its checkpoint.
constexpr char kSecret[] = "HOST SECRET 0600";

struct SwapFixture {
  test::TempDir t;
  std::string upper = t.path() + "/upper", host = t.path() + "/host";
  std::string tar = t.path() + "/diff.tar";
  SwapFixture() {
    EXPECT_TRUE(MakeDirs(upper + "/d").ok());
    EXPECT_TRUE(WriteFileAtomic(upper + "/d/f", "container data\n").ok());
    EXPECT_TRUE(MakeDirs(host).ok());
    EXPECT_TRUE(WriteFileAtomic(host + "/f", kSecret, 0600).ok());
  }
  ~SwapFixture() { checkpoint_testing::SetWalkHook(nullptr); }
  // What the container does between the walk's stat of `when` and its open: directory d becomes
  // a symlink to the host directory.
  void SwapAt(const std::string& when) {
    checkpoint_testing::SetWalkHook([this, when, done = false](const std::string& name) mutable {
      if (done || name != when) return;
      done = true;
      EXPECT_EQ(rename((upper + "/d").c_str(), (upper + "/d.moved").c_str()), 0);
      EXPECT_EQ(symlink(host.c_str(), (upper + "/d").c_str()), 0);
    });
  }
  std::string TarBytes() { return ReadFile(tar).value_or(""); }
};
TEST(CheckpointTest, ADirectorySwappedForASymlinkMidWalkIsNotFollowed) {
  SwapFixture f;
  f.SwapAt("d");  // d was stat'ed as a directory, then replaced before it is opened
  absl::Status st = WriteRootfsDiff(f.upper, f.tar);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_FALSE(absl::StrContains(f.TarBytes(), kSecret));
  std::map<std::string, Listed> entries = ListTar(f.tar);
  ASSERT_TRUE(entries.count("d")) << "the symlink itself is archived";
  EXPECT_EQ(entries["d"].type, AE_IFLNK);
  EXPECT_EQ(entries["d"].link, f.host);
  EXPECT_FALSE(entries.count("d/f"));
}

TEST(CheckpointTest, AParentSwappedForASymlinkBeforeAFileIsOpenedIsNotFollowed) {
  SwapFixture f;
  f.SwapAt("d/f");  // d/f was stat'ed, then its directory replaced before the file is opened
  absl::Status st = WriteRootfsDiff(f.upper, f.tar);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_FALSE(absl::StrContains(f.TarBytes(), kSecret));
  std::map<std::string, Listed> entries = ListTar(f.tar);
  EXPECT_EQ(entries["d/f"].data, "container data\n");  // read from the directory first opened
}

TEST(CheckpointTest, SparseFilesStaySparseThroughCheckpointAndRestore) {
  test::TempDir t;
  const std::string upper = t.path() + "/upper", dir = t.path() + "/ckpt";
  ASSERT_TRUE(MakeDirs(upper).ok());
  constexpr int64_t kSize = int64_t{1} << 40;  // 1 TiB, nearly all hole
  {
    UniqueFd fd(open((upper + "/disk.img").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd.valid());
    if (ftruncate(fd.get(), kSize) != 0) GTEST_SKIP() << "no 1 TiB files here: " << strerror(errno);
    ASSERT_EQ(pwrite(fd.get(), "head", 4, 0), 4);
    ASSERT_EQ(pwrite(fd.get(), "middle", 6, kSize / 2), 6);
  }
  ASSERT_TRUE(WriteFileAtomic(upper + "/holes-only", "").ok());
  ASSERT_EQ(truncate((upper + "/holes-only").c_str(), int64_t{1} << 30), 0);
  MakeCheckpointDir(dir, "5fa75e");
  ASSERT_TRUE(WriteRootfsDiff(upper, dir + "/" + kCheckpointRootfsDiff).ok());
  struct stat diff;
  ASSERT_EQ(stat((dir + "/" + kCheckpointRootfsDiff).c_str(), &diff), 0);
  EXPECT_LT(diff.st_size, 1 << 20);
  std::map<std::string, Listed> entries = ListTar(dir + "/" + kCheckpointRootfsDiff);
  EXPECT_EQ(entries["disk.img"].size, kSize);
  EXPECT_GT(entries["disk.img"].sparse_blocks, 0);
  EXPECT_EQ(entries["holes-only"].size, int64_t{1} << 30);

  CheckpointArchive a;
  absl::Status st;
  ASSERT_NO_FATAL_FAILURE(ArchiveAndRestore(dir, t.path(), &a, &st));
  ASSERT_TRUE(st.ok()) << st;
  const std::string restored = t.path() + "/restored";
  struct stat img;
  ASSERT_EQ(stat((restored + "/disk.img").c_str(), &img), 0);
  EXPECT_EQ(img.st_size, kSize);
  EXPECT_LT(img.st_blocks * 512, 1 << 20);
  UniqueFd fd(open((restored + "/disk.img").c_str(), O_RDONLY | O_CLOEXEC));
  char buf[8] = {};
  ASSERT_EQ(pread(fd.get(), buf, 4, 0), 4);
  EXPECT_EQ(std::string(buf, 4), "head");
  ASSERT_EQ(pread(fd.get(), buf, 6, kSize / 2), 6);
  EXPECT_EQ(std::string(buf, 6), "middle");
}

// A writable layer holds files, directories, symlinks and whiteouts. Sockets are left out (CRIU
// binds them again); FIFOs and device nodes fail the checkpoint, naming the path.
TEST(CheckpointTest, FifosAndDevicesInTheWritableLayerAreRefused) {
  test::TempDir t;
  const std::string upper = t.path() + "/upper";
  ASSERT_TRUE(MakeDirs(upper + "/run").ok());
  UniqueFd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  const std::string sock_path = upper + "/run/app.sock";
  ASSERT_LT(sock_path.size(), sizeof(addr.sun_path));
  memcpy(addr.sun_path, sock_path.c_str(), sock_path.size());
  ASSERT_EQ(bind(sock.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_TRUE(WriteRootfsDiff(upper, t.path() + "/ok.tar").ok());
  EXPECT_FALSE(ListTar(t.path() + "/ok.tar").count("run/app.sock"));

  ASSERT_EQ(mkfifo((upper + "/run/pipe").c_str(), 0600), 0);
  absl::Status st = WriteRootfsDiff(upper, t.path() + "/fifo.tar");
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "run/pipe")) << st;
  EXPECT_FALSE(PathExists(t.path() + "/fifo.tar"));
  ASSERT_EQ(unlink((upper + "/run/pipe").c_str()), 0);

  ASSERT_EQ(mknod((upper + "/run/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  st = WriteRootfsDiff(upper, t.path() + "/dev.tar");
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "run/null")) << st;
}

}  // namespace
}  // namespace berth::engine
