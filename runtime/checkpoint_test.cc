// Checkpoint archives: what CheckpointContainer writes reads back, the writable layer survives
// the trip with its whiteouts (and holes) but never takes a host file along, and anything else
// (missing, not a tar, unsafe, foreign, swapped, too big) is refused.
#include "runtime/checkpoint.h"

#include <archive.h>
#include <archive_entry.h>
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
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "runtime/checkpoint_testing.h"
#include "test/util/temp_dir.h"
#include "util/fd.h"
#include "util/fs.h"

namespace berth::runtime {
namespace {

namespace cri = ::runtime::v1;

berth::v1::Container Record(const std::string& id) {
  berth::v1::Container c;
  auto* cc = c.mutable_config();
  cc->set_id(id);
  cc->set_name("k8s_counter_pod_default_uid_0");
  cc->set_image_id("sha256:feed");
  cc->set_image_ref("docker.io/library/busybox@sha256:beef");
  cc->set_image_name("busybox");
  cc->set_oci_spec(R"({"ociVersion":"1.0.2"})");
  cc->mutable_cri()->mutable_metadata()->set_name("counter");
  cc->mutable_cri()->mutable_image()->set_image("busybox");
  cc->mutable_cri()->add_command("/bin/sh");
  c.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_RUNNING);
  return c;
}

// A directory laid out as CheckpointContainer leaves it before archiving.
void MakeCheckpointDir(const std::string& dir, const std::string& id) {
  ASSERT_TRUE(MakeDirs(dir + "/checkpoint").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/checkpoint/inventory.img", "criu images").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/checkpoint/pages-1.img", std::string(100000, 'p')).ok());
  ASSERT_TRUE(WriteCheckpointMetadata(Record(id), 1234, dir).ok());
}

// A tar with arbitrary entries, for archives CheckpointContainer would never write.
struct TarEntry {
  std::string name;
  std::string data;
  mode_t type = AE_IFREG;
  std::string link;  // symlink target
};
void WriteTarFile(const std::string& path, const std::vector<TarEntry>& entries, bool gzip = false) {
  struct archive* w = archive_write_new();
  archive_write_set_format_pax_restricted(w);
  if (gzip) archive_write_add_filter_gzip(w);
  ASSERT_EQ(archive_write_open_filename(w, path.c_str()), ARCHIVE_OK);
  for (const TarEntry& t : entries) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, t.name.c_str());
    archive_entry_set_filetype(e, t.type);
    archive_entry_set_perm(e, 0644);
    if (!t.link.empty()) archive_entry_set_symlink(e, t.link.c_str());
    archive_entry_set_size(e, t.type == AE_IFREG ? t.data.size() : 0);
    ASSERT_EQ(archive_write_header(w, e), ARCHIVE_OK);
    if (t.type == AE_IFREG) archive_write_data(w, t.data.data(), t.data.size());
    archive_entry_free(e);
  }
  archive_write_close(w);
  archive_write_free(w);
}

std::string ConfigDump(const std::string& id) {
  return absl::StrCat(R"({"berthCheckpointVersion":1,"id":")", id, R"("})");
}

void ExpectInvalid(const std::string& path, absl::string_view why) {
  absl::StatusOr<CheckpointArchive> a = ReadCheckpointArchive(path);
  ASSERT_FALSE(a.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(a.status())) << a.status();
  EXPECT_TRUE(absl::StrContains(a.status().message(), "config.image.image")) << a.status();
  EXPECT_TRUE(absl::StrContains(a.status().message(), why)) << a.status();
}

TEST(CheckpointTest, OnlyAbsolutePathsNameArchives) {
  EXPECT_TRUE(IsCheckpointArchiveRef("/var/lib/ckpt.tar"));
  EXPECT_FALSE(IsCheckpointArchiveRef("busybox"));
  EXPECT_FALSE(IsCheckpointArchiveRef("docker.io/library/busybox:1"));
  EXPECT_FALSE(IsCheckpointArchiveRef("sha256:abcd"));
}

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
  const std::string archive = t.path() + "/out/ckpt.tar.gz";
  ASSERT_TRUE(MakeDirs(t.path() + "/out").ok());
  ASSERT_TRUE(WriteCheckpointArchive(dir, archive).ok());

  absl::StatusOr<CheckpointArchive> a = ReadCheckpointArchive(archive);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->container.config().id(), "c0ffee");
  EXPECT_EQ(a->container.config().cri().metadata().name(), "counter");
  EXPECT_EQ(a->spec, R"({"ociVersion":"1.0.2"})");
  EXPECT_EQ(a->checkpointed_at_ns, 1234);
  EXPECT_TRUE(a->has_rootfs_diff);

  const std::string unpacked = t.path() + "/unpacked", restored = t.path() + "/restored-upper";
  ASSERT_TRUE(MakeDirs(unpacked).ok());
  ASSERT_TRUE(UnpackCheckpointArchive(*a, unpacked).ok());
  EXPECT_EQ(ReadFile(unpacked + "/checkpoint/pages-1.img").value_or(""), std::string(100000, 'p'));
  ASSERT_TRUE(UnpackRootfsDiff(*a, unpacked, restored).ok());
  EXPECT_FALSE(PathExists(unpacked + "/" + kCheckpointRootfsDiff));
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

