// What kubelet relies on beyond conformance: evented PLEG (GetContainerEvents plus
// PodSandboxStatus.containers_statuses) reconstructs every pod's containers exactly, through
// exits, restarts, removal and a berthd restart; stop/remove calls are idempotent.
#include <signal.h>

#include <sys/mount.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "storage/state_db.h"
#include "test/registry/tar_builder.h"
#include "test/util/cri_fixture.h"

namespace berth::test {
namespace {

// What kubelet's evented PLEG keeps per pod: the newest status by timestamp, from events and from
// PodSandboxStatus(verbose=false), and nothing else (it never lists containers).
class PlegWatcher {
 public:
  struct Pod {
    int64_t timestamp = 0;
    std::string sandbox_id;
    bool ready = false;
    std::map<std::string, cri::ContainerState> containers;  // id -> state
  };

  // Takes the daemon, not its stub: a restarted berthd comes with a new channel and stub.
  explicit PlegWatcher(Berthd* berthd) : berthd_(berthd) {}
  ~PlegWatcher() { Disconnect(); }

  void Connect() {
    Disconnect();
    context_ = std::make_unique<grpc::ClientContext>();
    connected_ = true;
    reader_ = std::thread([this] {
      cri::GetEventsRequest req;
      auto stream = berthd_->runtime().GetContainerEvents(context_.get(), req);
      cri::ContainerEventResponse e;
      while (stream->Read(&e)) Apply(e);
      stream->Finish().IgnoreError();
      connected_ = false;
    });
    // The server subscribes when the call arrives; kubelet relists to cover this gap, the
    // tests that do not relist give it a moment.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  void Disconnect() {
    if (context_) context_->TryCancel();
    if (reader_.joinable()) reader_.join();
    context_.reset();
  }
  bool connected() const { return connected_; }

  // kubelet's relist after it (re)connects: PodSandboxStatus for each pod it knows.
  void Relist(const std::vector<std::string>& sandbox_ids) {
    for (const auto& id : sandbox_ids) {
      cri::PodSandboxStatusRequest req;
      req.set_pod_sandbox_id(id);
      cri::PodSandboxStatusResponse resp;
      grpc::Status st = berthd_->runtime().PodSandboxStatus(Ctx().get(), req, &resp);
      if (st.error_code() == grpc::StatusCode::NOT_FOUND) continue;
      ASSERT_TRUE(st.ok()) << st.error_message();
      ASSERT_NE(resp.timestamp(), 0) << "evented PLEG needs PodSandboxStatus.timestamp";
      Set(resp.status(), resp.containers_statuses(), resp.timestamp());
    }
  }

  std::map<std::string, Pod> pods() {
    std::lock_guard<std::mutex> l(mu_);
    return pods_;
  }
  int events() const { return events_; }

 private:
  void Apply(const cri::ContainerEventResponse& e) {
    ++events_;
    // kubelet ignores an event without the pod's status.
    if (!e.has_pod_sandbox_status() || !e.pod_sandbox_status().has_metadata()) return;
    if (e.container_event_type() == cri::CONTAINER_DELETED_EVENT &&
        e.container_id() == e.pod_sandbox_status().id()) {
      std::lock_guard<std::mutex> l(mu_);
      pods_.erase(e.pod_sandbox_status().metadata().uid());
      return;
    }
    Set(e.pod_sandbox_status(), e.containers_statuses(), e.created_at());
  }

  void Set(const cri::PodSandboxStatus& sandbox,
           const google::protobuf::RepeatedPtrField<cri::ContainerStatus>& containers,
           int64_t timestamp) {
    std::lock_guard<std::mutex> l(mu_);
    Pod& pod = pods_[sandbox.metadata().uid()];
    if (timestamp <= pod.timestamp) return;  // kubelet's cache keeps only newer statuses
    pod.timestamp = timestamp;
    pod.sandbox_id = sandbox.id();
    pod.ready = sandbox.state() == cri::SANDBOX_READY;
    pod.containers.clear();
    for (const auto& c : containers) {
      EXPECT_TRUE(pod.containers.emplace(c.id(), c.state()).second)
          << "container " << c.id() << " listed twice for pod " << sandbox.id();
    }
  }

