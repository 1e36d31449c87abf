// The runtime service's stats calls through a real gRPC server over a Unix socket, on a real
// engine (runc, conmon, berth-pause) running a host-network pod in a pod cgroup the test owns.
#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/runtime/v1/api.grpc.pb.h"
#include "runtime/cgroups/mode.h"
#include "runtime/engine.h"
#include "runtime/stats/collector.h"
#include "runtime/stats/scratch_cgroup.h"
#include "server/config.h"
#include "server/runtime_service.h"
#include "storage/state_db.h"
#include "test/util/temp_dir.h"

namespace berth::server {
namespace {

namespace cri = runtime::v1;

// The absolute path of `name` on PATH (conmon wants absolute paths, as berthd resolves them).
std::string OnPath(const std::string& name) {
  const char* path = getenv("PATH");
  std::string dirs = path ? path : "/usr/sbin:/usr/bin:/sbin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return name;
}

// runc creates the pod parent in every hierarchy; ScratchCgroup covers four of them.
void RemoveFromEveryHierarchy(const std::string& rel) {
  DIR* d = opendir(cgroups::kCgroupRoot);
  if (d == nullptr) return;
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    rmdir((std::string(cgroups::kCgroupRoot) + "/" + e->d_name + rel).c_str());
  }
  closedir(d);
}

class StatsRpcsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for runc";
    absl::StatusOr<cgroups::CgroupMode> mode = cgroups::DetectCgroupMode();
    ASSERT_TRUE(mode.ok()) << mode.status();
    if (*mode == cgroups::CgroupMode::kUnified) GTEST_SKIP() << "pod cgroup set up for v1 here";
    pod_parent_ = "/berth-stats-e2e-" + engine::stats::testing::RandomSuffix();
    pod_cg_ = std::make_unique<engine::stats::testing::ScratchCgroup>(pod_parent_);
    ASSERT_EQ(pod_cg_->error(), "");

    absl::StatusOr<std::unique_ptr<storage::StateDB>> db =
        storage::StateDB::Open(dir_.path() + "/state");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    engine::EngineOptions eo;
    eo.root = dir_.path() + "/root";
    eo.state_dir = dir_.path() + "/run";
    char cwd[4096];
    ASSERT_NE(getcwd(cwd, sizeof(cwd)), nullptr);
    eo.pause_binary = std::string(cwd) + "/runtime/pause/berth-pause";
    eo.runtime_path = OnPath("runc");
    eo.conmon_path = OnPath("conmon");
    absl::StatusOr<std::unique_ptr<engine::Engine>> engine =
        engine::Engine::Create(eo, db_.get(), nullptr, nullptr);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);

    engine::stats::StatsOptions so;
    so.refresh_interval = absl::ZeroDuration();
    so.sample_interval = absl::ZeroDuration();  // every call reads (collector_test covers samples)
    stats_ = std::make_unique<engine::stats::StatsCollector>(engine_.get(), so);
    config_.root = eo.root;
    config_.state_dir = eo.state_dir;
    service_ = std::make_unique<RuntimeServiceImpl>(config_, engine_.get(), nullptr, stats_.get());
    grpc::ServerBuilder builder;
    std::string address = "unix://" + dir_.path() + "/s.sock";
    builder.AddListeningPort(address, grpc::InsecureServerCredentials());
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = cri::RuntimeService::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (!pod_id_.empty()) {
      EXPECT_TRUE(engine_->StopPodSandbox(pod_id_).ok());
      EXPECT_TRUE(engine_->RemovePodSandbox(pod_id_).ok());
    }
    if (server_) server_->Shutdown();
    stats_.reset();
    engine_.reset();
    pod_cg_.reset();
    if (!pod_parent_.empty()) RemoveFromEveryHierarchy(pod_parent_);
  }

  std::string RunPod() {
    cri::PodSandboxConfig config;
    config.mutable_metadata()->set_name("stats-pod");
    config.mutable_metadata()->set_namespace_("default");
    config.mutable_metadata()->set_uid("uid-stats-pod");
    (*config.mutable_labels())["app"] = "stats";
    config.mutable_linux()->set_cgroup_parent(pod_parent_);
    config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
        cri::NODE);
    absl::StatusOr<std::string> id = engine_->RunPodSandbox(config, "");
    EXPECT_TRUE(id.ok()) << id.status();
    pod_id_ = id.value_or("");
    return pod_id_;
  }

  test::TempDir dir_;
  std::string pod_parent_, pod_id_;
  std::unique_ptr<engine::stats::testing::ScratchCgroup> pod_cg_;
  std::unique_ptr<storage::StateDB> db_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<engine::stats::StatsCollector> stats_;
  Config config_;
  std::unique_ptr<RuntimeServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<cri::RuntimeService::Stub> stub_;
};

