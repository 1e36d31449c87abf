// Test-only seams of runtime/checkpoint.cc: a hook inside the writable-layer walk, to replay a
// container's races deterministically, and smaller archive limits, so tests and the fuzzer can
// reach them with small inputs. Not thread-safe; nothing but tests may call these.
#ifndef BERTH_RUNTIME_CHECKPOINT_TESTING_H_
#define BERTH_RUNTIME_CHECKPOINT_TESTING_H_

#include <cstdint>
#include <functional>
#include <string>

namespace berth::engine::checkpoint_testing {

// Called with an entry's name in the tar after the walk stat'ed it and before it opens it (or
// reads its link): what a container running beside the walk could change in between.
void SetWalkHook(std::function<void(const std::string& name)> hook);

// What a checkpoint archive may hold (see kMaxArchiveBytes/kMaxArchiveEntries in checkpoint.cc).
struct ArchiveLimits {
  int64_t max_bytes;    // the archive file, and the data of all its entries together
  int64_t max_entries;  // entries of the archive (and of its rootfs-diff.tar)
};
ArchiveLimits DefaultArchiveLimits();
void SetArchiveLimits(const ArchiveLimits& limits);

}  // namespace berth::engine::checkpoint_testing

#endif  // BERTH_RUNTIME_CHECKPOINT_TESTING_H_
