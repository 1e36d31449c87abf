// The engine over a fake OCI runtime and fake host mounts, with a real StateDB (RocksDB) and the
// real exit watcher: lifecycle, kubelet's retries, failed starts, stop timeouts, the state
// machine's refusals and recovery after a crash at each step. Needs no root (the
// engine_test_as_nobody target runs it as an unprivileged user).
#include "runtime/engine.h"

#include <unistd.h>

#include <climits>
#include <csignal>
#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/oci/fake_runtime.h"
#include "runtime/testing/engine_fakes.h"
#include "storage/state_db.h"
#include "test/util/temp_dir.h"
#include "util/fs.h"

namespace berth::engine {
namespace {

namespace cri = runtime::v1;

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/criu", "#!/bin/sh\nexit 0\n", 0755).ok());
    ASSERT_TRUE(env_.Init().ok());
    fake_ = &env_.runtime();
    StartEngine();
  }

  // A new engine over the same StateDB and the same runtime state: berthd restarted.
  void StartEngine() {
    absl::StatusOr<std::unique_ptr<Engine>> e = env_.Start();
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = std::move(*e);
    host_ = env_.host();
  }

  cri::PodSandboxConfig Pod(const std::string& name) {
    cri::PodSandboxConfig p;
    p.mutable_metadata()->set_name(name);
    p.mutable_metadata()->set_namespace_("default");
    p.mutable_metadata()->set_uid(absl::StrCat("uid-", name));
    p.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
        cri::NODE);
    return p;
  }
  cri::ContainerConfig Ctr(const std::string& name) {
    cri::ContainerConfig c;
    c.mutable_metadata()->set_name(name);
    c.mutable_image()->set_image("busybox");
    c.add_command("/bin/sleep");
    c.add_args("1000");
    return c;
  }
  std::string RunPod(const std::string& name) {
    absl::StatusOr<std::string> id = engine_->RunPodSandbox(Pod(name), "");
    EXPECT_TRUE(id.ok()) << id.status();
    return id.value_or("");
  }
  berth::v1::ContainerStatus StatusOf(const std::string& id) {
    absl::StatusOr<ContainerView> v = engine_->GetContainer(id);
    return v.ok() ? (*v)->state().status() : berth::v1::CONTAINER_STATUS_UNKNOWN;
  }
  // Waits (bounded) for the exit watcher to apply an exit.
  berth::v1::ContainerStatus WaitStatus(const std::string& id, berth::v1::ContainerStatus want) {
    for (int i = 0; i < 500 && StatusOf(id) != want; ++i) absl::SleepFor(absl::Milliseconds(10));
    return StatusOf(id);
  }

  // Before the engine, which reads them until it is gone.
  absl::Mutex oom_mu_;
  std::map<std::string, uint64_t> oom_kills_;  // container id -> kills counted in its cgroup
  test::TempDir dir_;
  // A CRIU that passes `criu check`: checkpoints reach the fake runtime's. The cgroup OOM-kill
  // counts are oom_kills_'s, by cgroups path.
  fakes::ScratchEngine env_{dir_.path(), {.adjust = [this](EngineOptions* o) {
                              o->criu_path = dir_.path() + "/criu";
                              o->oom_kill_count = [this](const std::string& path) {
                                return CountedOomKills(path);
                              };
                            }}};
  absl::StatusOr<uint64_t> CountedOomKills(const std::string& cgroups_path) {
    absl::MutexLock l(&oom_mu_);
    for (const auto& [id, kills] : oom_kills_) {
      if (absl::StrContains(cgroups_path, id)) return kills;
    }
    return absl::NotFoundError(absl::StrCat("no cgroup ", cgroups_path));
  }

  oci::FakeRuntime* fake_ = nullptr;
  fakes::FakeHost* host_ = nullptr;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineTest, RunsWithoutRoot) {
  // Not an assertion about the machine: this records who ran the suite (the _as_nobody target
  // must show a non-zero uid here).
  RecordProperty("euid", static_cast<int>(geteuid()));
  std::string pod = RunPod("p");
  ASSERT_FALSE(pod.empty());
  EXPECT_EQ(host_->mounted(), 1u);                             // the pod's /dev/shm
  EXPECT_EQ(fake_->StatusOf(pod), oci::RuncStatus::kRunning);  // the infra container
}

