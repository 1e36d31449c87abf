// The engine's ImageProvider on storage/images: image lookup and container rootfs mounts.
#ifndef BERTH_RUNTIME_ADAPTERS_IMAGE_STORE_ADAPTER_H_
#define BERTH_RUNTIME_ADAPTERS_IMAGE_STORE_ADAPTER_H_

#include "runtime/providers.h"
#include "storage/images/image_store.h"

namespace berth::runtime {

class ImageStoreAdapter final : public ImageProvider {
 public:
  explicit ImageStoreAdapter(images::ImageStore* store) : store_(store) {}

  absl::StatusOr<berth::v1::Image> ResolveImage(const std::string& ref) override {
    return store_->Get(ref);
  }
  absl::Status MountRootfs(const std::string& container_id, const std::string& image_id,
                           const std::string& target) override {
    return store_->MountRootfs(container_id, image_id, target).status();
  }
  absl::Status UnmountRootfs(const std::string& container_id) override {
    return store_->UnmountRootfs(container_id);
  }
  absl::Status RemoveContainerStorage(const std::string& container_id) override {
    return store_->RemoveContainerStorage(container_id);
  }

 private:
  images::ImageStore* store_;
};

}  // namespace berth::runtime

#endif  // BERTH_RUNTIME_ADAPTERS_IMAGE_STORE_ADAPTER_H_
