#include "runtime/checkpoint_test_util.h"

#include <archive.h>
#include <archive_entry.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "util/fs.h"

namespace berth::engine::checkpoint_test {

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

void MakeCheckpointDir(const std::string& dir, const std::string& id) {
  ASSERT_TRUE(MakeDirs(dir + "/checkpoint").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/checkpoint/inventory.img", "criu images").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/checkpoint/pages-1.img", std::string(100000, 'p')).ok());
  ASSERT_TRUE(WriteCheckpointMetadata(Record(id), 1234, dir).ok());
}

void WriteTarFile(const std::string& path, const std::vector<TarEntry>& entries, bool gzip) {
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

std::vector<TarEntry> MinimalArchive(const std::string& id, const std::string& inventory,
                                     std::vector<TarEntry> more) {
  std::vector<TarEntry> entries = {{"config.dump", ConfigDump(id)},
                                   {"container.pb", Record(id).SerializeAsString()},
                                   {"spec.dump", "{}"},
                                   {"checkpoint/inventory.img", inventory}};
  for (TarEntry& e : more) entries.push_back(std::move(e));
  return entries;
}

void ExpectInvalid(const std::string& path, absl::string_view why) {
  absl::StatusOr<CheckpointArchive> a = ReadCheckpointArchive(path);
  ASSERT_FALSE(a.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(a.status())) << a.status();
  EXPECT_TRUE(absl::StrContains(a.status().message(), "config.image.image")) << a.status();
  EXPECT_TRUE(absl::StrContains(a.status().message(), why)) << a.status();
}

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

void ArchiveAndRestore(const std::string& dir, const std::string& work, CheckpointArchive* archive,
                       absl::Status* rootfs_diff) {
  const std::string path = work + "/ckpt.tar.gz", unpacked = work + "/unpacked";
  ASSERT_TRUE(WriteCheckpointArchive(dir, path).ok());
  absl::StatusOr<CheckpointArchive> a = ReadCheckpointArchive(path);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(MakeDirs(unpacked).ok());
  ASSERT_TRUE(UnpackCheckpointArchive(*a, unpacked).ok());
  *rootfs_diff = UnpackRootfsDiff(*a, unpacked, work + "/restored");
  *archive = *std::move(a);
}

}  // namespace berth::engine::checkpoint_test