TEST_F(EngineTest, ContainerLifecycleThroughEveryState) {
  std::string pod = RunPod("p");
  absl::StatusOr<std::string> id = engine_->CreateContainer(pod, Ctr("c"));
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(StatusOf(*id), berth::v1::CONTAINER_STATUS_CREATED);
  ASSERT_TRUE(engine_->StartContainer(*id).ok());
  EXPECT_EQ(StatusOf(*id), berth::v1::CONTAINER_STATUS_RUNNING);
  fake_->Exit(*id, 3);
  EXPECT_EQ(WaitStatus(*id, berth::v1::CONTAINER_STATUS_STOPPED),
            berth::v1::CONTAINER_STATUS_STOPPED);
  absl::StatusOr<ContainerView> v = engine_->GetContainer(*id);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)->state().exit_code(), 3);
  EXPECT_EQ((*v)->state().reason(), "Error");
  EXPECT_GE((*v)->state().finished_at_ns(), (*v)->state().started_at_ns());
  ASSERT_TRUE(engine_->RemoveContainer(*id, /*force=*/false).ok());
  EXPECT_TRUE(absl::IsNotFound(engine_->GetContainer(*id).status()));
  EXPECT_EQ(fake_->StatusOf(*id), oci::RuncStatus::kUnknown);
  ASSERT_TRUE(engine_->StopPodSandbox(pod).ok());
  ASSERT_TRUE(engine_->RemovePodSandbox(pod).ok());
  EXPECT_EQ(host_->mounted(), 0u);
  EXPECT_EQ(env_.images().mounted(), 0);
  EXPECT_TRUE(engine_->ListSandboxes().empty());
}

TEST_F(EngineTest, ForbiddenTransitionsAreRefusedNamingBothStates) {
  std::string pod = RunPod("p");
  absl::StatusOr<std::string> id = engine_->CreateContainer(pod, Ctr("c"));
  ASSERT_TRUE(id.ok()) << id.status();
  // A Created container is live: removing it without force needs a stop first.
  absl::Status st = engine_->RemoveContainer(*id, /*force=*/false);
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_TRUE(
      absl::StrContains(st.message(), "is created: cannot remove it (that leads to being removed)"))
      << st;
  st = engine_->ExecSync(*id, {"/bin/true"}, 0).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "is created: cannot exec in it")) << st;
  ASSERT_TRUE(engine_->StartContainer(*id).ok());
  st = engine_->StartContainer(*id);
  EXPECT_TRUE(absl::StrContains(st.message(), "is running: cannot start it")) << st;
  ASSERT_TRUE(engine_->StopContainer(*id, 0).ok());
  EXPECT_EQ(StatusOf(*id), berth::v1::CONTAINER_STATUS_STOPPED);
  st = engine_->StartContainer(*id);
  EXPECT_EQ(st.message(), absl::StrCat("container \"", *id,
                                       "\" is stopped: cannot start it (that leads to running): it "
                                       "has already run"));
  st = engine_->UpdateContainerResources(*id, cri::LinuxContainerResources());
  EXPECT_TRUE(absl::StrContains(st.message(), "is stopped: cannot update the resources of it"))
      << st;
  // A pod that is not ready takes no new containers.
  ASSERT_TRUE(engine_->StopPodSandbox(pod).ok());
  st = engine_->CreateContainer(pod, Ctr("late")).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "is not ready: cannot create a container in it"))
      << st;
  // The runtime was never asked to do what the table refused.
  int starts = 0;
  for (const std::string& c : fake_->calls()) starts += c == absl::StrCat("start ", *id);
  EXPECT_EQ(starts, 1);
}

