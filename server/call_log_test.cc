// DescribeRequest names what a failed CRI call was about.
#include "server/call_log.h"

#include "gtest/gtest.h"
#include "proto/runtime/v1/api.pb.h"

namespace berth::server {
namespace {

namespace cri = runtime::v1;

TEST(CallLogTest, NamesIdsImagesAndPodNames) {
  cri::StopContainerRequest stop;
  stop.set_container_id("abc");
  EXPECT_EQ(DescribeRequest(stop), "container_id=abc");
  cri::CreateContainerRequest create;
  create.set_pod_sandbox_id("pod1");
  create.mutable_config()->mutable_metadata()->set_name("web");
  create.mutable_config()->mutable_image()->set_image("nginx:1");
  EXPECT_EQ(DescribeRequest(create), "pod_sandbox_id=pod1 name=web image=nginx:1");
  cri::RunPodSandboxRequest run;
  run.mutable_config()->mutable_metadata()->set_name("p");
  run.mutable_config()->mutable_metadata()->set_namespace_("ns");
  EXPECT_EQ(DescribeRequest(run), "name=p namespace=ns");
  cri::PullImageRequest pull;
  pull.mutable_image()->set_image("busybox");
  EXPECT_EQ(DescribeRequest(pull), "image=busybox");
  cri::ListContainersRequest list;
  EXPECT_EQ(DescribeRequest(list), "");
  cri::ExecSyncRequest exec;
  exec.set_container_id(std::string(300, 'x'));
  EXPECT_LT(DescribeRequest(exec).size(), 200u);
}

}  // namespace
}  // namespace berth::server
