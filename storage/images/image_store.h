// ImageStore: pulled images (records in the StateDB, blobs and unpacked layers on disk) and the
// overlayfs root filesystems containers run on.
//
// Layout under the root directory:
//   blobs/sha256/<hex>          manifests, configs and compressed layers, verified by digest
//   layers/<chain-id hex>/      one unpacked layer each (overlayfs form), renamed in when complete
//   l/<16 hex>                  short symlinks to layers/, keeping overlay mount options small
//   containers/<id>/            upper/ and work/ of a container rootfs, its layer chain and mount
//                               point, and volume-<n>.{image,layers,mountpoint} of its image
//                               volumes (images.containers_dir may put containers/ elsewhere)
//   tmp/                        unpacks in progress and trash; emptied on Open
#ifndef BERTH_STORAGE_IMAGES_IMAGE_STORE_H_
#define BERTH_STORAGE_IMAGES_IMAGE_STORE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "proto/berth/v1/records.pb.h"
#include "storage/images/pull_limits.h"
#include "storage/registry/client.h"
#include "storage/registry/config.h"
#include "storage/state_db.h"

namespace berth::images {

struct DiskUsage {
  uint64_t bytes = 0;  // allocated blocks, hardlinked files counted once
  uint64_t inodes = 0;
};

struct FsUsage {
  DiskUsage usage;
  std::string mountpoint;  // the directory (CRI FilesystemIdentifier.mountpoint)
};

class ImageStore {
 public:
  // Creates the layout under `root` if needed and loads every image record from `db` (which must
  // outlive the store). Leftovers of interrupted pulls are removed.
  static absl::StatusOr<std::unique_ptr<ImageStore>> Open(const std::string& root,
                                                          storage::StateDB* db,
                                                          registry::RegistryConfig config,
                                                          PullLimits limits = {},
                                                          std::string containers_dir = "");
  ~ImageStore();
  ImageStore(const ImageStore&) = delete;
  ImageStore& operator=(const ImageStore&) = delete;

  // Pulls `ref` (anything ParseReference takes) and returns its record. Blobs and layers already
  // present are not fetched again; concurrent pulls share each download. The tag moves to the
  // new image. Blocks on the network. Over a PullLimits limit: InvalidArgument (layer count,
  // config size) or ResourceExhausted (bytes, entries, free space), naming the blob and the limit.
  absl::StatusOr<v1::Image> Pull(const std::string& ref, const registry::Credentials& creds);

  // Looks an image up by full id (64 hex digits, with or without "sha256:"), repo tag
  // ("busybox:1" means docker.io/library/busybox:1) or repo digest; never by an id prefix, which
  // would let a guess of a few digits name another tenant's image (containerd's rule: a full
  // digest or a reference). NotFound when absent.
  absl::StatusOr<v1::Image> Get(const std::string& ref) const;
  // Get, or else a unique id prefix of at least kMinIdPrefix hex digits (what crictl prints):
  // for list filters only.
  static constexpr size_t kMinIdPrefix = 12;
  absl::StatusOr<v1::Image> GetForListFilter(const std::string& ref) const;
  std::vector<v1::Image> List() const;
  // The image's config blob (the OCI image config JSON).
  absl::StatusOr<std::string> ConfigJson(const std::string& image_id) const;

  // Removes the image `ref` names with all its tags (absent is OK), then collects garbage. Layers
  // a container rootfs still uses stay until that container's storage is removed.
  absl::Status Remove(const std::string& ref);
  // Deletes blobs and layers that no image, container rootfs or pull in progress references.
  absl::Status GarbageCollect();

  // For a container in a user namespace: the layers are read through a mount idmapped with
  // `userns_fd`, so a file of host uid N shows as uid N inside that namespace, and the upper
  // directory belongs to the host IDs of the namespace's root, where its writes land.
  struct LayerIdmap {
    int userns_fd = -1;
    uint32_t root_uid = 0;
    uint32_t root_gid = 0;
  };
  // Mounts the image's layers plus a fresh (or kept) per-container upper directory as an
  // overlayfs at `target_dir` (absolute; created when missing). Returns target_dir. Mounting an
  // already mounted container again is a no-op.
  absl::StatusOr<std::string> MountRootfs(const std::string& container_id,
                                          const std::string& image_id,
                                          const std::string& target_dir,
                                          const LayerIdmap* idmap = nullptr);
  // An image volume (KEP-4639): the image's layers as a read-only overlayfs (no upper) at
  // `target_dir`, the container's `index`th mount. The image is in use from now until the
  // container's storage is removed: Remove refuses it and GC keeps its layers. Mounting the same
  // volume again at the same place is a no-op.
  absl::StatusOr<std::string> MountImageVolume(const std::string& container_id, int index,
                                               const std::string& image_id,
                                               const std::string& target_dir);
  // Both idempotent; UnmountRootfs unmounts the container's image volumes too;
  // RemoveContainerStorage unmounts first and releases the layers (and images) for GC.
  absl::Status UnmountRootfs(const std::string& container_id);
  absl::Status RemoveContainerStorage(const std::string& container_id);
  // The container's writable layer (the overlay upper dir), whether or not it exists yet.
  absl::StatusOr<std::string> WritableLayerDir(const std::string& container_id) const;
  // Bytes and inodes of the container's writable layer.
  absl::StatusOr<DiskUsage> WritableLayerUsage(const std::string& container_id) const;

