// Sizing a writable layer (a container's overlay upper directory) the way `du` does.
#ifndef BERTH_RUNTIME_STATS_LAYER_WALK_H_
#define BERTH_RUNTIME_STATS_LAYER_WALK_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace berth::engine::stats {

struct TreeUsage {
  uint64_t bytes = 0;   // allocated blocks (st_blocks * 512), each hard-linked inode once
  uint64_t inodes = 0;  // distinct inodes, the directory itself included
};

// Walks `dir` without following symlinks or crossing into other filesystems (a mount inside the
// upper dir is not the layer's). Entries that vanish during the walk are skipped: containers keep
// writing while we count. NotFound naming `dir` when it does not exist. Slow on big trees: call it
// from a background thread, never on a request path.
absl::StatusOr<TreeUsage> MeasureTree(const std::string& dir);

}  // namespace berth::engine::stats

#endif  // BERTH_RUNTIME_STATS_LAYER_WALK_H_
