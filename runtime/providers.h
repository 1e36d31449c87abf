// What the engine needs from the image store and from pod networking, as narrow interfaces.
#ifndef BERTH_RUNTIME_PROVIDERS_H_
#define BERTH_RUNTIME_PROVIDERS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/berth/v1/records.pb.h"
#include "proto/runtime/v1/api.pb.h"

namespace berth::engine {

// A rootfs for a container in a user namespace: the image's files of host ID N show as ID N in
// the namespace (`userns_fd`), and what the container writes lands under the host IDs of the
// namespace's root.
struct RootfsIdmap {
  int userns_fd = -1;
  uint32_t root_uid = 0;
  uint32_t root_gid = 0;
};

class ImageProvider {
 public:
  virtual ~ImageProvider() = default;
  // The stored image a CRI reference names (id, prefix, tag, digest); NotFound if not pulled.
  virtual absl::StatusOr<berth::v1::Image> ResolveImage(const std::string& ref) = 0;
  // Mounts the container's rootfs (image layers plus a private writable layer) at target;
  // idmap null: as the files are on the host.
  virtual absl::Status MountRootfs(const std::string& container_id, const std::string& image_id,
                                   const std::string& target, const RootfsIdmap* idmap) = 0;
  absl::Status MountRootfs(const std::string& container_id, const std::string& image_id,
                           const std::string& target) {
    return MountRootfs(container_id, image_id, target, nullptr);
  }
  // An image volume (KEP-4639): the stored image `image_id`'s files, read-only, at target, as the
  // container's index-th mount. UnmountRootfs undoes it; the image stays in use (not removable)
  // until RemoveContainerStorage.
  virtual absl::Status MountImageVolume(const std::string& container_id, int index,
                                        const std::string& image_id, const std::string& target) = 0;
  // Both idempotent; UnmountRootfs unmounts the container's image volumes too.
  virtual absl::Status UnmountRootfs(const std::string& container_id) = 0;
  virtual absl::Status RemoveContainerStorage(const std::string& container_id) = 0;
  // The directory holding the container's private writable layer (overlayfs upper dir), whether
  // or not it exists yet: checkpoints archive it and restores fill it before the mount.
  virtual absl::StatusOr<std::string> WritableLayerDir(const std::string& container_id) {
    return absl::UnimplementedError("this image provider has no writable layers");
  }
};

struct PodNetworkSpec {
  std::string sandbox_id;
  std::string name;
  std::string namespace_;
  std::string uid;
  std::string netns_path;
  std::vector<runtime::v1::PortMapping> port_mappings;
  // A teardown of a pod whose setup a crashed berthd may have left running (network::
  // PodNetworkRequest::interrupted).
  bool interrupted = false;
};

struct PodNetworkStatus {
  std::vector<std::string> ips;  // primary first
  std::string result;            // the CNI result, cached for teardown after a restart
  std::string config;            // the network config it was made with
};

class NetworkProvider {
 public:
  virtual ~NetworkProvider() = default;
  // Where CreateNetns(sandbox_id) makes the pod's network namespace (known before it exists, so
  // the pod's record names it first).
  virtual std::string NetnsPath(const std::string& sandbox_id) const = 0;
  virtual absl::StatusOr<std::string> CreateNetns(const std::string& sandbox_id) = 0;
  virtual absl::Status RemoveNetns(const std::string& path) = 0;  // absent is fine
  virtual absl::StatusOr<PodNetworkStatus> SetUp(const PodNetworkSpec& spec) = 0;
  virtual absl::Status TearDown(const PodNetworkSpec& spec) = 0;  // idempotent
  virtual absl::Status Ready() = 0;  // OK while a usable CNI config and its plugins exist
};

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_PROVIDERS_H_
