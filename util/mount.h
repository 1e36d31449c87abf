// Mount helpers shared by the image store and the user-namespace code: overlay mounts with
// short relative options, and detached idmapped copies of a mount.
#ifndef BERTH_UTIL_MOUNT_H_
#define BERTH_UTIL_MOUNT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "util/fd.h"

namespace berth {

// Mounts overlayfs at `target` with `options` whose relative paths resolve in `base_fd` when it is
// valid (a directory or a detached mount), otherwise in `base_dir`. Runs in a short-lived thread
// that unshares its filesystem context, so berthd's own cwd never moves and no process is forked.
// ResourceExhausted when the options do not fit the kernel's page-sized option buffer.
absl::Status MountOverlayRelative(const std::string& base_dir, int base_fd,
                                  const std::string& options, const std::string& target);

// MountOverlayRelative with the relative paths resolved in the detached tree `tree_fd` (an
// IdmappedClone). Where the kernel takes no layer from a detached mount (EINVAL, as on 6.1),
// the tree is attached at a new private directory under `attach_parent` for the mount and
// detached again; `tree_fd` is then attached no more and must not be reused.
absl::Status MountOverlayThroughTree(int tree_fd, const std::string& attach_parent,
                                     const std::string& options, const std::string& target);

// A detached copy of the mount at `source` (with its submounts when `recursive`), idmapped with
// the user namespace `userns_fd`: a file of host uid N shows as the host uid that N maps to, i.e.
// as uid N inside that namespace. Attach it with move_mount or use it as a cwd. FailedPrecondition
// when the filesystem or kernel cannot idmap it; NotFound for a missing source.
absl::StatusOr<UniqueFd> IdmappedClone(const std::string& source, int userns_fd, bool recursive);

// KEP-3857 recursive read-only: makes every mount of the detached tree `tree_fd` read-only
// (mount_setattr MOUNT_ATTR_RDONLY with AT_RECURSIVE), which runc 1.1's "ro" bind cannot do for
// submounts. FailedPrecondition when the kernel cannot.
absl::Status MakeTreeReadOnly(int tree_fd, const std::string& what);
// A detached recursive copy of the mount tree at `source`, every mount in it read-only.
absl::StatusOr<UniqueFd> ReadOnlyClone(const std::string& source);
// Whether ReadOnlyClone works here (tried on a fresh directory in `dir`).
absl::Status ProbeRecursiveReadOnly(const std::string& dir);

// Detaches every mount stacked at `path` (at most 16); nothing mounted there is fine.
absl::Status DetachAllMounts(const std::string& path);

// Removes a (detached) mount point: one directory or file, never a tree; an absent one is fine.
absl::Status RemoveMountPoint(const std::string& path);

}  // namespace berth

#endif  // BERTH_UTIL_MOUNT_H_