  Berthd* berthd_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::thread reader_;
  std::atomic<bool> connected_{false};
  std::atomic<int> events_{0};
  std::mutex mu_;
  std::map<std::string, Pod> pods_;
};

class KubeletTest : public CriFixture {
 protected:
  // The truth, from the lists kubelet's evented PLEG does not use: uid -> container id -> state.
  std::map<std::string, std::map<std::string, cri::ContainerState>> Truth() {
    std::map<std::string, std::string> uid_of;
    cri::ListPodSandboxRequest lreq;
    cri::ListPodSandboxResponse lresp;
    EXPECT_TRUE(berthd_->runtime().ListPodSandbox(Ctx().get(), lreq, &lresp).ok());
    std::map<std::string, std::map<std::string, cri::ContainerState>> out;
    for (const auto& s : lresp.items()) {
      uid_of[s.id()] = s.metadata().uid();
      out[s.metadata().uid()];
    }
    cri::ListContainersRequest creq;
    cri::ListContainersResponse cresp;
    EXPECT_TRUE(berthd_->runtime().ListContainers(Ctx().get(), creq, &cresp).ok());
    for (const auto& c : cresp.containers()) out[uid_of[c.pod_sandbox_id()]][c.id()] = c.state();
    return out;
  }

  // Waits until the watcher's picture equals the truth; fails with the difference if it never does.
  void ExpectConverged(PlegWatcher* w, const std::string& when) {
    std::map<std::string, std::map<std::string, cri::ContainerState>> truth, seen;
    for (int i = 0; i < 200; ++i) {
      truth = Truth();
      seen.clear();
      for (const auto& [uid, pod] : w->pods()) seen[uid] = pod.containers;
      if (seen == truth) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::string diff;
    for (const auto& [uid, ctrs] : truth) {
      if (seen.count(uid) == 0) {
        absl::StrAppend(&diff, "pod ", uid, " missing; ");
        continue;
      }
      for (const auto& [id, st] : ctrs) {
        auto it = seen[uid].find(id);
        if (it == seen[uid].end())
          absl::StrAppend(&diff, uid, "/", id.substr(0, 12), " missing; ");
        else if (it->second != st)
          absl::StrAppend(&diff, uid, "/", id.substr(0, 12), " state ", it->second, " != ", st,
                          "; ");
      }
      for (const auto& [id, st] : seen[uid]) {
        if (ctrs.count(id) == 0) absl::StrAppend(&diff, uid, "/", id.substr(0, 12), " extra; ");
      }
    }
    for (const auto& [uid, ctrs] : seen) {
      if (truth.count(uid) == 0) absl::StrAppend(&diff, "pod ", uid, " should be gone; ");
    }
    ADD_FAILURE() << when << ": the evented-PLEG picture differs from the lists: " << diff;
  }

  std::string CreateAttempt(const std::string& pod_id, const cri::PodSandboxConfig& pod,
                            const std::string& name, uint32_t attempt,
                            std::vector<std::string> cmd) {
    cri::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod_id);
    *req.mutable_sandbox_config() = pod;
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name(name);
    c->mutable_metadata()->set_attempt(attempt);
    c->mutable_image()->set_image("busybox");
    for (auto& a : cmd) c->add_command(a);
    c->set_log_path(absl::StrCat(name, "_", attempt, ".log"));
    cri::CreateContainerResponse resp;
    grpc::Status st = berthd_->runtime().CreateContainer(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.container_id();
  }

  // busybox with its shell, plus `extra` entries, pushed as <name>:latest.
  void PushVariant(const std::string& name, std::vector<TarEntry> extra,
                   const std::string& user = "", const std::string& stop_signal = "") {
    absl::StatusOr<std::string> busybox = ReadFile("/bin/busybox");
    ASSERT_TRUE(busybox.ok());
    std::vector<TarEntry> entries = {Dir("bin"), Dir("etc"), Dir("tmp", 01777),
                                     File("bin/busybox", *busybox, 0755)};
    for (const char* applet : {"sh", "sleep", "true", "cat", "echo"}) {
      entries.push_back(Symlink(absl::StrCat("bin/", applet), "busybox"));
    }
    for (auto& e : extra) entries.push_back(std::move(e));
    ImageToPush image;
    image.layers.push_back(MakeLayer(entries));
    image.user = user;
    image.stop_signal = stop_signal;
    ASSERT_TRUE(
        PushImage(registry_->host(), absl::StrCat("library/", name), {"latest"}, image).ok());
    cri::PullImageRequest pull;
    pull.mutable_image()->set_image(name);
    cri::PullImageResponse presp;
    grpc::Status st = berthd_->images().PullImage(Ctx().get(), pull, &presp);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }

  grpc::Status CreateFrom(const std::string& pod_id, const cri::PodSandboxConfig& pod,
                          const std::string& name, const std::string& image, std::string* id,
                          cri::Signal stop_signal = cri::SIGNAL_RUNTIME_DEFAULT,
                          std::vector<std::string> cmd = {"sleep", "3600"}, int deadline = 60) {
    cri::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod_id);
    *req.mutable_sandbox_config() = pod;
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name(name);
    c->mutable_image()->set_image(image);
    for (auto& a : cmd) c->add_command(a);
    c->set_stop_signal(stop_signal);
    cri::CreateContainerResponse resp;
    grpc::Status st = berthd_->runtime().CreateContainer(Ctx(deadline).get(), req, &resp);
    if (id != nullptr) *id = resp.container_id();
    return st;
  }

