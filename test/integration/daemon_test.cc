// berthd as a process: serves Version and Status, answers UNIMPLEMENTED honestly, guards its
// socket and state, and exits cleanly on SIGTERM.
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

#include "gtest/gtest.h"
#include "util/fs.h"
#include "util/subprocess.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "test/util/berthd.h"
#include "test/util/temp_dir.h"

namespace berth::test {
namespace {

namespace cri = runtime::v1;

TEST(DaemonTest, VersionStatusAndCleanShutdown) {
  TempDir dir;
  Berthd berthd(dir.path());
  ASSERT_TRUE(berthd.Start().ok()) << berthd.log();

  struct stat st;
  ASSERT_EQ(stat(berthd.socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660);

  cri::VersionResponse v;
  ASSERT_TRUE(berthd.runtime().Version(Ctx().get(), cri::VersionRequest(), &v).ok());
  EXPECT_EQ(v.runtime_name(), "berth");
  EXPECT_EQ(v.runtime_api_version(), "v1");
  EXPECT_FALSE(v.runtime_version().empty());

  cri::StatusRequest sreq;
  sreq.set_verbose(true);
  cri::StatusResponse s;
  ASSERT_TRUE(berthd.runtime().Status(Ctx().get(), sreq, &s).ok());
  ASSERT_EQ(s.status().conditions_size(), 2);
  EXPECT_EQ(s.status().conditions(0).type(), "RuntimeReady");
  EXPECT_TRUE(s.status().conditions(0).status());
  EXPECT_EQ(s.status().conditions(1).type(), "NetworkReady");
  if (!s.status().conditions(1).status()) {
    EXPECT_FALSE(s.status().conditions(1).reason().empty());
  }
  ASSERT_TRUE(s.info().count("config"));
  EXPECT_NE(s.info().at("config").find(berthd.root()), std::string::npos);

  absl::StatusOr<int> exit = berthd.Stop();
  ASSERT_TRUE(exit.ok());
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << berthd.log();
  EXPECT_NE(stat(berthd.socket().c_str(), &st), 0) << "socket left behind";
}

TEST(DaemonTest, UnimplementedCallsSayUnimplemented) {
  TempDir dir;
  Berthd berthd(dir.path());
  ASSERT_TRUE(berthd.Start().ok()) << berthd.log();
  cri::RestorePodRequest req;
  req.set_checkpoint_path("/nonexistent");
  cri::RestorePodResponse resp;
  grpc::Status st = berthd.runtime().RestorePod(Ctx().get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  // Checkpointing is implemented but needs CRIU, which this host lacks: a clear precondition.
  cri::CheckpointContainerRequest creq;
  creq.set_container_id("x");
  creq.set_location("relative.tar");
  cri::CheckpointContainerResponse cresp;
  EXPECT_EQ(berthd.runtime().CheckpointContainer(Ctx().get(), creq, &cresp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(DaemonTest, BadInputIsInvalidArgumentNamingTheField) {
  TempDir dir;
  Berthd berthd(dir.path());
  ASSERT_TRUE(berthd.Start().ok()) << berthd.log();
  cri::RunPodSandboxRequest req;
  req.mutable_config()->mutable_metadata()->set_name("p");
  cri::RunPodSandboxResponse resp;
  grpc::Status st = berthd.runtime().RunPodSandbox(Ctx().get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("namespace"), std::string::npos) << st.error_message();

  cri::ContainerStatusRequest creq;
  cri::ContainerStatusResponse cresp;
  st = berthd.runtime().ContainerStatus(Ctx().get(), creq, &cresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  creq.set_container_id("0123456789");
  st = berthd.runtime().ContainerStatus(Ctx().get(), creq, &cresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  // What a value must be is the engine's to say, before it looks the container up.
  cri::ExecSyncRequest ereq;
  ereq.set_container_id("0123456789");
  cri::ExecSyncResponse eresp;
  st = berthd.runtime().ExecSync(Ctx().get(), ereq, &eresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("cmd"), std::string::npos) << st.error_message();
  cri::CheckpointContainerRequest kreq;
  kreq.set_container_id("0123456789");
  cri::CheckpointContainerResponse kresp;
  st = berthd.runtime().CheckpointContainer(Ctx().get(), kreq, &kresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("location"), std::string::npos) << st.error_message();
  kreq.set_location("relative.tar");
  st = berthd.runtime().CheckpointContainer(Ctx().get(), kreq, &kresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("absolute"), std::string::npos) << st.error_message();
  // Still alive.
  cri::VersionResponse v;
  EXPECT_TRUE(berthd.runtime().Version(Ctx().get(), cri::VersionRequest(), &v).ok());
}

TEST(DaemonTest, SecondDaemonOnTheSameSocketIsRefused) {
  TempDir dir;
  Berthd first(dir.path());
  ASSERT_TRUE(first.Start().ok()) << first.log();
  Berthd second(dir.path());
  // Start may see the first daemon answer on the shared socket; the second must exit anyway.
  absl::Status st = second.Start();
  if (st.ok()) {
    absl::StatusOr<int> exit = second.WaitForExit(10);
    ASSERT_TRUE(exit.ok()) << "a second berthd kept running on the same socket";
    EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) != 0);
  }
  EXPECT_NE(second.log().find("already running"), std::string::npos) << second.log();
  // The first one still serves.
  cri::VersionResponse v;
  EXPECT_TRUE(first.runtime().Version(Ctx().get(), cri::VersionRequest(), &v).ok());
}

TEST(DaemonTest, StaleSocketFromACrashIsReplaced) {
  TempDir dir;
  {
    Berthd crashed(dir.path());
    ASSERT_TRUE(crashed.Start().ok());
    crashed.Kill();
  }
  Berthd berthd(dir.path());
  ASSERT_TRUE(berthd.Start().ok()) << berthd.log();
}

TEST(DaemonTest, UnknownConfigKeyIsAStartupError) {
  TempDir dir;
  Berthd berthd(dir.path());
  absl::Status st = berthd.Start({.config_toml = "[runtime]\nno_such_key = 1\n"});
  EXPECT_FALSE(st.ok());
  EXPECT_NE(berthd.log().find("runtime.no_such_key"), std::string::npos) << berthd.log();
}

// `berthd check`: what a node lacks fails it with a fix; optional features (CRIU, user
// namespaces, hugetlb, swap) are reported without failing it.
TEST(DaemonTest, CheckReportsMissingPartsAndOptionalFeatures) {
  TempDir dir;
  ASSERT_TRUE(MakeDirs(dir.path() + "/root").ok());
  ASSERT_TRUE(MakeDirs(dir.path() + "/cni").ok());
  ASSERT_TRUE(
      WriteFileAtomic(dir.path() + "/cni/10-lo.conflist",
                      R"({"cniVersion":"1.0.0","name":"lo","plugins":[{"type":"loopback"}]})")
          .ok());
  auto config = [&](const std::string& runc) {
    const std::string path = dir.path() + "/berth.toml";
    EXPECT_TRUE(
        WriteFileAtomic(
            path, absl::StrCat("root = \"", dir.path(), "/root\"\n[runtime]\n", "runtime_path = \"",
                               runc, "\"\n", "criu_path = \"", dir.path(), "/no-criu\"\n",
                               "[network]\ncni_conf_dir = \"", dir.path(), "/cni\"\n"))
            .ok());
    return path;
  };
  absl::StatusOr<RunResult> good =
      RunProcess({"server/berthd", "check", "--config", config("runc")});
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good->exit_code, 0) << good->out << good->err;
  EXPECT_NE(good->out.find("ok      OCI runtime: "), std::string::npos) << good->out;
  EXPECT_NE(good->out.find("off     checkpoint/restore"), std::string::npos) << good->out;
  EXPECT_NE(good->out.find("pods in user namespaces"), std::string::npos) << good->out;
  EXPECT_NE(good->out.find("hugetlb limits"), std::string::npos) << good->out;
  EXPECT_NE(good->out.find("swap limits"), std::string::npos) << good->out;

  absl::StatusOr<RunResult> bad =
      RunProcess({"server/berthd", "check", "--config", config(dir.path() + "/no-runc")});
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->exit_code, 1) << bad->out;
  EXPECT_NE(bad->out.find("MISSING OCI runtime"), std::string::npos) << bad->out;
  EXPECT_NE(bad->out.find("apt-get install runc"), std::string::npos) << bad->out;
}

TEST(DaemonTest, EventStreamShowsAPodsInfraContainerStartAndStop) {
  TempDir dir;
  ASSERT_TRUE(
      WriteFileAtomic(dir.path() + "/10-lo.conflist",
                      R"({"cniVersion":"1.0.0","name":"lo","plugins":[{"type":"loopback"}]})")
          .ok());
  Berthd berthd(dir.path() + "/d");
  ASSERT_TRUE(
      berthd.Start({.config_toml = "[network]\ncni_conf_dir = \"" + dir.path() + "\"\n"}).ok())
      << berthd.log();
  grpc::ClientContext ectx;
  std::unique_ptr<grpc::ClientReader<cri::ContainerEventResponse>> events =
      berthd.runtime().GetContainerEvents(&ectx, cri::GetEventsRequest());
  // Let the stream subscribe before the pod starts.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  cri::RunPodSandboxRequest req;
  auto* md = req.mutable_config()->mutable_metadata();
  md->set_name("ev");
  md->set_namespace_("default");
  md->set_uid("uid-ev");
  cri::RunPodSandboxResponse resp;
  grpc::Status st = berthd.runtime().RunPodSandbox(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message() << berthd.log();
  cri::StopPodSandboxRequest stop;
  stop.set_pod_sandbox_id(resp.pod_sandbox_id());
  cri::StopPodSandboxResponse stop_resp;
  ASSERT_TRUE(berthd.runtime().StopPodSandbox(Ctx().get(), stop, &stop_resp).ok());

  std::vector<cri::ContainerEventType> seen;
  cri::ContainerEventResponse ev;
  while (seen.size() < 3 && events->Read(&ev)) {
    EXPECT_EQ(ev.container_id(), resp.pod_sandbox_id());
    EXPECT_EQ(ev.pod_sandbox_status().metadata().name(), "ev");
    seen.push_back(ev.container_event_type());
  }
  EXPECT_EQ(seen, (std::vector<cri::ContainerEventType>{cri::CONTAINER_CREATED_EVENT,
                                                        cri::CONTAINER_STARTED_EVENT,
                                                        cri::CONTAINER_STOPPED_EVENT}));
  ectx.TryCancel();
  cri::RemovePodSandboxRequest rm;
  rm.set_pod_sandbox_id(resp.pod_sandbox_id());
  cri::RemovePodSandboxResponse rm_resp;
  EXPECT_TRUE(berthd.runtime().RemovePodSandbox(Ctx().get(), rm, &rm_resp).ok());
}

TEST(DaemonTest, MetricsEndpointCountsCriCallsAndPods) {
  TempDir dir;
  ASSERT_TRUE(
      WriteFileAtomic(dir.path() + "/10-lo.conflist",
                      R"({"cniVersion":"1.0.0","name":"lo","plugins":[{"type":"loopback"}]})")
          .ok());
  Berthd berthd(dir.path() + "/d");
  ASSERT_TRUE(berthd
                  .Start({.config_toml =
                              "[metrics]\naddress = \"127.0.0.1:0\"\n[network]\ncni_conf_dir = \"" +
                              dir.path() + "\"\n"})
                  .ok())
      << berthd.log();
  std::string log = berthd.log();
  size_t at = log.find("metrics on http://127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << log;
  std::string url = log.substr(at + strlen("metrics on "));
  url = url.substr(0, url.find('\n'));
  auto scrape = [&] { return RunProcess({"wget", "-qO-", url})->out; };
  cri::VersionResponse v;
  ASSERT_TRUE(berthd.runtime().Version(Ctx().get(), cri::VersionRequest(), &v).ok());
  EXPECT_TRUE(
      absl::StrContains(scrape(), "berth_cri_requests_total{method=\"Version\",code=\"OK\"}"));
  EXPECT_TRUE(absl::StrContains(scrape(), "berth_pods{state=\"ready\"} 0"));
  cri::RunPodSandboxRequest req;
  auto* md = req.mutable_config()->mutable_metadata();
  md->set_name("m");
  md->set_namespace_("default");
  md->set_uid("uid-m");
  cri::RunPodSandboxResponse resp;
  ASSERT_TRUE(berthd.runtime().RunPodSandbox(Ctx().get(), req, &resp).ok());
  std::string after = scrape();
  EXPECT_TRUE(absl::StrContains(after, "berth_pods{state=\"ready\"} 1")) << after;
  EXPECT_TRUE(absl::StrContains(after, "berth_cni_duration_seconds_count{operation=\"ADD\"} 1"))
      << after;
  EXPECT_TRUE(absl::StrContains(
      after, "berth_cri_request_duration_seconds_count{method=\"RunPodSandbox\"} 1"))
      << after;
  cri::RemovePodSandboxRequest rm;
  rm.set_pod_sandbox_id(resp.pod_sandbox_id());
  cri::RemovePodSandboxResponse rm_resp;
  EXPECT_TRUE(berthd.runtime().RemovePodSandbox(Ctx().get(), rm, &rm_resp).ok());
}

}  // namespace
}  // namespace berth::test
