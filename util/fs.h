// Small filesystem helpers berth uses everywhere: atomic writes, reads, directory creation.
#ifndef BERTH_UTIL_FS_H_
#define BERTH_UTIL_FS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth {

// Writes through a temporary file in the same directory and renames it into place.
absl::Status WriteFileAtomic(const std::string& path, const std::string& content, int mode = 0644,
                             bool sync = false);
absl::StatusOr<std::string> ReadFile(const std::string& path);
absl::Status MakeDirs(const std::string& path, int mode = 0755);
// Removes a tree; absent is fine. Refuses to follow mounts (fails with the busy path instead).
absl::Status RemoveAll(const std::string& path);
bool PathExists(const std::string& path);
// Blocks until `path` exists, woken by inotify on its directory (which must exist) rather than
// by polling; DeadlineExceeded naming the path after `timeout_ms`.
absl::Status WaitForPath(const std::string& path, int timeout_ms);
// A random identifier of 64 lowercase hex characters, as CRI runtimes use.
std::string NewId();

}  // namespace berth

#endif  // BERTH_UTIL_FS_H_