// The entries of a tar (gzip'ed or not): type, link target, and the bytes it stores (data blocks
// only, so a sparse entry's holes are not expanded here either).
struct Listed {
  mode_t type = 0;
  std::string link;
  std::string data;
  int64_t size = 0;
  int sparse_blocks = 0;
  dev_t rdev = 0;
};
std::map<std::string, Listed> ListTar(const std::string& path) {
  std::map<std::string, Listed> out;
  struct archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_tar(a);
  if (archive_read_open_filename(a, path.c_str(), 1 << 16) != ARCHIVE_OK) {
    ADD_FAILURE() << archive_error_string(a);
    archive_read_free(a);
    return out;
  }
  struct archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    Listed& l = out[archive_entry_pathname(e)];
    l.type = archive_entry_filetype(e);
    if (archive_entry_symlink(e) != nullptr) l.link = archive_entry_symlink(e);
    l.size = archive_entry_size(e);
    l.sparse_blocks = archive_entry_sparse_count(e);
    l.rdev = archive_entry_rdev(e);
    const void* buf;
    size_t n;
    la_int64_t off;
    while (archive_read_data_block(a, &buf, &n, &off) == ARCHIVE_OK) {
      l.data.append(static_cast<const char*>(buf), n);
    }
  }
  archive_read_free(a);
  return out;
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

  const std::string archive = t.path() + "/ckpt.tar.gz";
  ASSERT_TRUE(WriteCheckpointArchive(dir, archive).ok());
  absl::StatusOr<CheckpointArchive> a = ReadCheckpointArchive(archive);
  ASSERT_TRUE(a.ok()) << a.status();
  const std::string unpacked = t.path() + "/unpacked", restored = t.path() + "/restored";
  ASSERT_TRUE(MakeDirs(unpacked).ok());
  ASSERT_TRUE(UnpackCheckpointArchive(*a, unpacked).ok());
  absl::Status st = UnpackRootfsDiff(*a, unpacked, restored);
  ASSERT_TRUE(st.ok()) << st;
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

// Nor does a restore make them: a rootfs-diff.tar berth never wrote is refused.
TEST(CheckpointTest, ARootfsDiffWithDevicesIsNotRestored) {
  test::TempDir t;
  const std::string dir = t.path() + "/ckpt";
  MakeCheckpointDir(dir, "de7");
  WriteTarFile(dir + "/" + kCheckpointRootfsDiff,
               {{"etc/ok", "fine"}, {"dev-sda", "", AE_IFBLK}, {"pipe", "", AE_IFIFO}});
  const std::string archive = t.path() + "/ckpt.tar.gz";
  ASSERT_TRUE(WriteCheckpointArchive(dir, archive).ok());
  absl::StatusOr<CheckpointArchive> a = ReadCheckpointArchive(archive);
  ASSERT_TRUE(a.ok()) << a.status();
  const std::string unpacked = t.path() + "/unpacked", restored = t.path() + "/restored";
  ASSERT_TRUE(MakeDirs(unpacked).ok());
  ASSERT_TRUE(UnpackCheckpointArchive(*a, unpacked).ok());
  absl::Status st = UnpackRootfsDiff(*a, unpacked, restored);
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "dev-sda")) << st;
  EXPECT_FALSE(PathExists(restored + "/dev-sda"));
}

