// CRI ImageService handlers: validate, call the ImageStore, convert. No logic of their own.
#include "server/image_service.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"
#include "server/grpc_status.h"
#include "storage/registry/auth.h"
#include "storage/registry/bounded_json.h"
#include "storage/registry/config.h"

namespace berth::server {
namespace {

std::vector<v1::Image> Filtered(images::ImageStore* store, const runtime::v1::ImageFilter& filter,
                                absl::Status* status) {
  if (!filter.has_image() || filter.image().image().empty()) return store->List();
  // Only a list filter takes an id prefix (crictl images <id prefix>); it must be long enough
  // that it is not a guess at someone else's image.
  auto img = store->GetForListFilter(filter.image().image());
  if (img.ok()) return {*img};
  if (!absl::IsNotFound(img.status())) *status = img.status();
  return {};
}

}  // namespace

runtime::v1::Image ToCriImage(const v1::Image& image) {
  runtime::v1::Image out;
  out.set_id(image.id());
  for (const auto& t : image.repo_tags()) out.add_repo_tags(t);
  for (const auto& d : image.repo_digests()) out.add_repo_digests(d);
  out.set_size(image.size());
  out.set_pinned(image.pinned());
  out.mutable_spec()->set_image(image.id());
  std::string user = image.config().user();
  user = user.substr(0, user.find(':'));
  int64_t uid;
  if (!user.empty() && absl::SimpleAtoi(user, &uid)) {
    out.mutable_uid()->set_value(uid);
  } else {
    out.set_username(user);
  }
  return out;
}

grpc::Status ImageServiceImpl::ListImages(grpc::ServerContext*,
                                          const runtime::v1::ListImagesRequest* req,
                                          runtime::v1::ListImagesResponse* resp) {
  absl::Status st;
  for (const auto& img : Filtered(store_, req->filter(), &st))
    *resp->add_images() = ToCriImage(img);
  return ToGrpc(st);
}

grpc::Status ImageServiceImpl::StreamImages(
    grpc::ServerContext*, const runtime::v1::StreamImagesRequest* req,
    grpc::ServerWriter<runtime::v1::StreamImagesResponse>* writer) {
  absl::Status st;
  std::vector<v1::Image> list = Filtered(store_, req->filter(), &st);
  if (!st.ok()) return ToGrpc(st);
  return WriteInBatches(list, writer,
                        [](const v1::Image& img, runtime::v1::StreamImagesResponse* batch) {
                          return &(*batch->add_images() = ToCriImage(img));
                        });
}

grpc::Status ImageServiceImpl::ImageStatus(grpc::ServerContext*,
                                           const runtime::v1::ImageStatusRequest* req,
                                           runtime::v1::ImageStatusResponse* resp) {
  if (req->image().image().empty()) return InvalidArgument("image.image is required");
  auto img = store_->Get(req->image().image());
  if (absl::IsNotFound(img.status())) return grpc::Status::OK;
  if (!img.ok()) return ToGrpc(img.status());
  *resp->mutable_image() = ToCriImage(*img);
  if (req->verbose()) {
    nlohmann::json info = {
        {"id", img->id()},
        {"manifestDigest", img->manifest_digest()},
        {"chainIDs", std::vector<std::string>(img->chain_ids().begin(), img->chain_ids().end())}};
    // Bounded: dump() recurses per level, and a record pulled before pulls checked the depth may
    // name a config nested deep enough to overflow the stack. Moved in, never copied.
    auto config = store_->ConfigJson(img->id());
    if (config.ok()) {
      auto parsed = registry::ParseBoundedJson(*config, absl::StrCat("image config ", img->id()));
      if (parsed.ok()) {
        info["imageSpec"] = std::move(*parsed);
      } else {
        LOG(WARNING) << "ImageStatus " << img->id() << ": " << parsed.status();
      }
    }
    (*resp->mutable_info())["info"] =
        info.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return grpc::Status::OK;
}

grpc::Status ImageServiceImpl::PullImage(grpc::ServerContext*,
                                         const runtime::v1::PullImageRequest* req,
                                         runtime::v1::PullImageResponse* resp) {
  if (req->image().image().empty()) return InvalidArgument("image.image is required");
  registry::Credentials creds;
  const runtime::v1::AuthConfig& a = req->auth();
  creds.username = a.username();
  creds.password = a.password();
  creds.identity_token = a.identity_token();
  creds.registry_token = a.registry_token();
  creds.server_address = a.server_address();
  if (absl::Status s = registry::DecodeAuthField(a.auth(), &creds); !s.ok()) {
    return InvalidArgument(std::string(s.message()));
  }
  auto img = store_->Pull(req->image().image(), creds);
  if (!img.ok()) {
    return ToGrpc(img.status());
  }
  resp->set_image_ref(img->id());
  return grpc::Status::OK;
}

grpc::Status ImageServiceImpl::RemoveImage(grpc::ServerContext*,
                                           const runtime::v1::RemoveImageRequest* req,
                                           runtime::v1::RemoveImageResponse*) {
  if (req->image().image().empty()) return InvalidArgument("image.image is required");
  return ToGrpc(store_->Remove(req->image().image()));
}

grpc::Status ImageServiceImpl::ImageFsInfo(grpc::ServerContext*,
                                           const runtime::v1::ImageFsInfoRequest*,
                                           runtime::v1::ImageFsInfoResponse* resp) {
  absl::StatusOr<images::FsInfo> info = fs_usage_.Get();
  if (!info.ok()) return ToGrpc(info.status());
  const int64_t taken = info->taken_ns;
  auto fill = [taken](const images::FsUsage& u, runtime::v1::FilesystemUsage* fs) {
    fs->set_timestamp(taken);
    fs->mutable_fs_id()->set_mountpoint(u.mountpoint);
    fs->mutable_used_bytes()->set_value(u.usage.bytes);
    fs->mutable_inodes_used()->set_value(u.usage.inodes);
  };
  fill(info->image, resp->add_image_filesystems());
  fill(info->containers, resp->add_container_filesystems());
  return grpc::Status::OK;
}

}  // namespace berth::server
