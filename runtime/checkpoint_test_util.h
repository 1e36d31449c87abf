// Helpers shared by the checkpoint tests: a container record, a checkpoint directory as
// CheckpointContainer leaves it, hand-made tars, listing a tar, and a whole archive-and-restore.
#ifndef BERTH_RUNTIME_CHECKPOINT_TEST_UTIL_H_
#define BERTH_RUNTIME_CHECKPOINT_TEST_UTIL_H_

#include <archive_entry.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/berth/v1/records.pb.h"
#include "runtime/checkpoint.h"

namespace berth::engine::checkpoint_test {

// A running container's record with id `id`.
berth::v1::Container Record(const std::string& id);

// A directory laid out as CheckpointContainer leaves it before archiving (ASSERTs).
void MakeCheckpointDir(const std::string& dir, const std::string& id);

// A tar with arbitrary entries, for archives CheckpointContainer would never write (ASSERTs).
struct TarEntry {
  std::string name;
  std::string data;
  mode_t type = AE_IFREG;
  std::string link;  // symlink target
};
void WriteTarFile(const std::string& path, const std::vector<TarEntry>& entries, bool gzip = false);

// A config.dump of the current format for container `id`.
std::string ConfigDump(const std::string& id);

// The smallest archive a restore accepts for container `id`: config.dump, container.pb,
// spec.dump and checkpoint/inventory.img (holding `inventory`), then `more`.
std::vector<TarEntry> MinimalArchive(const std::string& id, const std::string& inventory = "i",
                                     std::vector<TarEntry> more = {});

// ReadCheckpointArchive(path) is InvalidArgument naming config.image.image and saying `why`.
void ExpectInvalid(const std::string& path, absl::string_view why);

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
std::map<std::string, Listed> ListTar(const std::string& path);

// What a restore makes of the checkpoint directory `dir`: archives it into <work>/ckpt.tar.gz,
// reads that back into `*archive` and unpacks it into <work>/unpacked (ASSERTing each of these
// works), then unpacks its writable layer into <work>/restored; `*rootfs_diff` is what
// UnpackRootfsDiff said. Call under ASSERT_NO_FATAL_FAILURE.
void ArchiveAndRestore(const std::string& dir, const std::string& work, CheckpointArchive* archive,
                       absl::Status* rootfs_diff);

}  // namespace berth::engine::checkpoint_test

#endif  // BERTH_RUNTIME_CHECKPOINT_TEST_UTIL_H_