TEST(CheckpointTest, MissingOrForeignFilesAreInvalidArguments) {
  test::TempDir t;
  ExpectInvalid(t.path() + "/absent.tar", "cannot be read");
  ExpectInvalid(t.path(), "not a checkpoint archive file");
  ASSERT_TRUE(WriteFileAtomic(t.path() + "/text", "not a tar at all\n").ok());
  ExpectInvalid(t.path() + "/text", "is not a checkpoint archive");
  // A tar, but of something else.
  WriteTarFile(t.path() + "/other.tar", {{"etc/passwd", "root:x:0:0::/:/bin/sh\n"}});
  ExpectInvalid(t.path() + "/other.tar", "not part of a berth checkpoint");
  // CRI-O's layout without berth's record and version.
  WriteTarFile(t.path() + "/crio.tar", {{"config.dump", R"({"id":"x"})"},
                                        {"spec.dump", "{}"},
                                        {"checkpoint/inventory.img", "i"}});
  ExpectInvalid(t.path() + "/crio.tar", "not a berth checkpoint archive");
  WriteTarFile(t.path() + "/future.tar", {{"config.dump", R"({"berthCheckpointVersion":9})"}});
  ExpectInvalid(t.path() + "/future.tar", "format 9 is not supported");
}

TEST(CheckpointTest, IncompleteOrUnsafeArchivesAreRefused) {
  test::TempDir t;
  const std::string record = Record("abc").SerializeAsString();
  WriteTarFile(t.path() + "/noimages.tar",
               {{"config.dump", ConfigDump("abc")}, {"container.pb", record}, {"spec.dump", "{}"}});
  ExpectInvalid(t.path() + "/noimages.tar", "no CRIU images");
  WriteTarFile(t.path() + "/mismatch.tar", {{"config.dump", ConfigDump("other")},
                                            {"container.pb", record},
                                            {"spec.dump", "{}"},
                                            {"checkpoint/inventory.img", "i"}});
  ExpectInvalid(t.path() + "/mismatch.tar", "different containers");
  WriteTarFile(t.path() + "/dotdot.tar",
               {{"config.dump", ConfigDump("abc")}, {"../../etc/cron.d/evil", "* * * * * root id\n"}});
  ExpectInvalid(t.path() + "/dotdot.tar", "leaves the archive");
  WriteTarFile(t.path() + "/absolute.tar", {{"/etc/evil", "x"}});
  ExpectInvalid(t.path() + "/absolute.tar", "leaves the archive");
  WriteTarFile(t.path() + "/symlink.tar", {{"config.dump", ConfigDump("abc")},
                                           {"checkpoint", "", AE_IFLNK, "/etc"}});
  ExpectInvalid(t.path() + "/symlink.tar", "is not a file or directory");
  WriteTarFile(t.path() + "/twice.tar", {{"config.dump", ConfigDump("abc")},
                                         {"config.dump", ConfigDump("other")}});
  ExpectInvalid(t.path() + "/twice.tar", "appears twice");
  // Cut short inside an entry's data, which the check passes over without reading it.
  WriteTarFile(t.path() + "/cut.tar", {{"config.dump", ConfigDump("abc")},
                                       {"container.pb", record},
                                       {"spec.dump", "{}"},
                                       {"checkpoint/inventory.img", "i"},
                                       {"checkpoint/pages-1.img", std::string(100000, 'p')}});
  ASSERT_EQ(truncate((t.path() + "/cut.tar").c_str(), 50000), 0);
  ExpectInvalid(t.path() + "/cut.tar", "Truncated");
}

// The archive is opened once, and what is unpacked is what was read: a file renamed over the
// path afterwards (here one that adds a symlink the first never had) is never looked at.
TEST(CheckpointTest, AnArchiveSwappedAfterItWasReadIsUnpackedAsRead) {
  test::TempDir t;
  const std::string record = Record("aaa").SerializeAsString();
  const std::vector<TarEntry> good = {{"config.dump", ConfigDump("aaa")},
                                      {"container.pb", record},
                                      {"spec.dump", "{}"},
                                      {"checkpoint/inventory.img", "first"}};
  std::vector<TarEntry> evil = good;
  evil[3].data = "second";
  evil.push_back({"checkpoint/evil", "", AE_IFLNK, "/etc/shadow"});
  const std::string archive = t.path() + "/ckpt.tar", other = t.path() + "/other.tar";
  WriteTarFile(archive, good);
  WriteTarFile(other, evil);
  absl::StatusOr<CheckpointArchive> a = ReadCheckpointArchive(archive);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(rename(other.c_str(), archive.c_str()), 0);
  const std::string dest = t.path() + "/unpacked";
  ASSERT_TRUE(MakeDirs(dest).ok());
  absl::Status st = UnpackCheckpointArchive(*a, dest);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(ReadFile(dest + "/checkpoint/inventory.img").value_or(""), "first");
  struct stat sb;
  EXPECT_NE(lstat((dest + "/checkpoint/evil").c_str(), &sb), 0);
}