TEST_F(EngineTest, AFailedStartIsRecordedAndRefusesASecondStart) {
  std::string pod = RunPod("p");
  absl::StatusOr<std::string> id = engine_->CreateContainer(pod, Ctr("c"));
  ASSERT_TRUE(id.ok()) << id.status();
  fake_->FailNext("start", absl::InternalError("exec: \"/bin/sleep\": permission denied"));
  absl::Status st = engine_->StartContainer(*id);
  EXPECT_FALSE(st.ok());
  absl::StatusOr<ContainerView> v = engine_->GetContainer(*id);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)->state().status(), berth::v1::CONTAINER_STATUS_STOPPED);
  EXPECT_EQ((*v)->state().exit_code(), 128);
  EXPECT_EQ((*v)->state().reason(), "StartError");
  EXPECT_TRUE(absl::StrContains((*v)->state().message(), "permission denied"));
  EXPECT_TRUE(absl::IsFailedPrecondition(engine_->StartContainer(*id)));
  EXPECT_TRUE(engine_->RemoveContainer(*id, true).ok());
}

TEST_F(EngineTest, AFailedCreateLeavesNothingAndTheNameIsFreeAgain) {
  std::string pod = RunPod("p");
  fake_->FailNext("create", absl::InternalError("conmon exited without reporting"));
  EXPECT_FALSE(engine_->CreateContainer(pod, Ctr("c")).ok());
  EXPECT_TRUE(engine_->ListContainers().empty());
  EXPECT_EQ(env_.images().mounted(), 0);
  absl::StatusOr<std::string> id = engine_->CreateContainer(pod, Ctr("c"));
  EXPECT_TRUE(id.ok()) << id.status();
}

TEST_F(EngineTest, KubeletRetriesGetTheSameObjectAndADifferentRequestIsRefused) {
  absl::StatusOr<std::string> a = engine_->RunPodSandbox(Pod("p"), "");
  absl::StatusOr<std::string> b = engine_->RunPodSandbox(Pod("p"), "");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  absl::StatusOr<std::string> c1 = engine_->CreateContainer(*a, Ctr("c"));
  absl::StatusOr<std::string> c2 = engine_->CreateContainer(*a, Ctr("c"));
  ASSERT_TRUE(c1.ok() && c2.ok());
  EXPECT_EQ(*c1, *c2);
  cri::ContainerConfig other = Ctr("c");
  other.add_args("more");
  EXPECT_TRUE(absl::IsAlreadyExists(engine_->CreateContainer(*a, other).status()));
  // Stop and remove are idempotent, for known and unknown ids.
  EXPECT_TRUE(engine_->StopContainer("0123456789ab0123456789ab", 0).ok());
  EXPECT_TRUE(engine_->RemoveContainer("0123456789ab0123456789ab", true).ok());
  EXPECT_TRUE(engine_->RemovePodSandbox(*a).ok());
  EXPECT_TRUE(engine_->RemovePodSandbox(*a).ok());
  EXPECT_TRUE(engine_->StopPodSandbox(*a).ok());
}

TEST_F(EngineTest, StopSendsTheStopSignalThenSigkillAfterTheTimeout) {
  std::string pod = RunPod("p");
  cri::ContainerConfig cfg = Ctr("c");
  cfg.set_stop_signal(cri::SIGNAL_SIGUSR1);
  absl::StatusOr<std::string> id = engine_->CreateContainer(pod, cfg);
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(engine_->StartContainer(*id).ok());
  fake_->IgnoreSignal(*id, SIGUSR1);
  ASSERT_TRUE(engine_->StopContainer(*id, 1).ok());
  absl::StatusOr<ContainerView> v = engine_->GetContainer(*id);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)->state().status(), berth::v1::CONTAINER_STATUS_STOPPED);
  EXPECT_EQ((*v)->state().exit_code(), 128 + SIGKILL);
  std::vector<std::string> calls = fake_->calls();
  auto at = [&](const std::string& c) {
    return std::find(calls.begin(), calls.end(), c) - calls.begin();
  };
  EXPECT_LT(at(absl::StrCat("kill ", *id, " ", SIGUSR1)), at(absl::StrCat("kill ", *id, " 9 all")));
  EXPECT_LT(at(absl::StrCat("kill ", *id, " 9 all")), static_cast<long>(calls.size()));
}

