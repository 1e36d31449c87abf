// HostOps: the real mounts.
#include "runtime/host_ops.h"

#include <sys/mount.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "util/crash_point.h"
#include "util/fs.h"

namespace berth::engine {

absl::Status HostOps::MountTmpfs(const std::string& target, const std::string& options) {
  if (mount("tmpfs", target.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options.c_str()) !=
      0) {
    return Errno(absl::StrCat("mounting a tmpfs at ", target));
  }
  CrashPoint("tmpfs", "mount");
  return absl::OkStatus();
}

absl::Status HostOps::Unmount(const std::string& target) {
  if (umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0 && errno != EINVAL &&
      errno != ENOENT) {
    return Errno(absl::StrCat("unmounting ", target));
  }
  CrashPoint("tmpfs", "unmount");
  return absl::OkStatus();
}

}  // namespace berth::engine
