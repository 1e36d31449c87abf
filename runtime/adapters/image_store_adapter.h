// The engine's ImageProvider on storage/images: image lookup and container rootfs mounts.
#ifndef BERTH_RUNTIME_ADAPTERS_IMAGE_STORE_ADAPTER_H_
#define BERTH_RUNTIME_ADAPTERS_IMAGE_STORE_ADAPTER_H_

#include "runtime/providers.h"
#include "storage/images/image_store.h"

namespace berth::engine {

class ImageStoreAdapter final : public ImageProvider {
 public:
  explicit ImageStoreAdapter(images::ImageStore* store) : store_(store) {}

  absl::StatusOr<berth::v1::Image> ResolveImage(const std::string& ref) override {
    return store_->Get(ref);
  }
  using ImageProvider::MountRootfs;
  absl::Status MountRootfs(const std::string& container_id, const std::string& image_id,
                           const std::string& target, const RootfsIdmap* idmap) override {
    if (idmap == nullptr) return store_->MountRootfs(container_id, image_id, target).status();
    images::ImageStore::LayerIdmap layers{idmap->userns_fd, idmap->root_uid, idmap->root_gid};
    return store_->MountRootfs(container_id, image_id, target, &layers).status();
  }
  absl::Status UnmountRootfs(const std::string& container_id) override {
    return store_->UnmountRootfs(container_id);
  }
  absl::Status RemoveContainerStorage(const std::string& container_id) override {
    return store_->RemoveContainerStorage(container_id);
  }
  absl::StatusOr<std::string> WritableLayerDir(const std::string& container_id) override {
    return store_->WritableLayerDir(container_id);
  }

 private:
  images::ImageStore* store_;
};

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_ADAPTERS_IMAGE_STORE_ADAPTER_H_
