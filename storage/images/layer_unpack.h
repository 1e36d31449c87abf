// Unpacking one image layer (tar, tar+gzip, tar+zstd) into its own directory, in overlayfs form.
#ifndef BERTH_STORAGE_IMAGES_LAYER_UNPACK_H_
#define BERTH_STORAGE_IMAGES_LAYER_UNPACK_H_

#include <string>

#include "absl/status/statusor.h"

namespace berth::images {

// Unpacks `archive_path` into `dest_dir` (an existing, empty directory) and returns the digest
// of the uncompressed tar stream (the layer's diff ID).
//
// Ownership, modes, times, xattrs (except trusted.overlay.*), hardlinks, symlinks and device
// nodes are kept. OCI whiteouts become overlayfs ones: ".wh.NAME" a 0/0 character device NAME,
// ".wh..wh..opq" the xattr trusted.overlay.opaque=y on its directory.
//
// Nothing is ever written outside dest_dir: the work runs on a thread whose root is chroot'ed to
// dest_dir, leading '/' are stripped, and an entry with a ".." component, a path through a
// symlink, or a hardlink through one fails the whole layer with InvalidArgument (the caller
// discards dest_dir). Must run as root (chroot, chown, mknod).
absl::StatusOr<std::string> UnpackLayer(const std::string& archive_path,
                                        const std::string& dest_dir);

}  // namespace berth::images

#endif  // BERTH_STORAGE_IMAGES_LAYER_UNPACK_H_
