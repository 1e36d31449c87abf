// The RPC interceptor on a real gRPC server over a Unix socket: calls are counted by method and
// code, and each one lands in the latency histogram.
#include "server/metrics/rpc_interceptor.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/runtime/v1/api.grpc.pb.h"
#include "server/metrics/registry.h"
#include "test/util/temp_dir.h"

namespace berth::metrics {
namespace {

namespace cri = runtime::v1;

// Answers Version (OK, or InvalidArgument for a version it does not speak); every other method
// keeps the generated base class's UNIMPLEMENTED.
class VersionOnly final : public cri::RuntimeService::Service {
  grpc::Status Version(grpc::ServerContext*, const cri::VersionRequest* req,
                       cri::VersionResponse* resp) override {
    if (!req->version().empty() && req->version() != "v1") {
      return grpc::Status(grpc::INVALID_ARGUMENT, "only v1");
    }
    resp->set_runtime_name("test");
    return grpc::Status::OK;
  }
};

class RpcInterceptorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string addr = absl::StrCat("unix://", dir_.path(), "/grpc.sock");
    grpc::ServerBuilder b;
    b.AddListeningPort(addr, grpc::InsecureServerCredentials());
    b.RegisterService(&service_);
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(RpcMetricsInterceptorFactory(&registry_));
    b.experimental().SetInterceptorCreators(std::move(creators));
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ =
        cri::RuntimeService::NewStub(grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  grpc::StatusCode CallVersion(const std::string& version) {
    grpc::ClientContext ctx;
    cri::VersionRequest req;
    req.set_version(version);
    cri::VersionResponse resp;
    return stub_->Version(&ctx, req, &resp).error_code();
  }

  test::TempDir dir_;
  Registry registry_;
  VersionOnly service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<cri::RuntimeService::Stub> stub_;
};

TEST_F(RpcInterceptorTest, CountsEachCallByMethodAndCode) {
  ASSERT_EQ(CallVersion("v1"), grpc::OK);
  ASSERT_EQ(CallVersion(""), grpc::OK);
  ASSERT_EQ(CallVersion("v1alpha2"), grpc::INVALID_ARGUMENT);
  grpc::ClientContext ctx;
  cri::StatusResponse status_resp;
  ASSERT_EQ(stub_->Status(&ctx, cri::StatusRequest(), &status_resp).error_code(),
            grpc::UNIMPLEMENTED);

  std::string out = registry_.Render();
  EXPECT_TRUE(
      absl::StrContains(out, "berth_cri_requests_total{method=\"Version\",code=\"OK\"} 2\n"))
      << out;
  EXPECT_TRUE(absl::StrContains(
      out, "berth_cri_requests_total{method=\"Version\",code=\"InvalidArgument\"} 1\n"))
      << out;
  EXPECT_TRUE(absl::StrContains(
      out, "berth_cri_requests_total{method=\"Status\",code=\"Unimplemented\"} 1\n"))
      << out;
  // Latency is recorded whatever the outcome, once per call.
  EXPECT_TRUE(
      absl::StrContains(out, "berth_cri_request_duration_seconds_count{method=\"Version\"} 3\n"))
      << out;
  EXPECT_TRUE(
      absl::StrContains(out, "berth_cri_request_duration_seconds_count{method=\"Status\"} 1\n"))
      << out;
  EXPECT_TRUE(absl::StrContains(
      out, "berth_cri_request_duration_seconds_bucket{method=\"Version\",le=\"+Inf\"} 3\n"))
      << out;
  // Methods nobody called have no series at all.
  EXPECT_FALSE(absl::StrContains(out, "RunPodSandbox")) << out;
}

}  // namespace
}  // namespace berth::metrics