  // The image filesystem as CRI ImageFsInfo reports it: the store's own directory (kubelet finds
  // its device and capacity from it, as containerd reports its snapshotter's root), with the
  // bytes and inodes of blobs and layers.
  absl::StatusOr<FsUsage> ImageFsUsage() const;
  // The container filesystem (KEP-4191): the directory of the containers' writable layers, with
  // their bytes and inodes. Container stats name the same directory as their writable layer's.
  absl::StatusOr<FsUsage> ContainerFsUsage() const;
  std::string ContainersRoot() const;

  const std::string& root() const { return root_; }
  // Blobs actually downloaded since Open (not those found present or shared): for tests/metrics.
  uint64_t blobs_downloaded() const { return blobs_downloaded_.load(); }

  struct PrivateKey {
   private:
    friend class ImageStore;
    PrivateKey() = default;
  };
  ImageStore(PrivateKey, std::string root, std::string containers_root, storage::StateDB* db,
             registry::RegistryConfig config, PullLimits limits);

 private:
  class Pins;
  struct Flight;

  absl::Status Load();
  absl::StatusOr<v1::Image> GetLocked(const std::string& ref, bool allow_id_prefix = false) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void IndexLocked(const v1::Image& image) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnindexLocked(const v1::Image& image) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs fn once for concurrent callers with the same key; they all get its status.
  absl::Status Once(const std::string& key, const std::function<absl::Status()>& fn);
  absl::Status EnsureBlob(const registry::Reference& ref, const registry::Descriptor& blob,
                          const registry::Credentials& creds);
  // `image_bytes_left` is the pull's uncompressed-bytes budget, shared by its layers.
  absl::Status EnsureLayer(const registry::Reference& ref, const registry::Descriptor& blob,
                           const std::string& diff_id, const std::string& chain_id,
                           const registry::Credentials& creds,
                           std::atomic<int64_t>* image_bytes_left);
  // ResourceExhausted when writing `bytes` more would leave less than min_free_bytes free.
  absl::Status CheckFreeSpace(int64_t bytes, const std::string& what) const;
  std::string BlobPath(const std::string& digest) const;
  std::string LayerPath(const std::string& chain_id) const;
  std::string ContainerDir(const std::string& container_id) const;
  // The overlay lowerdir entries (top first, relative to root_) of the image's layers, checked
  // present; FailedPrecondition naming a missing layer.
  absl::StatusOr<std::vector<std::string>> LowersLocked(const v1::Image& image) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Containers with an image volume of image_id.
  std::vector<std::string> VolumeUsersLocked(const std::string& image_id) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const std::string root_;
  const std::string containers_root_;  // the writable layers: <root>/containers by default
  storage::StateDB* const db_;
  registry::RegistryClient client_;
  const int max_parallel_downloads_;
  const PullLimits limits_;
  std::atomic<uint64_t> blobs_downloaded_{0};

  mutable absl::Mutex mu_;
  std::map<std::string, v1::Image> images_ ABSL_GUARDED_BY(mu_);  // by id
  absl::flat_hash_map<std::string, std::string> by_tag_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> by_digest_ ABSL_GUARDED_BY(mu_);
  // Digests and chain ids a pull in progress needs: GC leaves them alone.
  absl::flat_hash_map<std::string, int> pins_ ABSL_GUARDED_BY(mu_);

  absl::Mutex flights_mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Flight>> flights_ ABSL_GUARDED_BY(flights_mu_);

  absl::Mutex slots_mu_;
  int free_download_slots_ ABSL_GUARDED_BY(slots_mu_);
};

}  // namespace berth::images

#endif  // BERTH_STORAGE_IMAGES_IMAGE_STORE_H_