// Rewritten in place (same inode, same metadata), the archive is checked again entry by entry as
// it is unpacked: the symlink the first read never saw is refused then.
TEST(CheckpointTest, AnArchiveRewrittenInPlaceIsCheckedAgainWhenUnpacked) {
  test::TempDir t;
  const std::string record = Record("aaa").SerializeAsString();
  const std::vector<TarEntry> good = {{"config.dump", ConfigDump("aaa")},
                                      {"container.pb", record},
                                      {"spec.dump", "{}"},
                                      {"checkpoint/inventory.img", "i"}};
  std::vector<TarEntry> evil = good;
  evil.push_back({"checkpoint/evil", "", AE_IFLNK, "/etc/shadow"});
  const std::string archive = t.path() + "/ckpt.tar", other = t.path() + "/other.tar";
  WriteTarFile(archive, good);
  WriteTarFile(other, evil);
  absl::StatusOr<CheckpointArchive> a = ReadCheckpointArchive(archive);
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<std::string> bytes = ReadFile(other);
  ASSERT_TRUE(bytes.ok());
  {
    UniqueFd fd(open(archive.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    ASSERT_TRUE(WriteAll(fd.get(), bytes->data(), bytes->size()));
  }
  const std::string dest = t.path() + "/unpacked";
  ASSERT_TRUE(MakeDirs(dest).ok());
  absl::Status st = UnpackCheckpointArchive(*a, dest);
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "config.image.image")) << st;
  struct stat sb;
  EXPECT_NE(lstat((dest + "/checkpoint/evil").c_str(), &sb), 0);
}

TEST(CheckpointTest, AnArchiveMustBeARegularFileNotASymlinkToOne) {
  test::TempDir t;
  MakeCheckpointDir(t.path() + "/ckpt", "abc");
  const std::string archive = t.path() + "/ckpt.tar.gz";
  ASSERT_TRUE(WriteCheckpointArchive(t.path() + "/ckpt", archive).ok());
  ASSERT_TRUE(ReadCheckpointArchive(archive).ok());
  ASSERT_EQ(symlink(archive.c_str(), (t.path() + "/link.tar.gz").c_str()), 0);
  ExpectInvalid(t.path() + "/link.tar.gz", "symlink");
  ASSERT_EQ(mkfifo((t.path() + "/fifo").c_str(), 0600), 0);
  ExpectInvalid(t.path() + "/fifo", "not a checkpoint archive file");  // and does not block
}

TEST(CheckpointTest, ArchivesBeyondTheLimitsAreRefused) {
  const checkpoint_testing::ArchiveLimits defaults = checkpoint_testing::DefaultArchiveLimits();
  EXPECT_GE(defaults.max_bytes, int64_t{16} << 30);
  EXPECT_GE(defaults.max_entries, 1 << 16);
  struct Restore {
    checkpoint_testing::ArchiveLimits l;
    ~Restore() { checkpoint_testing::SetArchiveLimits(l); }
  } restore{defaults};
  test::TempDir t;
  const std::string record = Record("abc").SerializeAsString();
  std::vector<TarEntry> entries = {{"config.dump", ConfigDump("abc")},
                                   {"container.pb", record},
                                   {"spec.dump", "{}"},
                                   {"checkpoint/inventory.img", "i"}};
  for (int i = 0; i < 20; ++i) entries.push_back({absl::StrCat("checkpoint/core-", i, ".img"), "c"});
  WriteTarFile(t.path() + "/many.tar", entries);
  ASSERT_TRUE(ReadCheckpointArchive(t.path() + "/many.tar").ok());
  checkpoint_testing::SetArchiveLimits({.max_bytes = defaults.max_bytes, .max_entries = 10});
  ExpectInvalid(t.path() + "/many.tar", "more than 10 entries");

  // Counted in uncompressed bytes, before they are read: a small gzip bomb stops at the bound.
  const std::string big = t.path() + "/big.tar.gz";
  WriteTarFile(big,
               {{"config.dump", ConfigDump("abc")},
                {"container.pb", record},
                {"spec.dump", "{}"},
                {"checkpoint/inventory.img", "i"},
                {"checkpoint/pages-1.img", std::string(2 << 20, 'p')}},
               /*gzip=*/true);
  struct stat st;
  ASSERT_EQ(stat(big.c_str(), &st), 0);
  ASSERT_LT(st.st_size, 100000);
  checkpoint_testing::SetArchiveLimits({.max_bytes = 4 << 20, .max_entries = 100});
  ASSERT_TRUE(ReadCheckpointArchive(big).ok());
  checkpoint_testing::SetArchiveLimits({.max_bytes = 1 << 20, .max_entries = 100});
  ExpectInvalid(big, "more than 1048576 bytes");
  // The file itself, before anything is decompressed.
  checkpoint_testing::SetArchiveLimits({.max_bytes = st.st_size - 1, .max_entries = 100});
  ExpectInvalid(big, absl::StrCat("more than ", st.st_size - 1, " bytes"));
}

