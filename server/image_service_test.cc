// ImageService handlers called directly, over a real ImageStore and a loopback docker-registry.
#include "server/image_service.h"

#include <fstream>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "storage/state_db.h"
#include "test/registry/tar_builder.h"
#include "test/registry/test_registry.h"
#include "test/util/temp_dir.h"

namespace berth::server {
namespace {

using runtime::v1::ImageFsInfoRequest;
using runtime::v1::ImageFsInfoResponse;
using runtime::v1::ImageStatusRequest;
using runtime::v1::ImageStatusResponse;
using runtime::v1::ListImagesRequest;
using runtime::v1::ListImagesResponse;
using runtime::v1::PullImageRequest;
using runtime::v1::PullImageResponse;
using runtime::v1::RemoveImageRequest;
using runtime::v1::RemoveImageResponse;

class ImageServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto reg = test::TestRegistry::Start({.username = "bob", .password = "pw"});
    ASSERT_TRUE(reg.ok()) << reg.status();
    registry_ = std::move(*reg);
    test::ImageToPush img;
    img.user = "1000:1000";
    img.layers.push_back(test::MakeLayer({test::File("hello", "hi")}));
    auto pushed = test::PushImage(registry_->host(), "svc/app", {"v1"}, img, "bob", "pw");
    ASSERT_TRUE(pushed.ok()) << pushed.status();
    image_id_ = pushed->config_digest;
    auto db = storage::StateDB::Open(tmp_.path() + "/db", {.sync_writes = false});
    ASSERT_TRUE(db.ok());
    db_ = std::move(*db);
    auto store = images::ImageStore::Open(tmp_.path() + "/store", db_.get(), {});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    service_ = std::make_unique<ImageServiceImpl>(store_.get());
  }
  std::string Ref() const { return registry_->host() + "/svc/app:v1"; }

  test::TempDir tmp_;
  std::unique_ptr<test::TestRegistry> registry_;
  std::unique_ptr<storage::StateDB> db_;
  std::unique_ptr<images::ImageStore> store_;
  std::unique_ptr<ImageServiceImpl> service_;
  std::string image_id_;
};