TEST_F(StatsRpcsTest, RunningPodReportsItsCgroupThroughGrpc) {
  std::string id = RunPod();
  ASSERT_FALSE(id.empty());

  grpc::ClientContext ctx;
  cri::PodSandboxStatsRequest req;
  req.set_pod_sandbox_id(id);
  cri::PodSandboxStatsResponse resp;
  grpc::Status st = stub_->PodSandboxStats(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.stats().attributes().id(), id);
  EXPECT_EQ(resp.stats().attributes().metadata().name(), "stats-pod");
  const cri::LinuxPodSandboxStats& l = resp.stats().linux();
  EXPECT_EQ(l.process().process_count().value(), 1u);  // berth-pause
  EXPECT_TRUE(l.cpu().has_usage_core_nano_seconds());
  EXPECT_GT(l.memory().usage_bytes().value(), 0u);
  EXPECT_FALSE(l.has_network());  // host network
  EXPECT_EQ(l.containers_size(), 0);

  grpc::ClientContext list_ctx;
  cri::ListPodSandboxStatsRequest list_req;
  (*list_req.mutable_filter()->mutable_label_selector())["app"] = "stats";
  cri::ListPodSandboxStatsResponse list;
  ASSERT_TRUE(stub_->ListPodSandboxStats(&list_ctx, list_req, &list).ok());
  ASSERT_EQ(list.stats_size(), 1);
  EXPECT_EQ(list.stats(0).attributes().id(), id);

  grpc::ClientContext stream_ctx;
  auto reader = stub_->StreamPodSandboxStats(&stream_ctx, cri::StreamPodSandboxStatsRequest());
  cri::StreamPodSandboxStatsResponse batch;
  int streamed = 0;
  while (reader->Read(&batch)) streamed += batch.pod_sandbox_stats_size();
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(streamed, 1);

  grpc::ClientContext m_ctx;
  cri::ListPodSandboxMetricsResponse metrics;
  ASSERT_TRUE(
      stub_->ListPodSandboxMetrics(&m_ctx, cri::ListPodSandboxMetricsRequest(), &metrics).ok());
  ASSERT_EQ(metrics.pod_metrics_size(), 1);
  EXPECT_EQ(metrics.pod_metrics(0).pod_sandbox_id(), id);
}

TEST_F(StatsRpcsTest, EmptyAndUnknownIdsMapToGrpcCodes) {
  grpc::ClientContext c1;
  cri::ContainerStatsResponse cresp;
  grpc::Status st = stub_->ContainerStats(&c1, cri::ContainerStatsRequest(), &cresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("container_id"), std::string::npos);

  grpc::ClientContext c2;
  cri::ContainerStatsRequest creq;
  creq.set_container_id("0123456789ab");
  st = stub_->ContainerStats(&c2, creq, &cresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext c3;
  cri::PodSandboxStatsResponse presp;
  st = stub_->PodSandboxStats(&c3, cri::PodSandboxStatsRequest(), &presp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("pod_sandbox_id"), std::string::npos);

  grpc::ClientContext c4;
  cri::PodSandboxStatsRequest preq;
  preq.set_pod_sandbox_id("0123456789ab");
  EXPECT_EQ(stub_->PodSandboxStats(&c4, preq, &presp).error_code(), grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext c5;
  cri::ListMetricDescriptorsResponse descs;
  ASSERT_TRUE(stub_->ListMetricDescriptors(&c5, cri::ListMetricDescriptorsRequest(), &descs).ok());
  EXPECT_GE(descs.descriptors_size(), 7);

  grpc::ClientContext c6;
  cri::ListContainerStatsResponse none;
  ASSERT_TRUE(stub_->ListContainerStats(&c6, cri::ListContainerStatsRequest(), &none).ok());
  EXPECT_EQ(none.stats_size(), 0);
}

}  // namespace
}  // namespace berth::server
