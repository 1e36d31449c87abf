// Image volumes (KEP-4639, kubelet's ImageVolume gate): a CRI Mount with `image` set mounts that
// pulled image's files read-only into the container, optionally only its `image_sub_path`.
#ifndef BERTH_RUNTIME_IMAGE_VOLUMES_H_
#define BERTH_RUNTIME_IMAGE_VOLUMES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/runtime/v1/api.pb.h"
#include "runtime/providers.h"

namespace berth::engine {

// For each mount of `config` that names an image: mounts the image (which must be pulled:
// NotFound naming it otherwise) read-only at <volumes_dir>/<index>, then rewrites the mount into a
// read-only, nosuid, nodev, noexec bind of that directory or of its image_sub_path. Undone with
// the container's rootfs (ImageProvider::UnmountRootfs).
absl::Status PrepareImageVolumes(ImageProvider* images, const std::string& container_id,
                                 const std::string& volumes_dir,
                                 runtime::v1::ContainerConfig* config);

// `sub` inside `root`, every component resolved within it (symlinks too, as if root were /):
// the real path, never outside root. InvalidArgument for an absolute path or "..", NotFound when
// it does not exist. `field` names the request field in errors.
absl::StatusOr<std::string> ResolveInsideImage(const std::string& root, const std::string& sub,
                                               const std::string& field);

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_IMAGE_VOLUMES_H_
