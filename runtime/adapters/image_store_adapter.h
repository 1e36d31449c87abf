// The engine's ImageProvider on storage/images: image lookup and container rootfs mounts.
#ifndef BERTH_RUNTIME_ADAPTERS_IMAGE_STORE_ADAPTER_H_
#define BERTH_RUNTIME_ADAPTERS_IMAGE_STORE_ADAPTER_H_

#include "runtime/providers.h"
#include "storage/images/image_store.h"
#include "util/crash_point.h"

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
    images::ImageStore::LayerIdmap layers;
    if (idmap != nullptr) layers = {idmap->userns_fd, idmap->root_uid, idmap->root_gid};
    return AfterStep(
        store_->MountRootfs(container_id, image_id, target, idmap == nullptr ? nullptr : &layers)
            .status(),
        "rootfs", "mount");
  }
  absl::Status MountImageVolume(const std::string& container_id, int index,
                                const std::string& image_id, const std::string& target) override {
    return AfterStep(store_->MountImageVolume(container_id, index, image_id, target).status(),
                     "image-volume", "mount");
  }
  absl::Status UnmountRootfs(const std::string& container_id) override {
    return AfterStep(store_->UnmountRootfs(container_id), "rootfs", "unmount");
  }
  absl::Status RemoveContainerStorage(const std::string& container_id) override {
    return AfterStep(store_->RemoveContainerStorage(container_id), "rootfs", "remove");
  }
  absl::StatusOr<std::string> WritableLayerDir(const std::string& container_id) override {
    return store_->WritableLayerDir(container_id);
  }

 private:
  images::ImageStore* store_;
};

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_ADAPTERS_IMAGE_STORE_ADAPTER_H_
