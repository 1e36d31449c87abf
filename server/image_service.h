// ImageServiceImpl: CRI ImageService over gRPC, thin handlers in front of images::ImageStore.
#ifndef BERTH_SERVER_IMAGE_SERVICE_H_
#define BERTH_SERVER_IMAGE_SERVICE_H_

#include "proto/berth/v1/records.pb.h"
#include "proto/runtime/v1/api.grpc.pb.h"
#include "absl/time/time.h"
#include "storage/images/fs_usage_cache.h"
#include "storage/images/image_store.h"

namespace berth::server {

class ImageServiceImpl final : public runtime::v1::ImageService::Service {
 public:
  // `store` must outlive the service. ImageFsInfo answers from a walk of the store's directories
  // made in the background every `fs_sample_interval` while it is asked for (zero: a walk in
  // every call; see images::FsUsageCache).
  explicit ImageServiceImpl(images::ImageStore* store,
                            absl::Duration fs_sample_interval = absl::ZeroDuration())
      : store_(store), fs_usage_(store, fs_sample_interval) {}

  grpc::Status ListImages(grpc::ServerContext* ctx, const runtime::v1::ListImagesRequest* req,
                          runtime::v1::ListImagesResponse* resp) override;
  // The same list as ListImages, sent in chunks.
  grpc::Status StreamImages(grpc::ServerContext* ctx, const runtime::v1::StreamImagesRequest* req,
                            grpc::ServerWriter<runtime::v1::StreamImagesResponse>* writer) override;
  // An absent image is OK with no image set, as CRI requires; verbose adds info["info"] (JSON with
  // the image config under "imageSpec").
  grpc::Status ImageStatus(grpc::ServerContext* ctx, const runtime::v1::ImageStatusRequest* req,
                           runtime::v1::ImageStatusResponse* resp) override;
  // Returns the image id as image_ref.
  grpc::Status PullImage(grpc::ServerContext* ctx, const runtime::v1::PullImageRequest* req,
                         runtime::v1::PullImageResponse* resp) override;
  // Absent is OK.
  grpc::Status RemoveImage(grpc::ServerContext* ctx, const runtime::v1::RemoveImageRequest* req,
                           runtime::v1::RemoveImageResponse* resp) override;
  grpc::Status ImageFsInfo(grpc::ServerContext* ctx, const runtime::v1::ImageFsInfoRequest* req,
                           runtime::v1::ImageFsInfoResponse* resp) override;

 private:
  images::ImageStore* const store_;
  images::FsUsageCache fs_usage_;
};

// CRI's view of a stored image: uid when the image user is numeric, username otherwise.
runtime::v1::Image ToCriImage(const v1::Image& image);

}  // namespace berth::server

#endif  // BERTH_SERVER_IMAGE_SERVICE_H_
