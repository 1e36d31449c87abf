// Overlay mounts from a thread with its own cwd; idmapped clones by open_tree + mount_setattr.
#include "util/mount.h"

#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "util/fs.h"

namespace berth {

namespace {

// The mount of MountOverlayRelative; 0 or the errno.
int MountOverlayErrno(const std::string& base_dir, int base_fd, const std::string& options,
                      const std::string& target) {
  int err = 0;
  std::thread mounter([&] {
    if (unshare(CLONE_FS) != 0 || (base_fd >= 0 ? fchdir(base_fd) : chdir(base_dir.c_str())) != 0 ||
        mount("overlay", target.c_str(), "overlay", 0, options.c_str()) != 0) {
      err = errno ? errno : EIO;
    }
  });
  mounter.join();
  return err;
}

}  // namespace

absl::Status MountOverlayRelative(const std::string& base_dir, int base_fd,
                                  const std::string& options, const std::string& target) {
  if (options.size() >= static_cast<size_t>(getpagesize()) - 1) {
    return absl::ResourceExhaustedError(absl::StrCat("overlay options for ", target, " are ",
                                                     options.size(), " bytes, over the page size"));
  }
  int err = MountOverlayErrno(base_dir, base_fd, options, target);
  if (err != 0)
    return ErrnoStatus(err, absl::StrCat("mount overlay at ", target, " (", options, ")"));
  return absl::OkStatus();
}

absl::Status MountOverlayThroughTree(int tree_fd, const std::string& attach_parent,
                                     const std::string& options, const std::string& target) {
  if (options.size() >= static_cast<size_t>(getpagesize()) - 1) {
    return absl::ResourceExhaustedError(absl::StrCat("overlay options for ", target, " are ",
                                                     options.size(), " bytes, over the page size"));
  }
  int err = MountOverlayErrno("", tree_fd, options, target);
  if (err != EINVAL) {
    if (err == 0) return absl::OkStatus();
    return ErrnoStatus(err, absl::StrCat("mount overlay at ", target, " (", options, ")"));
  }
  // Older kernels (Debian 12's 6.1 among them) take no layer from a detached mount (overlay
  // logs "failed to clone lowerpath"): attach the tree at a private directory for the
  // mount. Overlay keeps its own private clones of its layers, so the attachment goes right after.
  std::string point = absl::StrCat(attach_parent, "/.overlay-tree-XXXXXX");
  if (mkdtemp(point.data()) == nullptr) {
    return ErrnoStatus(errno, absl::StrCat("creating a directory in ", attach_parent));
  }
  if (move_mount(tree_fd, "", AT_FDCWD, point.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    int e = errno;
    rmdir(point.c_str());
    return ErrnoStatus(e, absl::StrCat("attaching the layers' view at ", point, " for ", target));
  }
  // Private, or the overlay mount below would propagate into the attached view (a clone of a
  // shared mount is its peer) and the view's detach would then take the overlay with it.
  if (mount(nullptr, point.c_str(), nullptr, MS_PRIVATE, nullptr) != 0) {
    int e = errno;
    if (umount2(point.c_str(), MNT_DETACH) == 0) rmdir(point.c_str());
    return ErrnoStatus(e, absl::StrCat("making the layers' view at ", point, " private"));
  }
  err = MountOverlayErrno(point, -1, options, target);
  if (umount2(point.c_str(), MNT_DETACH) == 0) rmdir(point.c_str());
  if (err != 0)
    return ErrnoStatus(err, absl::StrCat("mount overlay at ", target, " (", options, ")"));
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> IdmappedClone(const std::string& source, int userns_fd, bool recursive) {
  const unsigned int rec = recursive ? AT_RECURSIVE : 0;
  UniqueFd tree(open_tree(AT_FDCWD, source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec));
  if (!tree.valid()) return ErrnoStatus(errno, absl::StrCat("open_tree ", source));
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = static_cast<uint64_t>(userns_fd);
  if (mount_setattr(tree.get(), "", AT_EMPTY_PATH | rec, &attr, sizeof(attr)) != 0) {
    int err = errno;
    if (err == EINVAL || err == EPERM || err == EOPNOTSUPP) {
      return absl::FailedPreconditionError(
          absl::StrCat("an idmapped mount of ", source,
                       " is not possible (its filesystem or this kernel "
                       "does not support it): mount_setattr(MOUNT_ATTR_IDMAP): ",
                       strerror(err)));
    }
    return ErrnoStatus(err, absl::StrCat("mount_setattr(MOUNT_ATTR_IDMAP) on ", source));
  }
  return tree;
}

absl::Status MakeTreeReadOnly(int tree_fd, const std::string& what) {
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (mount_setattr(tree_fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) != 0) {
    int err = errno;
    if (err == ENOSYS || err == EINVAL || err == EPERM) {
      return absl::FailedPreconditionError(
          absl::StrCat("this kernel cannot make ", what,
                       " read-only recursively: mount_setattr: ", strerror(err)));
    }
    return ErrnoStatus(err, absl::StrCat("mount_setattr(MOUNT_ATTR_RDONLY) on ", what));
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> ReadOnlyClone(const std::string& source) {
  UniqueFd tree(
      open_tree(AT_FDCWD, source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
  if (!tree.valid()) {
    if (errno == ENOSYS) {
      return absl::FailedPreconditionError(
          "this kernel has no open_tree: no recursive read-only mounts");
    }
    return ErrnoStatus(errno, absl::StrCat("open_tree ", source));
  }
  if (absl::Status st = MakeTreeReadOnly(tree.get(), source); !st.ok()) return st;
  return tree;
}

absl::Status ProbeRecursiveReadOnly(const std::string& dir) {
  std::string probe = absl::StrCat(dir, "/rro-probe-XXXXXX");
  if (mkdtemp(probe.data()) == nullptr) return ErrnoStatus(errno, absl::StrCat("mkdtemp in ", dir));
  absl::StatusOr<UniqueFd> tree = ReadOnlyClone(probe);
  rmdir(probe.c_str());
  return tree.status();
}

// Detaches every mount stacked at `path`.
absl::Status DetachAllMounts(const std::string& path) {
  for (int i = 0; i < 16; ++i) {
    if (umount2(path.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) continue;
    if (errno == EINVAL || errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, absl::StrCat("unmounting ", path));
  }
  return absl::InternalError(absl::StrCat(path, " is still mounted after 16 unmounts"));
}

// Removes a (detached) mount point: one directory or file, never a tree.
absl::Status RemoveMountPoint(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, absl::StrCat("stat ", path));
  }
  int r = S_ISDIR(st.st_mode) ? rmdir(path.c_str()) : unlink(path.c_str());
  if (r != 0 && errno != ENOENT) return ErrnoStatus(errno, absl::StrCat("removing ", path));
  return absl::OkStatus();
}

}  // namespace berth