TEST_F(EngineTest, AnOomKillIsReported) {
  std::string pod = RunPod("p");
  absl::StatusOr<std::string> id = engine_->CreateContainer(pod, Ctr("c"));
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(engine_->StartContainer(*id).ok());
  fake_->Exit(*id, 137, /*oom=*/true);
  ASSERT_EQ(WaitStatus(*id, berth::v1::CONTAINER_STATUS_STOPPED),
            berth::v1::CONTAINER_STATUS_STOPPED);
  absl::StatusOr<ContainerView> v = engine_->GetContainer(*id);
  EXPECT_EQ((*v)->state().reason(), "OOMKilled");
  EXPECT_TRUE((*v)->state().oom_killed());
}

// A process of the container other than its init was OOM-killed (a worker; the shell then exits
// 0): conmon writes no marker for it on cgroup v2, the cgroup's memory.events counts it, and the
// container is OOMKilled, as containerd reports it. A container whose cgroup is already gone
// (systemd removed its scope) or counted nothing keeps its own reason.
TEST_F(EngineTest, AnOomKillCountedInTheCgroupIsReportedAtExit) {
  std::string pod = RunPod("p");
  std::vector<std::string> ids;
  for (const char* name : {"counted", "clean", "gone"}) {
    absl::StatusOr<std::string> id = engine_->CreateContainer(pod, Ctr(name));
    ASSERT_TRUE(id.ok()) << id.status();
    ASSERT_TRUE(engine_->StartContainer(*id).ok());
    ids.push_back(*id);
  }
  {
    absl::MutexLock l(&oom_mu_);
    oom_kills_[ids[0]] = 1;
    oom_kills_[ids[1]] = 0;
  }
  for (const std::string& id : ids) {
    fake_->Exit(id, 0);
    ASSERT_EQ(WaitStatus(id, berth::v1::CONTAINER_STATUS_STOPPED),
              berth::v1::CONTAINER_STATUS_STOPPED);
  }
  absl::StatusOr<ContainerView> counted = engine_->GetContainer(ids[0]);
  EXPECT_EQ((*counted)->state().reason(), "OOMKilled");
  EXPECT_TRUE((*counted)->state().oom_killed());
  EXPECT_EQ((*counted)->state().exit_code(), 0);
  for (const std::string& id : {ids[1], ids[2]}) {
    absl::StatusOr<ContainerView> v = engine_->GetContainer(id);
    EXPECT_EQ((*v)->state().reason(), "Completed") << id;
    EXPECT_FALSE((*v)->state().oom_killed()) << id;
  }
}

