// What the checkpoint sources (checkpoint.cc, checkpoint_write.cc, checkpoint_read.cc) share:
// the archive bounds (which tests lower through checkpoint_testing.h), the walk's test hook and
// file-type names for messages. Not part of the checkpoint library's interface.
#ifndef BERTH_RUNTIME_CHECKPOINT_INTERNAL_H_
#define BERTH_RUNTIME_CHECKPOINT_INTERNAL_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace berth::engine::checkpoint_internal {

// Bounds on a whole archive (bytes, entries), checked when it is written and when it is read.
int64_t MaxArchiveBytes();
int64_t MaxArchiveEntries();

// Calls the hook checkpoint_testing::SetWalkHook installed, if any.
void RunWalkHook(const std::string& name);

// "a FIFO", "a character device", ... for the file type in `mode`.
const char* TypeName(mode_t mode);

}  // namespace berth::engine::checkpoint_internal

#endif  // BERTH_RUNTIME_CHECKPOINT_INTERNAL_H_