// What a restored container may take from an archive is what the checkpointed process was (its
// image, command, args, env, working directory); everything that reaches the host comes from the
// request alone, even when the request leaves it unset.
TEST(CheckpointTest, HostFacingFieldsComeOnlyFromTheRequest) {
  cri::ContainerConfig old;
  old.mutable_metadata()->set_name("counter");
  old.mutable_metadata()->set_attempt(3);
  old.mutable_image()->set_image("busybox");
  old.add_command("/bin/sh");
  old.add_args("-c");
  old.add_args("count");
  auto* env = old.add_envs();
  env->set_key("STEP");
  env->set_value("2");
  old.set_working_dir("/work");
  (*old.mutable_labels())["app"] = "old";
  (*old.mutable_annotations())["org.criu.config"] = "/tmp/evil.conf";
  old.set_log_path("../../../etc/cron.d/evil");
  auto* m = old.add_mounts();
  m->set_container_path("/host");
  m->set_host_path("/");
  auto* d = old.add_devices();
  d->set_container_path("/dev/sda");
  d->set_host_path("/dev/sda");
  d->set_permissions("rwm");
  old.set_tty(true);
  auto* sc = old.mutable_linux()->mutable_security_context();
  sc->set_privileged(true);
  sc->mutable_capabilities()->add_add_capabilities("SYS_ADMIN");
  sc->mutable_namespace_options()->set_network(cri::NODE);
  sc->mutable_namespace_options()->set_pid(cri::NODE);
  sc->mutable_run_as_user()->set_value(0);
  old.mutable_linux()->mutable_resources()->set_cpu_shares(512);

  cri::ContainerConfig req;
  req.mutable_metadata()->set_name("counter-restored");
  req.mutable_image()->set_image("/var/lib/ckpt.tar");
  (*req.mutable_labels())["app"] = "new";
  (*req.mutable_annotations())["b"] = "2";

  cri::ContainerConfig out = MergeRestoreConfig(old, req);
  EXPECT_EQ(out.metadata().name(), "counter-restored");
  EXPECT_EQ(out.metadata().attempt(), 0u);
  EXPECT_EQ(out.image().image(), "busybox");
  EXPECT_EQ(absl::StrJoin(out.command(), " "), "/bin/sh");
  EXPECT_EQ(absl::StrJoin(out.args(), " "), "-c count");
  ASSERT_EQ(out.envs_size(), 1);
  EXPECT_EQ(out.envs(0).key(), "STEP");
  EXPECT_EQ(out.working_dir(), "/work");
  EXPECT_EQ(out.labels().size(), 1u);
  EXPECT_EQ(out.labels().at("app"), "new");
  EXPECT_EQ(out.annotations().size(), 1u);
  EXPECT_EQ(out.annotations().at("b"), "2");
  EXPECT_EQ(out.log_path(), "");
  EXPECT_EQ(out.mounts_size(), 0);
  EXPECT_EQ(out.devices_size(), 0);
  EXPECT_FALSE(out.tty());
  EXPECT_FALSE(out.linux().has_security_context());
  EXPECT_FALSE(out.linux().has_resources());

  // What the request sets is taken whole.
  req.set_log_path("counter-restored_0.log");
  req.mutable_linux()->mutable_resources()->set_cpu_shares(1024);
  req.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_ipc(cri::POD);
  out = MergeRestoreConfig(old, req);
  EXPECT_EQ(out.log_path(), "counter-restored_0.log");
  EXPECT_EQ(out.linux().resources().cpu_shares(), 1024);
  EXPECT_FALSE(out.linux().security_context().privileged());
  EXPECT_EQ(out.linux().security_context().namespace_options().network(), cri::POD);
  EXPECT_EQ(out.linux().security_context().namespace_options().pid(), cri::POD);
}