TEST_F(ImageServiceTest, PullWithAuthFieldThenStatusListFsInfoAndRemove) {
  PullImageRequest pull;
  pull.mutable_image()->set_image(Ref());
  PullImageResponse pulled;
  EXPECT_EQ(service_->PullImage(nullptr, &pull, &pulled).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  pull.mutable_auth()->set_auth(absl::Base64Escape("bob:pw"));
  grpc::Status s = service_->PullImage(nullptr, &pull, &pulled);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(pulled.image_ref(), image_id_);

  ImageStatusRequest sreq;
  sreq.mutable_image()->set_image(Ref());
  sreq.set_verbose(true);
  ImageStatusResponse sresp;
  ASSERT_TRUE(service_->ImageStatus(nullptr, &sreq, &sresp).ok());
  EXPECT_EQ(sresp.image().id(), image_id_);
  EXPECT_EQ(sresp.image().uid().value(), 1000);
  EXPECT_EQ(sresp.image().repo_tags(0), Ref());
  auto info = nlohmann::json::parse(sresp.info().at("info"));
  EXPECT_EQ(info["imageSpec"]["architecture"], "amd64");

  ListImagesRequest lreq;
  ListImagesResponse lresp;
  ASSERT_TRUE(service_->ListImages(nullptr, &lreq, &lresp).ok());
  ASSERT_EQ(lresp.images_size(), 1);
  lreq.mutable_filter()->mutable_image()->set_image("nothing:here");
  lresp.Clear();
  ASSERT_TRUE(service_->ListImages(nullptr, &lreq, &lresp).ok());
  EXPECT_EQ(lresp.images_size(), 0);

  ImageFsInfoRequest freq;
  ImageFsInfoResponse fresp;
  ASSERT_TRUE(service_->ImageFsInfo(nullptr, &freq, &fresp).ok());
  ASSERT_EQ(fresp.image_filesystems_size(), 1);
  // The store's own directory, as containerd names its snapshotter's root: kubelet finds the
  // device and its capacity from it ("/" made it read the root filesystem's).
  EXPECT_EQ(fresp.image_filesystems(0).fs_id().mountpoint(), tmp_.path() + "/store");
  EXPECT_GT(fresp.image_filesystems(0).used_bytes().value(), 0u);
  EXPECT_GT(fresp.image_filesystems(0).inodes_used().value(), 0u);
  EXPECT_GT(fresp.image_filesystems(0).timestamp(), 0);
  // The writable layers (KEP-4191's container filesystem), where container stats say they are.
  ASSERT_EQ(fresp.container_filesystems_size(), 1);
  EXPECT_EQ(fresp.container_filesystems(0).fs_id().mountpoint(), tmp_.path() + "/store/containers");
  EXPECT_GT(fresp.container_filesystems(0).timestamp(), 0);

  RemoveImageRequest rreq;
  rreq.mutable_image()->set_image(image_id_);
  RemoveImageResponse rresp;
  ASSERT_TRUE(service_->RemoveImage(nullptr, &rreq, &rresp).ok());
  ASSERT_TRUE(service_->RemoveImage(nullptr, &rreq, &rresp).ok());
  sresp.Clear();
  ASSERT_TRUE(service_->ImageStatus(nullptr, &sreq, &sresp).ok());
  EXPECT_FALSE(sresp.has_image());
}

TEST_F(ImageServiceTest, BadInputIsInvalidArgumentNamingTheField) {
  PullImageRequest pull;
  PullImageResponse pulled;
  grpc::Status s = service_->PullImage(nullptr, &pull, &pulled);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("image.image"), std::string::npos);
  pull.mutable_image()->set_image("Bad Ref");
  EXPECT_EQ(service_->PullImage(nullptr, &pull, &pulled).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  pull.mutable_image()->set_image(Ref());
  pull.mutable_auth()->set_auth("%%%");
  s = service_->PullImage(nullptr, &pull, &pulled);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("auth"), std::string::npos);
  ImageStatusRequest sreq;
  ImageStatusResponse sresp;
  EXPECT_EQ(service_->ImageStatus(nullptr, &sreq, &sresp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  RemoveImageRequest rreq;
  RemoveImageResponse rresp;
  EXPECT_EQ(service_->RemoveImage(nullptr, &rreq, &rresp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ImageServiceTest, StatusOfAnImageWhoseConfigNestsDeepIsAnswered) {
  PullImageRequest pull;
  pull.mutable_image()->set_image(Ref());
  pull.mutable_auth()->set_auth(absl::Base64Escape("bob:pw"));
  PullImageResponse pulled;
  ASSERT_TRUE(service_->PullImage(nullptr, &pull, &pulled).ok());
  // A record from before pulls checked nesting: its config blob is a million levels deep.
  std::ofstream(tmp_.path() + "/store/blobs/sha256/" + image_id_.substr(7),
                std::ios::binary | std::ios::trunc)
      << std::string(1 << 20, '[') << std::string(1 << 20, ']');
  ImageStatusRequest sreq;
  sreq.mutable_image()->set_image(image_id_);
  sreq.set_verbose(true);
  ImageStatusResponse sresp;
  ASSERT_TRUE(service_->ImageStatus(nullptr, &sreq, &sresp).ok());
  EXPECT_EQ(sresp.image().id(), image_id_);
  auto info = nlohmann::json::parse(sresp.info().at("info"));
  EXPECT_FALSE(info.contains("imageSpec"));
  EXPECT_EQ(info["id"], image_id_);
}

TEST_F(ImageServiceTest, OnlyListFiltersTakeIdPrefixesAndOnlyLongOnes) {
  PullImageRequest pull;
  pull.mutable_image()->set_image(Ref());
  pull.mutable_auth()->set_auth(absl::Base64Escape("bob:pw"));
  PullImageResponse pulled;
  ASSERT_TRUE(service_->PullImage(nullptr, &pull, &pulled).ok());
  const std::string hex = image_id_.substr(7);
  for (const std::string& prefix :
       {hex.substr(0, 2), "sha256:" + hex.substr(0, 2), hex.substr(0, 12)}) {
    ImageStatusRequest sreq;
    sreq.mutable_image()->set_image(prefix);
    ImageStatusResponse sresp;
    ASSERT_TRUE(service_->ImageStatus(nullptr, &sreq, &sresp).ok());
    EXPECT_FALSE(sresp.has_image()) << prefix;
    RemoveImageRequest rreq;
    rreq.mutable_image()->set_image(prefix);
    RemoveImageResponse rresp;
    ASSERT_TRUE(service_->RemoveImage(nullptr, &rreq, &rresp).ok());
  }
  ListImagesRequest lreq;
  ListImagesResponse lresp;
  lreq.mutable_filter()->mutable_image()->set_image(hex.substr(0, 2));
  ASSERT_TRUE(service_->ListImages(nullptr, &lreq, &lresp).ok());
  EXPECT_EQ(lresp.images_size(), 0);
  lreq.mutable_filter()->mutable_image()->set_image(hex.substr(0, 12));
  ASSERT_TRUE(service_->ListImages(nullptr, &lreq, &lresp).ok());
  ASSERT_EQ(lresp.images_size(), 1);
  EXPECT_EQ(lresp.images(0).id(), image_id_);
}

// Writable layers elsewhere (images.containers_dir): the container filesystem is that
// directory, beside the image filesystem (KEP-4191's split image filesystem).
TEST_F(ImageServiceTest, WritableLayersElsewhereAreASeparateContainerFilesystem) {
  auto store = images::ImageStore::Open(tmp_.path() + "/store2", db_.get(), {}, {},
                                        tmp_.path() + "/disk2/containers");
  ASSERT_TRUE(store.ok()) << store.status();
  ImageServiceImpl service(store->get());
  ImageFsInfoRequest req;
  ImageFsInfoResponse resp;
  ASSERT_TRUE(service.ImageFsInfo(nullptr, &req, &resp).ok());
  ASSERT_EQ(resp.image_filesystems_size(), 1);
  EXPECT_EQ(resp.image_filesystems(0).fs_id().mountpoint(), tmp_.path() + "/store2");
  ASSERT_EQ(resp.container_filesystems_size(), 1);
  EXPECT_EQ(resp.container_filesystems(0).fs_id().mountpoint(), tmp_.path() + "/disk2/containers");
  EXPECT_EQ((*store)->WritableLayerDir("c1").value_or(""),
            tmp_.path() + "/disk2/containers/c1/upper");
}

}  // namespace
}  // namespace berth::server
