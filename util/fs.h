// Small filesystem helpers berth uses everywhere: atomic writes, reads, directory creation.
#ifndef BERTH_UTIL_FS_H_
#define BERTH_UTIL_FS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth {

// Writes through a temporary file in the same directory and renames it into place.
absl::Status WriteFileAtomic(const std::string& path, const std::string& content, int mode = 0644,
                             bool sync = false);
absl::StatusOr<std::string> ReadFile(const std::string& path);
absl::Status MakeDirs(const std::string& path, int mode = 0755);
// Removes a tree; absent is fine. Refuses to follow mounts (fails with the busy path instead).
absl::Status RemoveAll(const std::string& path);
bool PathExists(const std::string& path);
// An errno as a status naming what failed: ENOENT NotFound, EEXIST AlreadyExists, EPERM and
// EACCES PermissionDenied, anything else Internal.
absl::Status ErrnoStatus(int err, absl::string_view what);
// The current errno as an Internal status naming what failed.
absl::Status Errno(absl::string_view what);
// Blocks until `path` exists, woken by inotify on its directory (which must exist) rather than
// by polling; DeadlineExceeded naming the path after `timeout_ms`.
absl::Status WaitForPath(const std::string& path, int timeout_ms);
// A random identifier of 64 lowercase hex characters, as CRI runtimes use.
std::string NewId();

}  // namespace berth

#endif  // BERTH_UTIL_FS_H_