// CRI-O's rule: every mount the checkpointed container had needs one at the same container path
// in the request (its host side comes from the request); mounts it never had are not added.
TEST(CheckpointTest, RestoredMountsAreTheRequestsAtTheCheckpointedPaths) {
  cri::ContainerConfig old;
  for (const char* p : {"/data", "/cache"}) {
    auto* m = old.add_mounts();
    m->set_container_path(p);
    m->set_host_path(absl::StrCat("/old", p));
  }
  cri::ContainerConfig req;
  auto* m = req.add_mounts();
  m->set_container_path("/data");
  m->set_host_path("/new/data");
  m->set_readonly(true);
  absl::Status st = CheckRestoreMounts(old, req);
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "config.mounts")) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "/cache")) << st;
  EXPECT_FALSE(absl::StrContains(st.message(), "/data")) << st;

  m = req.add_mounts();
  m->set_container_path("/cache");
  m->set_host_path("/new/cache");
  m = req.add_mounts();
  m->set_container_path("/extra");
  m->set_host_path("/new/extra");
  EXPECT_TRUE(CheckRestoreMounts(old, req).ok());
  cri::ContainerConfig out = MergeRestoreConfig(old, req);
  ASSERT_EQ(out.mounts_size(), 2);
  EXPECT_EQ(out.mounts(0).container_path(), "/data");
  EXPECT_EQ(out.mounts(0).host_path(), "/new/data");
  EXPECT_TRUE(out.mounts(0).readonly());
  EXPECT_EQ(out.mounts(1).host_path(), "/new/cache");
}

TEST(CheckpointTest, AwaitingRestoreUntilConmonRunsIt) {
  berth::v1::Container c = Record("abc");
  c.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_CREATED);
  EXPECT_FALSE(AwaitingRestore(c));
  c.mutable_config()->mutable_restore()->set_archive("/ckpt.tar");
  EXPECT_TRUE(AwaitingRestore(c));
  c.mutable_state()->set_conmon_pid(42);
  EXPECT_FALSE(AwaitingRestore(c));
}

TEST(CheckpointTest, UnusableCriuIsAFailedPreconditionSayingWhy) {
  test::TempDir t;
  absl::Status missing = CriuUsable(t.path() + "/no-criu");
  EXPECT_TRUE(absl::IsFailedPrecondition(missing)) << missing;
  EXPECT_TRUE(absl::StrContains(missing.message(), "runtime.criu_path")) << missing;
  const std::string fake = t.path() + "/criu";
  ASSERT_TRUE(WriteFileAtomic(fake,
                              "#!/bin/sh\necho 'Warn  (kerndat.c:1): tmpfs' >&2\n"
                              "echo 'Error (vdso.c:1): vdso: Failed to fill self vdso symtable' >&2\n"
                              "exit 1\n",
                              0755)
                  .ok());
  absl::Status broken = CriuUsable(fake);
  EXPECT_TRUE(absl::IsFailedPrecondition(broken)) << broken;
  EXPECT_TRUE(absl::StrContains(broken.message(), "vdso symtable")) << broken;
  EXPECT_FALSE(absl::StrContains(broken.message(), "Warn")) << broken;
  // Kept per path: a CRIU that starts working needs a berthd restart, a different path does not.
  ASSERT_TRUE(WriteFileAtomic(fake, "#!/bin/sh\nexit 0\n", 0755).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(CriuUsable(fake)));
  const std::string good = t.path() + "/criu-good";
  ASSERT_TRUE(WriteFileAtomic(good, "#!/bin/sh\nexit 0\n", 0755).ok());
  absl::StatusOr<std::string> found = UsableCriu(good);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, good);
}

TEST(CheckpointTest, CriuLogErrorsKeepsTheLastErrorLines) {
  test::TempDir t;
  ASSERT_TRUE(WriteFileAtomic(t.path() + "/restore.log",
                              "(00.1) starting\n(00.2) Error (a.c:1): one\n(00.3) Error (b.c:2): two\n"
                              "(00.4) Error (c.c:3): three\n(00.5) Error (d.c:4): four\n")
                  .ok());
  EXPECT_EQ(CriuLogErrors(t.path() + "/restore.log"),
            "(00.3) Error (b.c:2): two; (00.4) Error (c.c:3): three; (00.5) Error (d.c:4): four");
  EXPECT_EQ(CriuLogErrors(t.path() + "/absent.log"), "");
}

}  // namespace
}  // namespace berth::runtime