TEST_F(EngineTest, ADeadInfraContainerMakesThePodNotReady) {
  std::string pod = RunPod("p");
  fake_->Exit(pod, 137);
  for (int i = 0; i < 500; ++i) {
    absl::StatusOr<SandboxView> s = engine_->GetSandbox(pod);
    if (s.ok() && (*s)->status() == berth::v1::SANDBOX_STATUS_NOT_READY) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ((*engine_->GetSandbox(pod))->status(), berth::v1::SANDBOX_STATUS_NOT_READY);
  EXPECT_TRUE(absl::IsFailedPrecondition(engine_->CreateContainer(pod, Ctr("c")).status()));
}

// berthd dies and comes back: exits meanwhile are taken from the exit files, runc's view covers
// the rest, and a container runc has forgotten is Exited.
TEST_F(EngineTest, RecoveryReconcilesWithExitFilesAndTheRuntime) {
  std::string pod = RunPod("p");
  std::string running, exited, paused, forgotten;
  for (auto [name, out] :
       std::vector<std::pair<std::string, std::string*>>{{"running", &running},
                                                         {"exited", &exited},
                                                         {"paused", &paused},
                                                         {"forgotten", &forgotten}}) {
    absl::StatusOr<std::string> id = engine_->CreateContainer(pod, Ctr(name));
    ASSERT_TRUE(id.ok()) << id.status();
    ASSERT_TRUE(engine_->StartContainer(*id).ok());
    *out = *id;
  }
  engine_.reset();  // berthd is gone; the containers are not
  fake_->Exit(exited, 7);
  // Forget one container without an exit file: runc lost it.
  ASSERT_TRUE(fake_->Delete(forgotten, /*force=*/true).ok());
  StartEngine();
  EXPECT_EQ(StatusOf(running), berth::v1::CONTAINER_STATUS_RUNNING);
  EXPECT_EQ(StatusOf(exited), berth::v1::CONTAINER_STATUS_STOPPED);
  EXPECT_EQ((*engine_->GetContainer(exited))->state().exit_code(), 7);
  EXPECT_EQ(StatusOf(forgotten), berth::v1::CONTAINER_STATUS_EXITED);
  EXPECT_EQ((*engine_->GetContainer(forgotten))->state().exit_code(), 255);
  EXPECT_EQ(engine_->recovery().exited_while_down, 2);
  // Exited is a state removal accepts.
  EXPECT_TRUE(engine_->RemoveContainer(forgotten, false).ok());
  EXPECT_TRUE(engine_->RemovePodSandbox(pod).ok());
}

// berthd killed midway leaves records in intermediate states; a restart finishes or undoes each.
// A creation killed after its Configured record was saved (runc never heard of it), and a
// removal killed after Removing was saved (runc still has it): both end gone, names free.
TEST_F(EngineTest, ACrashMidCreateOrMidRemoveConvergesAtRestart) {
  std::string pod = RunPod("p");
  absl::StatusOr<std::string> half = engine_->CreateContainer(pod, Ctr("half"));
  ASSERT_TRUE(half.ok());
  ASSERT_TRUE(engine_->StartContainer(*half).ok());
  ASSERT_TRUE(engine_->StopContainer(*half, 0).ok());
  fake_->FailNext("delete", absl::AbortedError("berthd killed"));
  EXPECT_FALSE(engine_->RemoveContainer(*half, true).ok());
  EXPECT_EQ(StatusOf(*half), berth::v1::CONTAINER_STATUS_REMOVING);
  engine_.reset();
  // The Configured record a killed CreateContainer leaves, with its bundle directory.
  berth::v1::Container lost;
  lost.mutable_config()->set_id("0badc0de0badc0de0badc0de0badc0de0badc0de0badc0de0badc0de0badc0de");
  lost.mutable_config()->set_sandbox_id(pod);
  lost.mutable_config()->set_name("k8s_lost_p_default_uid-p_0");
  lost.mutable_config()->set_bundle_dir(env_.engine_options().state_dir + "/containers/" +
                                        lost.config().id());
  lost.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_CONFIGURED);
  ASSERT_TRUE(MakeDirs(lost.config().bundle_dir(), 0700).ok());
  ASSERT_TRUE(env_.db()->Put(storage::Kind::kContainers, lost.config().id(), lost).ok());
  StartEngine();
  EXPECT_TRUE(absl::IsNotFound(engine_->GetContainer(*half).status()));
  EXPECT_TRUE(absl::IsNotFound(engine_->GetContainer(lost.config().id()).status()));
  EXPECT_FALSE(PathExists(lost.config().bundle_dir()));
  EXPECT_EQ(fake_->StatusOf(*half), oci::RuncStatus::kUnknown);
  EXPECT_TRUE(engine_->ListContainers().empty());
  EXPECT_EQ(engine_->recovery().cleaned_up, 2);
  // The name of the removed container is free again.
  absl::StatusOr<std::string> again = engine_->CreateContainer(pod, Ctr("half"));
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST_F(EngineTest, EventsFollowEveryTransitionInOrder) {
  std::unique_ptr<EventBus::Subscription> sub = engine_->events().Subscribe();
  std::string pod = RunPod("p");
  absl::StatusOr<std::string> id = engine_->CreateContainer(pod, Ctr("c"));
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(engine_->StartContainer(*id).ok());
  ASSERT_TRUE(engine_->StopContainer(*id, 0).ok());
  ASSERT_TRUE(engine_->RemoveContainer(*id, true).ok());
  std::vector<std::pair<std::string, EventType>> got;
  for (int i = 0; i < 6; ++i) {
    Event e;
    ASSERT_EQ(sub->Next(&e, absl::Seconds(5)), EventBus::Subscription::Result::kEvent) << i;
    got.push_back({e.container_id, e.type});
  }
  std::vector<std::pair<std::string, EventType>> want = {
      {pod, EventType::kCreated}, {pod, EventType::kStarted}, {*id, EventType::kCreated},
      {*id, EventType::kStarted}, {*id, EventType::kStopped}, {*id, EventType::kDeleted}};
  EXPECT_EQ(got, want);
}

// Found with a real kubelet 1.32 and EventedPLEG: after a kubelet restart, kubelet takes a pod's
// containers from PodSandboxStatus (and events) as listed, without sorting, and its
// FindContainerStatusByName takes the first of a name. Listed in id order, an exited attempt 0
// could come before the running attempt 1, and kubelet tried to create attempt 1 again.
TEST_F(EngineTest, APodsContainersAreListedNewestFirstAsKubeletExpects) {
  std::unique_ptr<EventBus::Subscription> sub = engine_->events().Subscribe();
  std::string pod = RunPod("p");
  std::vector<std::string> made;
  for (int attempt = 0; attempt < 6; ++attempt) {
    cri::ContainerConfig c = Ctr("c");
    c.mutable_metadata()->set_attempt(attempt);
    absl::StatusOr<std::string> id = engine_->CreateContainer(pod, c);
    ASSERT_TRUE(id.ok()) << id.status();
    made.push_back(*id);
  }
  std::vector<std::string> want(made.rbegin(), made.rend());
  std::vector<std::string> listed;
  for (const ContainerView& v : engine_->ListContainersOf(pod)) listed.push_back(v->config().id());
  EXPECT_EQ(listed, want);
  // The last event (the sixth creation) carries the pod's containers in the same order.
  Event e, last;
  while (sub->Next(&e, absl::Milliseconds(200)) == EventBus::Subscription::Result::kEvent) last = e;
  ASSERT_EQ(last.container_id, made.back());
  std::vector<std::string> in_event;
  for (const auto& c : last.containers) in_event.push_back(c->config().id());
  EXPECT_EQ(in_event, want);
}

// Audit finding 13, and what //server:cri_request_fuzz found beyond it: a log_path of "." or
// "c/.." named the log directory itself, and one whose file name is longer than NAME_MAX (or
// whose whole path is longer than PATH_MAX) cannot be made; conmon failed on each (INTERNAL for
// the caller's mistake).
TEST_F(EngineTest, LogPathsNameAFileInsideThePodsLogDirectory) {
  cri::PodSandboxConfig p = Pod("p");
  const std::string logs = env_.dir() + "/logs/p";
  p.set_log_directory(logs);
  absl::StatusOr<std::string> pod = engine_->RunPodSandbox(p, "");
  ASSERT_TRUE(pod.ok()) << pod.status();
  int i = 0;
  const std::string long_name(NAME_MAX + 1, 'a');
  std::string long_path;  // 16 names of NAME_MAX: longer than PATH_MAX in all
  for (int n = 0; n < 16; ++n) absl::StrAppend(&long_path, std::string(NAME_MAX, 'd'), "/");
  long_path += "0.log";
  for (const std::string& bad :
       std::vector<std::string>{".", "c/..", "./", "c/", "..", "../p/c.log", "/abs.log", long_name,
                                "dir/" + long_name, long_name + "/0.log", long_path, ""}) {
    cri::ContainerConfig c = Ctr(absl::StrCat("c", i++));
    c.set_log_path(bad);
    absl::StatusOr<std::string> id = engine_->CreateContainer(*pod, c);
    if (bad.empty()) {
      EXPECT_TRUE(id.ok()) << id.status();  // no log file at all
      continue;
    }
    EXPECT_TRUE(absl::IsInvalidArgument(id.status())) << bad << ": " << id.status();
  }
  cri::ContainerConfig c = Ctr("good");
  c.set_log_path("./good/../good/0.log");
  absl::StatusOr<std::string> id = engine_->CreateContainer(*pod, c);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ((*engine_->GetContainer(*id))->config().log_path(), logs + "/good/0.log");
  EXPECT_TRUE(PathExists(logs + "/good/0.log"));  // conmon (the fake) opened it
}

// Found by //server:cri_request_fuzz: a checkpoint location whose directory is missing, that is a
// directory, or whose name leaves no room for the temporary file beside it made CRIU dump first
// and the archive fail after (INTERNAL). The caller's mistake is answered before any dump.
TEST_F(EngineTest, ACheckpointLocationIsCheckedBeforeTheDump) {
  std::string pod = RunPod("p");
  absl::StatusOr<std::string> id = engine_->CreateContainer(pod, Ctr("c"));
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(engine_->StartContainer(*id).ok());
  const std::string dir = dir_.path();
  struct Case {
    std::string location;
    absl::StatusCode code;
  };
  const std::vector<Case> cases = {
      {"relative.tar", absl::StatusCode::kInvalidArgument},
      {"", absl::StatusCode::kInvalidArgument},
      {dir + "/..", absl::StatusCode::kInvalidArgument},
      {dir + "/" + std::string(250, 'x'), absl::StatusCode::kInvalidArgument},
      {dir + "/missing/c.tar", absl::StatusCode::kFailedPrecondition},
      {dir, absl::StatusCode::kFailedPrecondition},
  };
  for (const Case& c : cases) {
    absl::Status st = engine_->CheckpointContainer(*id, c.location, 0);
    EXPECT_EQ(st.code(), c.code) << c.location << ": " << st;
  }
  std::vector<std::string> calls = fake_->calls();
  EXPECT_EQ(std::count_if(calls.begin(), calls.end(),
                          [](const std::string& s) { return absl::StartsWith(s, "checkpoint"); }),
            0);
  absl::Status ok = engine_->CheckpointContainer(*id, dir + "/c.tar", 0);
  EXPECT_TRUE(ok.ok()) << ok;
  EXPECT_TRUE(PathExists(dir + "/c.tar"));
}

// Negative timeouts are the caller's mistake, refused by the engine whoever calls it.
TEST_F(EngineTest, NegativeTimeoutsAreInvalidArguments) {
  std::string pod = RunPod("p");
  absl::StatusOr<std::string> id = engine_->CreateContainer(pod, Ctr("c"));
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(engine_->StartContainer(*id).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(engine_->StopContainer(*id, -1)));
  EXPECT_TRUE(absl::IsInvalidArgument(engine_->ExecSync(*id, {"true"}, -5).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(engine_->CheckpointContainer(*id, dir_.path() + "/x", -1)));
  EXPECT_EQ(StatusOf(*id), berth::v1::CONTAINER_STATUS_RUNNING);
}

// KEP-4639: a mount naming an image is that image's files, read-only and not executable, bound
// from a read-only mount in the bundle; its image_sub_path is resolved inside the image, symlinks
// included (as if the image were /), and never leads out. The mounts go with the container.
TEST_F(EngineTest, ImageVolumesAreBoundReadOnlyFromInsideTheImage) {
  std::string pod = RunPod("p");
  cri::ContainerConfig c = Ctr("c");
  const std::vector<std::pair<std::string, std::string>> volumes = {
      {"/models", "data"}, {"/all", ""}, {"/etc-link", "root"}, {"/up", "up"}};
  for (const auto& [point, sub] : volumes) {
    cri::Mount* m = c.add_mounts();
    m->set_container_path(point);
    m->mutable_image()->set_image(fakes::FakeImages::kImageName);
    m->set_image_sub_path(sub);
  }
  absl::StatusOr<std::string> id = engine_->CreateContainer(pod, c);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(env_.images().volumes(), 4);
  absl::StatusOr<ContainerView> v = engine_->GetContainer(*id);
  ASSERT_TRUE(v.ok());
  const std::string root = (*v)->config().bundle_dir() + "/image-volumes/";
  const std::map<std::string, std::string> want = {{"/models", root + "0/data"},
                                                   {"/all", root + "1"},
                                                   {"/etc-link", root + "2/etc"},
                                                   {"/up", root + "3"}};
  nlohmann::json spec = nlohmann::json::parse((*v)->config().oci_spec());
  int found = 0;
  for (const auto& m : spec["mounts"]) {
    auto it = want.find(m.value("destination", ""));
    if (it == want.end()) continue;
    ++found;
    EXPECT_EQ(m.value("source", ""), it->second) << it->first;
    std::set<std::string> options;
    for (const auto& o : m["options"]) options.insert(o.get<std::string>());
    for (const char* o : {"ro", "nosuid", "nodev", "noexec"}) {
      EXPECT_TRUE(options.count(o)) << it->first << " lacks " << o;
    }
    EXPECT_FALSE(options.count("rw")) << it->first;
  }
  EXPECT_EQ(found, 4);
  // The request is kept as it came: the image, not the bundle path.
  EXPECT_EQ((*v)->config().cri().mounts(0).image().image(), fakes::FakeImages::kImageName);
  absl::Status removed = engine_->RemoveContainer(*id, /*force=*/true);
  ASSERT_TRUE(removed.ok()) << removed;
  EXPECT_EQ(env_.images().volumes(), 0);
}

TEST_F(EngineTest, BadImageVolumesAreRefusedNamingTheMount) {
  std::string pod = RunPod("p");
  struct Case {
    std::string image, sub;
    absl::StatusCode code;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"absent", "", absl::StatusCode::kNotFound, "mounts[0].image \"absent\""},
      {fakes::FakeImages::kImageName, "../x", absl::StatusCode::kInvalidArgument,
       "mounts[0].image_sub_path"},
      {fakes::FakeImages::kImageName, "data/../../x", absl::StatusCode::kInvalidArgument,
       "mounts[0].image_sub_path"},
      {fakes::FakeImages::kImageName, "/data", absl::StatusCode::kInvalidArgument,
       "mounts[0].image_sub_path"},
      {fakes::FakeImages::kImageName, "data/missing", absl::StatusCode::kNotFound,
       "mounts[0].image_sub_path"},
      {"", "data", absl::StatusCode::kInvalidArgument, "mounts[0].image_sub_path"},
  };
  int i = 0;
  for (const Case& k : cases) {
    cri::ContainerConfig c = Ctr(absl::StrCat("c", i++));
    cri::Mount* m = c.add_mounts();
    m->set_container_path("/vol");
    if (!k.image.empty()) m->mutable_image()->set_image(k.image);
    m->set_image_sub_path(k.sub);
    if (k.image.empty()) m->set_host_path(dir_.path());
    absl::StatusOr<std::string> id = engine_->CreateContainer(pod, c);
    EXPECT_EQ(id.status().code(), k.code) << k.image << " " << k.sub << ": " << id.status();
    EXPECT_TRUE(absl::StrContains(id.status().message(), k.field)) << id.status();
    EXPECT_EQ(env_.images().volumes(), 0) << "a failed create left its image volumes";
  }
}

}  // namespace
}  // namespace berth::engine
