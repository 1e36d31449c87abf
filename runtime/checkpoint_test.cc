// Checkpoint archives: what CheckpointContainer writes reads back, the writable layer survives
// the trip with its whiteouts, and anything else (missing, not a tar, unsafe, foreign) is refused.
#include "runtime/checkpoint.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "test/util/temp_dir.h"
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
void WriteTarFile(const std::string& path, const std::vector<TarEntry>& entries) {
  struct archive* w = archive_write_new();
  archive_write_set_format_pax_restricted(w);
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
}

TEST(CheckpointTest, AnArchiveSwappedAfterItWasReadIsNotUnpackedAsTheOld) {
  test::TempDir t;
  const std::string first = t.path() + "/first", second = t.path() + "/second";
  MakeCheckpointDir(first, "aaa");
  MakeCheckpointDir(second, "bbb");
  const std::string archive = t.path() + "/ckpt.tar.gz";
  ASSERT_TRUE(WriteCheckpointArchive(first, archive).ok());
  absl::StatusOr<CheckpointArchive> a = ReadCheckpointArchive(archive);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_FALSE(a->has_rootfs_diff);
  ASSERT_TRUE(WriteCheckpointArchive(second, archive).ok());
  ASSERT_TRUE(MakeDirs(t.path() + "/unpacked").ok());
  absl::Status st = UnpackCheckpointArchive(*a, t.path() + "/unpacked");
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "changed")) << st;
}

TEST(CheckpointTest, RequestFieldsOverrideTheCheckpointedConfig) {
  cri::ContainerConfig old;
  old.mutable_metadata()->set_name("counter");
  old.mutable_metadata()->set_attempt(3);
  old.mutable_image()->set_image("busybox");
  old.add_command("/bin/sh");
  (*old.mutable_labels())["app"] = "old";
  (*old.mutable_labels())["keep"] = "yes";
  (*old.mutable_annotations())["a"] = "1";
  old.set_log_path("counter_3.log");
  auto* m = old.add_mounts();
  m->set_container_path("/data");
  m->set_host_path("/old/data");
  m = old.add_mounts();
  m->set_container_path("/cache");
  m->set_host_path("/old/cache");
  old.mutable_linux()->mutable_resources()->set_cpu_shares(512);

  cri::ContainerConfig req;
  req.mutable_metadata()->set_name("counter-restored");
  req.mutable_image()->set_image("/var/lib/ckpt.tar");
  (*req.mutable_labels())["app"] = "new";
  (*req.mutable_annotations())["b"] = "2";
  req.set_log_path("counter-restored_0.log");
  m = req.add_mounts();
  m->set_container_path("/data");
  m->set_host_path("/new/data");

  cri::ContainerConfig out = MergeRestoreConfig(old, req);
  EXPECT_EQ(out.metadata().name(), "counter-restored");
  EXPECT_EQ(out.metadata().attempt(), 0u);
  EXPECT_EQ(out.image().image(), "busybox");
  ASSERT_EQ(out.command_size(), 1);
  EXPECT_EQ(out.labels().at("app"), "new");
  EXPECT_EQ(out.labels().at("keep"), "yes");
  EXPECT_EQ(out.annotations().at("a"), "1");
  EXPECT_EQ(out.annotations().at("b"), "2");
  EXPECT_EQ(out.log_path(), "counter-restored_0.log");
  ASSERT_EQ(out.mounts_size(), 2);
  EXPECT_EQ(out.mounts(0).container_path(), "/cache");
  EXPECT_EQ(out.mounts(1).host_path(), "/new/data");
  EXPECT_EQ(out.linux().resources().cpu_shares(), 512);
  req.mutable_linux()->mutable_resources()->set_cpu_shares(1024);
  EXPECT_EQ(MergeRestoreConfig(old, req).linux().resources().cpu_shares(), 1024);
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