  grpc::Status StopWithin(const std::string& id, int timeout) {
    cri::StopContainerRequest req;
    req.set_container_id(id);
    req.set_timeout(timeout);
    cri::StopContainerResponse resp;
    return berthd_->runtime().StopContainer(Ctx().get(), req, &resp);
  }

  grpc::Status Remove(const std::string& id) {
    cri::RemoveContainerRequest req;
    req.set_container_id(id);
    cri::RemoveContainerResponse resp;
    return berthd_->runtime().RemoveContainer(Ctx().get(), req, &resp);
  }
};

TEST_F(KubeletTest, StopAndRemoveOfUnknownObjectsSucceed) {
  const std::string unknown(64, 'f');
  {
    cri::StopContainerRequest req;
    req.set_container_id(unknown);
    cri::StopContainerResponse resp;
    grpc::Status st = berthd_->runtime().StopContainer(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
  }
  EXPECT_TRUE(Remove(unknown).ok());
  {
    cri::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(unknown);
    cri::StopPodSandboxResponse resp;
    EXPECT_TRUE(berthd_->runtime().StopPodSandbox(Ctx().get(), req, &resp).ok());
  }
  {
    cri::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(unknown);
    cri::RemovePodSandboxResponse resp;
    EXPECT_TRUE(berthd_->runtime().RemovePodSandbox(Ctx().get(), req, &resp).ok());
  }
  // The other calls still say what is missing.
  cri::ContainerStatusRequest req;
  req.set_container_id(unknown);
  cri::ContainerStatusResponse resp;
  EXPECT_EQ(berthd_->runtime().ContainerStatus(Ctx().get(), req, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(KubeletTest, PodSandboxStatusListsThePodsContainersForEventedPleg) {
  cri::PodSandboxConfig pod = Pod("pleg-status");
  std::string pod_id = RunPod(pod);
  std::string a = CreateContainer(pod_id, pod, "a", {"sleep", "3600"});
  std::string b = CreateContainer(pod_id, pod, "b", {"true"});
  ASSERT_TRUE(Start(a).ok());
  ASSERT_TRUE(Start(b).ok());
  WaitExited(b);
  cri::PodSandboxStatusRequest req;
  req.set_pod_sandbox_id(pod_id);
  cri::PodSandboxStatusResponse resp;
  ASSERT_TRUE(berthd_->runtime().PodSandboxStatus(Ctx().get(), req, &resp).ok());
  EXPECT_NE(resp.timestamp(), 0);
  std::map<std::string, cri::ContainerStatus> got;
  for (const auto& c : resp.containers_statuses()) got[c.id()] = c;
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[a].state(), cri::CONTAINER_RUNNING);
  EXPECT_EQ(got[a].metadata().name(), "a");
  EXPECT_EQ(got[b].state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(got[b].exit_code(), 0);
  // The same content as ContainerStatus.
  EXPECT_EQ(got[a].image_ref(), Status(a).image_ref());
  EXPECT_EQ(got[b].finished_at(), Status(b).finished_at());
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

TEST_F(KubeletTest, EventedPlegReconstructsEveryPodThroughExitsRestartsRemovalAndARestart) {
  constexpr int kPods = 20;
  PlegWatcher w(berthd_.get());
  w.Connect();
  std::vector<std::string> pod_ids;
  std::vector<cri::PodSandboxConfig> pods;
  std::vector<std::string> longs, shorts;
  for (int i = 0; i < kPods; ++i) {
    pods.push_back(Pod(absl::StrCat("pleg-", i)));
    pod_ids.push_back(RunPod(pods.back()));
    longs.push_back(CreateAttempt(pod_ids[i], pods[i], "long", 0, {"sleep", "3600"}));
    shorts.push_back(CreateAttempt(pod_ids[i], pods[i], "short", 0, {"true"}));
    ASSERT_TRUE(Start(longs[i]).ok());
    ASSERT_TRUE(Start(shorts[i]).ok());
  }
  for (const auto& id : shorts) WaitExited(id);
  ExpectConverged(&w, "after create, start and exit");
  for (const auto& [uid, pod] : w.pods()) EXPECT_TRUE(pod.ready) << uid;

  // kubelet's restart of an exited container: attempt 1 is created and started, attempt 0 removed.
  for (int i = 0; i < kPods; ++i) {
    std::string again = CreateAttempt(pod_ids[i], pods[i], "short", 1, {"sleep", "3600"});
    ASSERT_TRUE(Start(again).ok());
    ASSERT_TRUE(Remove(shorts[i]).ok());
    shorts[i] = again;
  }
  ExpectConverged(&w, "after restarts and removals");

  // berthd restarts; meanwhile a container dies. kubelet reconnects and relists.
  cri::ContainerStatusRequest sreq;
  sreq.set_container_id(longs[0]);
  sreq.set_verbose(true);
  cri::ContainerStatusResponse sresp;
  ASSERT_TRUE(berthd_->runtime().ContainerStatus(Ctx().get(), sreq, &sresp).ok());
  int pid = nlohmann::json::parse(sresp.info().at("info")).value("pid", 0);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(berthd_->Stop().ok());
  for (int i = 0; i < 100 && w.connected(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(w.connected()) << "the event stream should end with berthd";
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  ASSERT_TRUE(berthd_->Start({.config_toml = Config()}).ok()) << berthd_->log();
  w.Connect();
  w.Relist(pod_ids);
  ExpectConverged(&w, "after a berthd restart");
  EXPECT_EQ(Status(longs[0]).state(), cri::CONTAINER_EXITED);

  // Removal: every pod's DELETED event takes it out of the picture.
  for (const auto& id : pod_ids) ASSERT_TRUE(RemovePod(id).ok());
  ExpectConverged(&w, "after removing every pod");
  EXPECT_TRUE(w.pods().empty());
}

// KEP-4960: the request's stop signal wins over the image's, the image's over SIGTERM, and the
// status says which one StopContainer sends.
TEST_F(KubeletTest, StopSignalComesFromTheRequestThenTheImageAndIsReported) {
  PushVariant("quitter", {}, "", "SIGQUIT");
  cri::PodSandboxConfig pod = Pod("stopsig");
  std::string pod_id = RunPod(pod);
  // Exits 3 on USR1, 4 on QUIT; TERM would kill it with 143.
  const std::vector<std::string> cmd = {
      "/bin/sh", "-c", "trap 'exit 3' USR1; trap 'exit 4' QUIT; while true; do sleep 0.1; done"};
  std::string by_request, by_image, by_default;
  ASSERT_TRUE(
      CreateFrom(pod_id, pod, "req", "quitter", &by_request, cri::SIGNAL_SIGUSR1, cmd).ok());
  ASSERT_TRUE(
      CreateFrom(pod_id, pod, "img", "quitter", &by_image, cri::SIGNAL_RUNTIME_DEFAULT, cmd).ok());
  ASSERT_TRUE(
      CreateFrom(pod_id, pod, "def", "busybox", &by_default, cri::SIGNAL_RUNTIME_DEFAULT, cmd)
          .ok());
  EXPECT_EQ(Status(by_request).stop_signal(), cri::SIGNAL_SIGUSR1);
  EXPECT_EQ(Status(by_image).stop_signal(), cri::SIGNAL_SIGQUIT);
  EXPECT_EQ(Status(by_default).stop_signal(), cri::SIGNAL_SIGTERM);
  for (const auto& id : {by_request, by_image, by_default}) ASSERT_TRUE(Start(id).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let the traps be set
  for (const auto& id : {by_request, by_image, by_default}) ASSERT_TRUE(StopWithin(id, 20).ok());
  EXPECT_EQ(Status(by_request).exit_code(), 3);
  EXPECT_EQ(Status(by_image).exit_code(), 4);
  EXPECT_EQ(Status(by_default).exit_code(), 143);
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

TEST_F(KubeletTest, AnImageStopSignalBerthCannotReadIsAnErrorAtCreate) {
  PushVariant("badsignal", {}, "", "SIGBOGUS");
  cri::PodSandboxConfig pod = Pod("badsig");
  std::string pod_id = RunPod(pod);
  grpc::Status st = CreateFrom(pod_id, pod, "c", "badsignal", nullptr);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find("SIGBOGUS"), std::string::npos) << st.error_message();
  // The request's own signal makes the image's irrelevant.
  std::string id;
  EXPECT_TRUE(CreateFrom(pod_id, pod, "c", "badsignal", &id, cri::SIGNAL_SIGINT).ok());
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

// kill -9 of a pod's pause process used to leave the pod READY forever, so kubelet would retry
// CreateContainer in it instead of recreating it.
TEST_F(KubeletTest, ADeadInfraContainerMakesThePodNotReadyAndSaysSoInAnEvent) {
  cri::PodSandboxConfig pod = Pod("deadinfra");
  std::string pod_id = RunPod(pod);
  PlegWatcher w(berthd_.get());
  w.Connect();
  cri::PodSandboxStatusRequest req;
  req.set_pod_sandbox_id(pod_id);
  req.set_verbose(true);
  cri::PodSandboxStatusResponse resp;
  ASSERT_TRUE(berthd_->runtime().PodSandboxStatus(Ctx().get(), req, &resp).ok());
  ASSERT_EQ(resp.status().state(), cri::SANDBOX_READY);
  int pid = nlohmann::json::parse(resp.info().at("info")).value("pid", 0);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  bool not_ready = false;
  for (int i = 0; i < 100 && !not_ready; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(berthd_->runtime().PodSandboxStatus(Ctx().get(), req, &resp).ok());
    not_ready = resp.status().state() == cri::SANDBOX_NOTREADY;
  }
  EXPECT_TRUE(not_ready) << "the pod stayed READY after its infra container died";
  // The watcher's copy says NOTREADY too: the event carried the pod's new state.
  bool seen = false;
  for (int i = 0; i < 100 && !seen; ++i) {
    auto pods = w.pods();
    seen = pods.count(pod.metadata().uid()) && !pods[pod.metadata().uid()].ready;
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(seen) << "no event showed the pod NOTREADY";
  grpc::Status st = CreateFrom(pod_id, pod, "late", "busybox", nullptr);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  // Still stoppable and removable, as kubelet then does.
  EXPECT_TRUE(RemovePod(pod_id).ok());
  // It stays NOTREADY across a berthd restart as well (recovery checks the infra container).
  std::string pod2 = RunPod(Pod("deadinfra2"));
  req.set_pod_sandbox_id(pod2);
  ASSERT_TRUE(berthd_->runtime().PodSandboxStatus(Ctx().get(), req, &resp).ok());
  pid = nlohmann::json::parse(resp.info().at("info")).value("pid", 0);
  berthd_->Kill();
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  // conmon records the exit while berthd is away; recovery finds it and the pod is NOTREADY.
  ASSERT_TRUE(berthd_->Start({.config_toml = Config()}).ok()) << berthd_->log();
  req.set_verbose(false);
  ASSERT_TRUE(berthd_->runtime().PodSandboxStatus(Ctx().get(), req, &resp).ok());
  EXPECT_EQ(resp.status().state(), cri::SANDBOX_NOTREADY);
  EXPECT_TRUE(RemovePod(pod2).ok());
}

// Audit finding 4: a FIFO as the image's /etc/passwd blocked CreateContainer forever, and a home
// directory that is not UTF-8 threw out of the engine, leaving the name reserved so that every
// kubelet retry waited forever.
TEST_F(KubeletTest, HostileImagePasswdNeitherHangsNorWedgesRetries) {
  TarEntry fifo{"etc/passwd", TarEntry::kFifo, "", 0644};
  PushVariant("fifopasswd", {fifo}, "someone");
  PushVariant(
      "badhome",
      {File("etc/passwd", "root:x:0:0::/root:/bin/sh\nbad:x:1000:1000::/home/\xff\xfe:/bin/sh\n")},
      "bad");
  cri::PodSandboxConfig pod = Pod("hostile-passwd");
  std::string pod_id = RunPod(pod);
  grpc::Status st = CreateFrom(pod_id, pod, "fifo", "fifopasswd", nullptr,
                               cri::SIGNAL_RUNTIME_DEFAULT, {"sleep", "3600"}, /*deadline=*/20);
  EXPECT_NE(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
      << "CreateContainer hung on a FIFO";
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  std::string first, again;
  st = CreateFrom(pod_id, pod, "home", "badhome", &first, cri::SIGNAL_RUNTIME_DEFAULT,
                  {"sleep", "3600"}, 20);
  EXPECT_TRUE(st.ok()) << st.error_message();
  // kubelet's retry of the same request: answered at once, with the same container.
  st = CreateFrom(pod_id, pod, "home", "badhome", &again, cri::SIGNAL_RUNTIME_DEFAULT,
                  {"sleep", "3600"}, 20);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(first, again);
  ASSERT_TRUE(Start(first).ok());
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

// Audit finding 13: log_directory + "/" + log_path was not cleaned, so conmon (root) wrote a
// container's output anywhere and MakeDirs chmodded what it passed through.
TEST_F(KubeletTest, ALogPathCannotLeaveThePodsLogDirectory) {
  cri::PodSandboxConfig pod = Pod("logescape");
  std::string pod_id = RunPod(pod);
  const std::string victim = dir_.path() + "/victim";
  ASSERT_EQ(mkdir(victim.c_str(), 0700), 0);
  for (const std::string& bad : {std::string("../../victim/x.log"), std::string("/etc/x.log"),
                                 std::string("a/../../../victim/y.log"), std::string("..")}) {
    cri::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod_id);
    *req.mutable_sandbox_config() = pod;
    req.mutable_config()->mutable_metadata()->set_name("c");
    req.mutable_config()->mutable_image()->set_image("busybox");
    req.mutable_config()->set_log_path(bad);
    cri::CreateContainerResponse resp;
    grpc::Status st = berthd_->runtime().CreateContainer(Ctx().get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << bad << ": " << st.error_message();
    EXPECT_NE(st.error_message().find("log_path"), std::string::npos) << st.error_message();
  }
  struct stat sb;
  ASSERT_EQ(stat(victim.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 07777, 0700u);
  EXPECT_FALSE(PathExists(victim + "/x.log"));
  // A nested relative path inside is fine (kubelet uses <name>/<attempt>.log).
  std::string ok = CreateContainer(pod_id, pod, "nested", {"true"});
  EXPECT_FALSE(ok.empty());
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

// Audit findings 7 and 11: a pod's directory (its /dev/shm, hosts and resolv.conf) and ExecSync's
// process spec and pid file are root's alone, never in a directory other users can write or read.
TEST_F(KubeletTest, PodDirectoriesAndExecScratchArePrivate) {
  cri::PodSandboxConfig pod = Pod("private");
  std::string pod_id = RunPod(pod);
  struct stat sb;
  const std::string dir = berthd_->state_dir() + "/sandboxes/" + pod_id;
  ASSERT_EQ(stat(dir.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 07777, 0700u);
  ASSERT_EQ(stat((berthd_->state_dir() + "/exec").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 07777, 0700u);
  std::string id = CreateContainer(pod_id, pod, "c", {"sleep", "3600"});
  ASSERT_TRUE(Start(id).ok());
  std::atomic<bool> done{false};
  bool in_tmp = false, in_state = false;
  std::thread watch([&] {
    while (!done) {
      for (const auto& e : std::filesystem::directory_iterator("/tmp")) {
        if (e.path().filename().string().rfind("berth-exec", 0) == 0) in_tmp = true;
      }
      std::error_code ec;
      for (const auto& e :
           std::filesystem::directory_iterator(berthd_->state_dir() + "/exec", ec)) {
        if (e.path().filename().string().rfind("sync-", 0) == 0) in_state = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  cri::ExecSyncRequest req;
  req.set_container_id(id);
  for (const char* a : {"sleep", "1"}) req.add_cmd(a);
  cri::ExecSyncResponse resp;
  grpc::Status st = berthd_->runtime().ExecSync(Ctx().get(), req, &resp);
  done = true;
  watch.join();
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_FALSE(in_tmp) << "ExecSync put its files in /tmp";
  EXPECT_TRUE(in_state);
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

// Audit finding 15: one record that does not parse stopped berthd at start, taking every pod
// on the node with it. It is quarantined: left in the DB, reported, the rest served.
TEST_F(KubeletTest, AnUnreadableRecordIsQuarantinedAndEverythingElseIsServed) {
  cri::PodSandboxConfig pod = Pod("survivor");
  std::string pod_id = RunPod(pod);
  std::string id = CreateContainer(pod_id, pod, "c", {"sleep", "3600"});
  ASSERT_TRUE(Start(id).ok());
  ASSERT_TRUE(berthd_->Stop().ok());
  {
    auto db = storage::StateDB::Open(berthd_->root() + "/state");
    ASSERT_TRUE(db.ok()) << db.status();
    storage::Batch b;
    b.PutRaw(storage::Kind::kContainers, "garbage", std::string("\xff\xff\xff\xff not a record"));
    b.PutRaw(storage::Kind::kSandboxes, "junk", "\x0a\xff\xff\xff\xff\xff");
    ASSERT_TRUE((*db)->Commit(std::move(b)).ok());
  }
  ASSERT_TRUE(berthd_->Start({.config_toml = Config()}).ok()) << berthd_->log();
  EXPECT_EQ(Status(id).state(), cri::CONTAINER_RUNNING);
  cri::StatusRequest req;
  req.set_verbose(true);
  cri::StatusResponse resp;
  ASSERT_TRUE(berthd_->runtime().Status(Ctx().get(), req, &resp).ok());
  auto recovery = nlohmann::json::parse(resp.info().at("recovery"));
  EXPECT_EQ(recovery["quarantined"].size(), 2u) << recovery.dump();
  EXPECT_NE(berthd_->log().find("quarantined container record"), std::string::npos);
  // Nothing was deleted: the bytes are still there for whoever investigates.
  ASSERT_TRUE(berthd_->Stop().ok());
  {
    auto db = storage::StateDB::Open(berthd_->root() + "/state");
    ASSERT_TRUE(db.ok());
    int seen = 0;
    ASSERT_TRUE((*db)
                    ->ForEach(storage::Kind::kContainers,
                              [&](absl::string_view k, absl::string_view) {
                                seen += k == "garbage";
                                return absl::OkStatus();
                              })
                    .ok());
    EXPECT_EQ(seen, 1);
  }
  ASSERT_TRUE(berthd_->Start({.config_toml = Config()}).ok()) << berthd_->log();
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

// KEP-3619: busybox's /etc/group puts www (33) in staff (50). Merge adds that, Strict does
// not, and ContainerStatus.user says what the process really has.
TEST_F(KubeletTest, SupplementalGroupsPolicyIsAppliedAndReported) {
  cri::PodSandboxConfig pod = Pod("groups");
  std::string pod_id = RunPod(pod);
  std::map<cri::SupplementalGroupsPolicy, std::string> ids;
  for (auto policy : {cri::Merge, cri::Strict}) {
    cri::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod_id);
    *req.mutable_sandbox_config() = pod;
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name(policy == cri::Merge ? "merge" : "strict");
    c->mutable_image()->set_image("busybox");
    for (const char* a : {"sleep", "3600"}) c->add_command(a);
    auto* sc = c->mutable_linux()->mutable_security_context();
    sc->set_run_as_username("www");
    sc->add_supplemental_groups(1000);
    sc->set_supplemental_groups_policy(policy);
    cri::CreateContainerResponse resp;
    grpc::Status st = berthd_->runtime().CreateContainer(Ctx().get(), req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    ids[policy] = resp.container_id();
    ASSERT_TRUE(Start(resp.container_id()).ok());
  }
  auto groups_of = [&](const std::string& id) {
    cri::ExecSyncRequest req;
    req.set_container_id(id);
    for (const char* a : {"id", "-G"}) req.add_cmd(a);
    cri::ExecSyncResponse resp;
    EXPECT_TRUE(berthd_->runtime().ExecSync(Ctx().get(), req, &resp).ok());
    return resp.stdout();
  };
  EXPECT_EQ(groups_of(ids[cri::Merge]), "33 50 1000\n");
  EXPECT_EQ(groups_of(ids[cri::Strict]), "33 1000\n");
  cri::ContainerStatus merge = Status(ids[cri::Merge]), strict = Status(ids[cri::Strict]);
  EXPECT_EQ(merge.user().linux().uid(), 33);
  EXPECT_EQ(merge.user().linux().gid(), 33);
  EXPECT_EQ(std::vector<int64_t>(merge.user().linux().supplemental_groups().begin(),
                                 merge.user().linux().supplemental_groups().end()),
            (std::vector<int64_t>{33, 50, 1000}));
  EXPECT_EQ(std::vector<int64_t>(strict.user().linux().supplemental_groups().begin(),
                                 strict.user().linux().supplemental_groups().end()),
            (std::vector<int64_t>{33, 1000}));
  cri::StatusRequest sreq;
  cri::StatusResponse sresp;
  ASSERT_TRUE(berthd_->runtime().Status(Ctx().get(), sreq, &sresp).ok());
  EXPECT_TRUE(sresp.features().supplemental_groups_policy());
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

// KEP-3857: a recursive read-only mount makes the submounts of a volume read-only too (a plain
// "ro" bind leaves them writable); critest's validation rules; the feature is reported.
TEST_F(KubeletTest, RecursiveReadOnlyMountsCoverSubmounts) {
  const std::string vol = dir_.path() + "/vol";
  ASSERT_TRUE(MakeDirs(vol + "/sub").ok());
  ASSERT_EQ(mount("t", (vol + "/sub").c_str(), "tmpfs", 0, "size=1m"), 0);
  absl::Cleanup unmount = [&] { umount2((vol + "/sub").c_str(), MNT_DETACH); };
  cri::PodSandboxConfig pod = Pod("rro");
  std::string pod_id = RunPod(pod);
  auto create = [&](const std::string& name, bool ro, bool rro, cri::MountPropagation prop,
                    std::string* id) {
    cri::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod_id);
    *req.mutable_sandbox_config() = pod;
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name(name);
    c->mutable_image()->set_image("busybox");
    for (const char* a : {"sleep", "3600"}) c->add_command(a);
    auto* m = c->add_mounts();
    m->set_host_path(vol);
    m->set_container_path("/data");
    m->set_readonly(ro);
    m->set_recursive_read_only(rro);
    m->set_propagation(prop);
    cri::CreateContainerResponse resp;
    grpc::Status st = berthd_->runtime().CreateContainer(Ctx().get(), req, &resp);
    if (id) *id = resp.container_id();
    return st;
  };
  grpc::Status st = create("bad1", false, true, cri::PROPAGATION_PRIVATE, nullptr);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find("readonly"), std::string::npos) << st.error_message();
  st = create("bad2", true, true, cri::PROPAGATION_HOST_TO_CONTAINER, nullptr);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  std::string rro, ro;
  ASSERT_TRUE(create("rro", true, true, cri::PROPAGATION_PRIVATE, &rro).ok());
  ASSERT_TRUE(create("ro", true, false, cri::PROPAGATION_PRIVATE, &ro).ok());
  ASSERT_TRUE(Start(rro).ok());
  ASSERT_TRUE(Start(ro).ok());
  auto touch = [&](const std::string& id, const std::string& path) {
    cri::ExecSyncRequest req;
    req.set_container_id(id);
    for (const std::string& a : {std::string("touch"), path}) req.add_cmd(a);
    cri::ExecSyncResponse resp;
    EXPECT_TRUE(berthd_->runtime().ExecSync(Ctx().get(), req, &resp).ok());
    return resp.exit_code();
  };
  EXPECT_NE(touch(rro, "/data/x"), 0);
  EXPECT_NE(touch(rro, "/data/sub/x"), 0)
      << "a submount of a recursive read-only mount was writable";
  EXPECT_NE(touch(ro, "/data/x"), 0);
  EXPECT_FALSE(PathExists(vol + "/sub/x"));
  // The staging copy berth bound from is gone once runc has its own mounts.
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::is_empty(berthd_->state_dir() + "/idmap", ec) || ec);
  cri::StatusRequest sreq;
  cri::StatusResponse sresp;
  ASSERT_TRUE(berthd_->runtime().Status(Ctx().get(), sreq, &sresp).ok());
  ASSERT_GT(sresp.runtime_handlers_size(), 0);
  EXPECT_TRUE(sresp.runtime_handlers(0).features().recursive_read_only_mounts());
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

}  // namespace
// CDI (KEP-4009): a device named in CDI_devices or a cdi.k8s.io/ annotation is edited into the
// container from the spec files in runtime.cdi_spec_dirs (a real spec file, a real device node);
// an unknown device is an InvalidArgument at create naming it, and nothing is left behind.
TEST_F(KubeletTest, CdiDevicesFromSpecFilesReachTheContainer) {
  const std::string cdi = dir_.path() + "/cdi";
  ASSERT_TRUE(MakeDirs(cdi).ok());
  ASSERT_TRUE(WriteFileAtomic(cdi + "/vendor.yaml", R"(cdiVersion: "0.6.0"
kind: berth.test/dev
containerEdits:
  env: ["BERTH_CDI_SPEC=on"]
devices:
  - name: null0
    containerEdits:
      env: ["BERTH_CDI_DEVICE=null0"]
      deviceNodes:
        - path: /dev/berth-null
          hostPath: /dev/null
  - name: zero0
    containerEdits:
      env: ["BERTH_CDI_DEVICE2=zero0"]
)")
                  .ok());
  ASSERT_TRUE(berthd_->Stop().ok());
  ASSERT_TRUE(berthd_
                  ->Start({.config_toml = absl::StrCat(Config(), "[runtime]\ncdi_spec_dirs = [\"",
                                                       cdi, "\"]\n")})
                  .ok())
      << berthd_->log();
  cri::PodSandboxConfig pod = Pod("cdi");
  std::string pod_id = RunPod(pod);
  auto create = [&](const std::string& name, const std::vector<std::string>& devices,
                    const std::string& annotation, std::string* id) {
    cri::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod_id);
    *req.mutable_sandbox_config() = pod;
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name(name);
    c->mutable_image()->set_image("busybox");
    for (const char* a : {"sleep", "3600"}) c->add_command(a);
    for (const std::string& d : devices) c->add_cdi_devices()->set_name(d);
    if (!annotation.empty()) (*c->mutable_annotations())["cdi.k8s.io/test"] = annotation;
    cri::CreateContainerResponse resp;
    grpc::Status st = berthd_->runtime().CreateContainer(Ctx().get(), req, &resp);
    *id = resp.container_id();
    return st;
  };
  std::string id;
  grpc::Status st = create("dev", {"berth.test/dev=null0"}, "berth.test/dev=zero0", &id);
  ASSERT_TRUE(st.ok()) << st.error_message() << berthd_->log();
  ASSERT_TRUE(Start(id).ok());
  cri::ExecSyncRequest exec;
  exec.set_container_id(id);
  for (const char* a : {"sh", "-c",
                        "echo $BERTH_CDI_SPEC $BERTH_CDI_DEVICE $BERTH_CDI_DEVICE2; "
                        "ls -l /dev/berth-null | cut -c1"}) {
    exec.add_cmd(a);
  }
  cri::ExecSyncResponse out;
  ASSERT_TRUE(berthd_->runtime().ExecSync(Ctx().get(), exec, &out).ok());
  EXPECT_EQ(out.stdout(), "on null0 zero0\nc\n") << out.stderr();
  std::string none;
  st = create("missing", {"berth.test/dev=gpu7"}, "", &none);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(st.error_message(), "berth.test/dev=gpu7")) << st.error_message();
  st = create("unqualified", {"gpu7"}, "", &none);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  // The failed creations left nothing: only the one container is listed, and the name is free.
  cri::ListContainersResponse list;
  ASSERT_TRUE(
      berthd_->runtime().ListContainers(Ctx().get(), cri::ListContainersRequest(), &list).ok());
  EXPECT_EQ(list.containers_size(), 1);
  EXPECT_TRUE(create("missing", {"berth.test/dev=zero0"}, "", &none).ok());
  EXPECT_TRUE(RemovePod(pod_id).ok());
}

}  // namespace berth::test
