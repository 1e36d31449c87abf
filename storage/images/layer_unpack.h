// Unpacking one image layer (tar, tar+gzip, tar+zstd) into its own directory, in overlayfs form.
#ifndef BERTH_STORAGE_IMAGES_LAYER_UNPACK_H_
#define BERTH_STORAGE_IMAGES_LAYER_UNPACK_H_

#include <atomic>
#include <cstdint>
#include <limits>
#include <string>

#include "absl/status/statusor.h"

namespace berth::images {

// What one layer may cost. Going over a limit fails the layer with ResourceExhausted, in a
// message naming the berth.toml key the limit comes from.
struct UnpackLimits {
  // Uncompressed bytes: of the tar stream, and of the sizes its entries declare (so a sparse
  // entry cannot promise more than the layer may hold).
  uint64_t max_bytes = std::numeric_limits<uint64_t>::max();
  uint64_t max_entries = std::numeric_limits<uint64_t>::max();
  // Shared by the layers of one pull: each uncompressed byte is taken from it (the image budget).
  std::atomic<int64_t>* image_bytes_left = nullptr;
  int64_t image_max_bytes = 0;  // what image_bytes_left started at, for the message
  // The filesystem holding dest_dir keeps at least this many bytes free; checked as bytes flow.
  uint64_t min_free_bytes = 0;
};

// Unpacks `archive_path` into `dest_dir` (an existing, empty directory) and returns the digest
// of the uncompressed tar stream (the layer's diff ID).
//
// Ownership, modes, times, xattrs (except trusted.overlay.*), hardlinks, symlinks and device
// nodes are kept. OCI whiteouts become overlayfs ones: ".wh.NAME" a 0/0 character device NAME,
// ".wh..wh..opq" the xattr trusted.overlay.opaque=y on its directory.
//
// Nothing is ever written outside dest_dir: the work runs on a thread whose root is chroot'ed to
// dest_dir, leading '/' are stripped, and an entry with a ".." component, a path through a
// symlink, a hardlink through one, a path longer than PATH_MAX or a component longer than
// NAME_MAX fails the whole layer with InvalidArgument (the caller discards dest_dir). Must run as
// root (chroot, chown, mknod).
absl::StatusOr<std::string> UnpackLayer(const std::string& archive_path,
                                        const std::string& dest_dir,
                                        const UnpackLimits& limits = {});

}  // namespace berth::images

#endif  // BERTH_STORAGE_IMAGES_LAYER_UNPACK_H_
