// The in-process `runc state` over fake runc roots, and OciRuntime::State's fallback to runc.
#include "runtime/oci/runc_state.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/oci/oci_runtime.h"
#include "test/util/temp_dir.h"
#include "util/fs.h"

namespace berth::oci {
namespace {

using json = nlohmann::json;

// Field 22 of /proc/<pid>/stat, read independently of the code under test.
uint64_t StartTime(pid_t pid) {
  std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat")).value();
  std::vector<std::string> f = absl::StrSplit(stat.substr(stat.rfind(')') + 2), ' ');
  return std::stoull(f.at(22 - 3));
}

class RuncStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path() + "/runc";
    cgroups_ = tmp_.path() + "/cgroup";
    ASSERT_TRUE(MakeDirs(Dir()).ok());
    ASSERT_TRUE(MakeDirs(cgroups_ + "/freezer/c1").ok());
    ASSERT_TRUE(MakeDirs(cgroups_ + "/unified/c1").ok());
    options_.cgroup_root = cgroups_;
    options_.unified = false;
    options_.systemd_running = false;
    state_ = {
        {"id", "c1"},
        {"init_process_pid", getpid()},
        {"init_process_start", StartTime(getpid())},
        {"created", "2026-12-02T00:42:08.672019416Z"},
        {"rootless", false},
        {"cgroup_paths",
         {{"", cgroups_ + "/unified/c1"},
          {"freezer", cgroups_ + "/freezer/c1"},
          {"memory", cgroups_ + "/memory/c1"}}},
        {"config",
         {{"rootfs", "/x"},
          {"cgroups",
           {{"path", "/c1"},
            {"devices", json::array()},
            {"memory", 0},
            {"unified", nullptr},
            {"Systemd", false},
            {"Rootless", false}}}}},
        {"external_descriptors", {"/dev/null", "/dev/null", "/dev/null"}},
    };
  }

  std::string Dir() const { return root_ + "/c1"; }
  void WriteState() { ASSERT_TRUE(WriteFileAtomic(Dir() + "/state.json", state_.dump()).ok()); }
  void Write(const std::string& rel, const std::string& text) {
    ASSERT_TRUE(WriteFileAtomic(cgroups_ + "/" + rel, text).ok());
  }
  absl::StatusOr<RuncState> Read(const std::string& id = "c1") {
    return ReadRuncState(root_, id, options_);
  }
  // The reader declines: the caller is to ask runc.
  void ExpectUndecided(const std::string& id = "c1") {
    absl::StatusOr<RuncState> s = Read(id);
    ASSERT_FALSE(s.ok()) << RuncStatusName(s->status);
    EXPECT_FALSE(absl::IsNotFound(s.status())) << s.status();
  }
  void ExpectState(RuncStatus status, pid_t pid) {
    absl::StatusOr<RuncState> s = Read();
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(RuncStatusName(s->status), std::string(RuncStatusName(status)));
    EXPECT_EQ(s->pid, pid);
  }

  test::TempDir tmp_;
  std::string root_, cgroups_;
  RuncStateReaderOptions options_;
  json state_;
};

TEST_F(RuncStateTest, RunningWhileTheInitProcessLivesWithItsStartTime) {
  WriteState();
  ExpectState(RuncStatus::kRunning, getpid());
  Write("freezer/c1/freezer.state", "THAWED\n");
  ExpectState(RuncStatus::kRunning, getpid());
}

TEST_F(RuncStateTest, StoppedWhenThePidIsAnotherProcessOrNone) {
  state_["init_process_start"] = StartTime(getpid()) + 1;  // the pid was reused
  WriteState();
  ExpectState(RuncStatus::kStopped, 0);

  pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_GT(child, 0);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
  state_["init_process_pid"] = child;  // gone
  WriteState();
  ExpectState(RuncStatus::kStopped, 0);

  state_["init_process_pid"] = 0;
  WriteState();
  ExpectState(RuncStatus::kStopped, 0);
}

TEST_F(RuncStateTest, AZombieInitIsStopped) {
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  pid_t child = fork();
  if (child == 0) {
    close(go[1]);  // so that the parent's close is EOF here
    char c;
    (void)!read(go[0], &c, 1);
    _exit(0);
  }
  ASSERT_GT(child, 0);
  state_["init_process_pid"] = child;
  state_["init_process_start"] = StartTime(child);
  WriteState();
  ExpectState(RuncStatus::kRunning, child);
  close(go[1]);
  // Not reaped yet: a zombie with the same start time.
  for (int i = 0; i < 500; ++i) {
    std::string stat = ReadFile(absl::StrCat("/proc/", child, "/stat")).value_or("");
    if (stat.find(") Z ") != std::string::npos) break;
    usleep(10000);
  }
  ExpectState(RuncStatus::kStopped, 0);
  waitpid(child, nullptr, 0);
  close(go[0]);
}

TEST_F(RuncStateTest, CreatedWhileTheExecFifoExists) {
  WriteState();
  ASSERT_EQ(mkfifo((Dir() + "/exec.fifo").c_str(), 0622), 0);
  ExpectState(RuncStatus::kCreated, getpid());
  // A dead init with its fifo left is stopped: the process decides first.
  state_["init_process_start"] = StartTime(getpid()) + 1;
  WriteState();
  ExpectState(RuncStatus::kStopped, 0);
}

TEST_F(RuncStateTest, PausedWhenItsOwnFreezerIsFrozenAliveOrNot) {
  WriteState();
  Write("freezer/c1/freezer.state", "FROZEN\n");
  Write("freezer/c1/freezer.self_freezing", "1\n");
  ExpectState(RuncStatus::kPaused, getpid());
  // runc asks the freezer before the process: a frozen cgroup is paused even with init gone.
  state_["init_process_start"] = StartTime(getpid()) + 1;
  WriteState();
  ExpectState(RuncStatus::kPaused, getpid());
  // No self_freezing (an old kernel): FROZEN as it is.
  ASSERT_EQ(unlink((cgroups_ + "/freezer/c1/freezer.self_freezing").c_str()), 0);
  ExpectState(RuncStatus::kPaused, getpid());
}

TEST_F(RuncStateTest, FrozenOnlyThroughAnAncestorIsNotPaused) {
  WriteState();
  Write("freezer/c1/freezer.state", "FROZEN\n");
  Write("freezer/c1/freezer.self_freezing", "0\n");
  ExpectState(RuncStatus::kRunning, getpid());
}

TEST_F(RuncStateTest, AFreezerMidChangeOrUnknownIsLeftToRunc) {
  WriteState();
  for (const char* text : {"FREEZING\n", "SLUSHY\n"}) {
    Write("freezer/c1/freezer.state", text);
    ExpectUndecided();
  }
  Write("freezer/c1/freezer.state", "FROZEN\n");
  Write("freezer/c1/freezer.self_freezing", "2\n");
  ExpectUndecided();
}

TEST_F(RuncStateTest, NoFreezerCgroupIsNotPaused) {
  state_["cgroup_paths"].erase("freezer");
  WriteState();
  ExpectState(RuncStatus::kRunning, getpid());
  // fs's manager takes an empty freezer path as none; systemd's legacy manager fails on it.
  state_["cgroup_paths"]["freezer"] = "";
  WriteState();
  ExpectState(RuncStatus::kRunning, getpid());
  state_["config"]["cgroups"]["Systemd"] = true;
  options_.systemd_running = true;
  WriteState();
  ExpectUndecided();
}

TEST_F(RuncStateTest, CgroupV2ReadsCgroupFreezeAndEvents) {
  options_.unified = true;
  state_["cgroup_paths"] = {{"", cgroups_ + "/unified/c1"}};
  WriteState();
  ExpectState(RuncStatus::kRunning, getpid());  // no cgroup.freeze: an old kernel
  Write("unified/c1/cgroup.freeze", "0\n");
  ExpectState(RuncStatus::kRunning, getpid());
  Write("unified/c1/cgroup.freeze", "1\n");
  Write("unified/c1/cgroup.events", "populated 1\nfrozen 1\n");
  ExpectState(RuncStatus::kPaused, getpid());
  Write("unified/c1/cgroup.events", "populated 1\n");
  ExpectState(RuncStatus::kRunning, getpid());  // no "frozen" line: runc says undefined
  Write("unified/c1/cgroup.events", "populated 1\nfrozen 0\n");
  ExpectUndecided();  // freezing: runc would wait for it
  Write("unified/c1/cgroup.freeze", "x\n");
  ExpectUndecided();
  // runc 1.1 wants exactly one unified path; more, or none, is not read here.
  state_["cgroup_paths"]["memory"] = cgroups_ + "/memory/c1";
  WriteState();
  ExpectUndecided();
  state_["cgroup_paths"] = json::object();
  WriteState();
  ExpectUndecided();
}

TEST_F(RuncStateTest, FreezerFilesOnlyBelowTheCgroupRoot) {
  for (const std::string& path :
       {tmp_.path() + "/elsewhere/c1", cgroups_ + "/freezer/../freezer/c1", cgroups_ + "/freezer/",
        std::string("relative/c1")}) {
    SCOPED_TRACE(path);
    state_["cgroup_paths"]["freezer"] = path;
    WriteState();
    ExpectUndecided();
  }
  // A symlink inside it is refused on v2 (as runc's openat2 refuses it).
  options_.unified = true;
  ASSERT_EQ(symlink("c1", (cgroups_ + "/unified/link").c_str()), 0);
  Write("unified/c1/cgroup.freeze", "0\n");
  state_["cgroup_paths"] = {{"", cgroups_ + "/unified/link"}};
  WriteState();
  ExpectUndecided();
}

TEST_F(RuncStateTest, NoContainerDirectoryIsNotFound) {
  absl::StatusOr<RuncState> s = Read("c2");
  EXPECT_TRUE(absl::IsNotFound(s.status())) << s.status();
  s = ReadRuncState(tmp_.path() + "/no-root", "c1", options_);
  EXPECT_TRUE(absl::IsNotFound(s.status())) << s.status();
}

TEST_F(RuncStateTest, AStateFileThatIsMissingLinkedOrOddIsLeftToRunc) {
  ExpectUndecided();  // the directory without state.json: runc create has not written it yet
  WriteState();
  ASSERT_EQ(rename((Dir() + "/state.json").c_str(), (Dir() + "/real.json").c_str()), 0);
  ASSERT_EQ(symlink("real.json", (Dir() + "/state.json").c_str()), 0);
  ExpectUndecided();
  ASSERT_EQ(unlink((Dir() + "/state.json").c_str()), 0);
  ASSERT_EQ(mkfifo((Dir() + "/state.json").c_str(), 0600), 0);
  ExpectUndecided();  // and does not block on the fifo
  ASSERT_EQ(unlink((Dir() + "/state.json").c_str()), 0);
  ASSERT_EQ(mkdir((Dir() + "/state.json").c_str(), 0700), 0);
  ExpectUndecided();
  ASSERT_EQ(rmdir((Dir() + "/state.json").c_str()), 0);
  // The container directory itself a symlink.
  ASSERT_TRUE(MakeDirs(root_ + "/real").ok());
  ASSERT_EQ(symlink("real", (root_ + "/c3").c_str()), 0);
  ASSERT_TRUE(WriteFileAtomic(root_ + "/real/state.json", state_.dump()).ok());
  ExpectUndecided("c3");
}

TEST_F(RuncStateTest, AnOversizedStateFileIsRefused) {
  std::string text = state_.dump();
  text.append((size_t{4} << 20) - text.size() + 1, ' ');  // valid JSON, one byte too many
  ASSERT_TRUE(WriteFileAtomic(Dir() + "/state.json", text).ok());
  ExpectUndecided();
  text.resize(size_t{4} << 20);
  ASSERT_TRUE(WriteFileAtomic(Dir() + "/state.json", text).ok());
  ExpectState(RuncStatus::kRunning, getpid());
}

TEST_F(RuncStateTest, BadJsonOrAnUnknownLayoutIsLeftToRunc) {
  for (const char* text : {"", "{", "[1]", "\"x\"", "{\"init_process_pid\": 1", "\xff\xfe"}) {
    ASSERT_TRUE(WriteFileAtomic(Dir() + "/state.json", text).ok());
    ExpectUndecided();
  }
  const json good = state_;
  auto with = [&](auto change) {
    state_ = good;
    change(state_);
    WriteState();
    ExpectUndecided();
  };
  with([](json& j) { j.erase("init_process_pid"); });
  with([](json& j) { j["init_process_pid"] = "1"; });
  with([](json& j) { j["init_process_pid"] = 1.5; });
  with([](json& j) { j.erase("init_process_start"); });
  with([](json& j) { j["init_process_start"] = -1; });
  with([](json& j) { j["init_process_start"] = nullptr; });
  with([](json& j) { j["cgroup_paths"] = nullptr; });
  with([](json& j) { j["cgroup_paths"]["freezer"] = 7; });
  with([](json& j) { j.erase("config"); });
  with([](json& j) { j["config"]["cgroups"] = nullptr; });
  with([](json& j) { j["config"]["cgroups"]["Systemd"] = "yes"; });
  with([](json& j) { j["config"]["cgroups"]["Rootless"] = true; });
  // v1 managers refuse unified resources, or none at all.
  with([](json& j) { j["config"]["cgroups"]["unified"] = {{"memory.max", "1"}}; });
  with([](json& j) { j["config"]["cgroups"].erase("devices"); });
  // The systemd driver on a host without systemd: runc fails.
  with([](json& j) { j["config"]["cgroups"]["Systemd"] = true; });
}

TEST_F(RuncStateTest, IdsRuncWouldRefuseAreLeftToIt) {
  WriteState();
  for (const char* id : {"", ".", "..", "../c1", "c1/", "a/b", "c 1", "c1\n", "é"}) {
    SCOPED_TRACE(id);
    ExpectUndecided(id);
  }
  ASSERT_TRUE(MakeDirs(root_ + "/a+b,c-d.e_F").ok());
  ASSERT_TRUE(WriteFileAtomic(root_ + "/a+b,c-d.e_F/state.json", state_.dump()).ok());
  EXPECT_TRUE(Read("a+b,c-d.e_F").ok());
  EXPECT_FALSE(ReadRuncState("relative/root", "c1", options_).ok());
}

TEST(RuncVersionTest, OnlyRunc11IsRead) {
  EXPECT_TRUE(ReadableRuncVersion(
      "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\n"));
  EXPECT_TRUE(ReadableRuncVersion("runc version 1.1.12\n"));
  EXPECT_FALSE(ReadableRuncVersion("runc version 1.2.0\n"));
  EXPECT_FALSE(ReadableRuncVersion("runc version 1.0.3\n"));
  EXPECT_FALSE(ReadableRuncVersion("crun version 1.8.1\ncommit: 1\n"));
  EXPECT_FALSE(ReadableRuncVersion("commit: x\nrunc version 1.1.5\n"));
  EXPECT_FALSE(ReadableRuncVersion(""));
}

// OciRuntime::State over a stand-in runtime: a script that logs its arguments and answers
// `state` with pid 4242, so which of reader and runc answered shows.
class OciRuntimeStateTest : public RuncStateTest {
 protected:
  void SetUp() override {
    RuncStateTest::SetUp();
    calls_ = tmp_.path() + "/calls";
    SetVersion("runc version 1.1.5+ds1");
  }
  void SetVersion(const std::string& version, int version_exit = 0) {
    ASSERT_TRUE(
        WriteFileAtomic(
            tmp_.path() + "/runc-stand-in",
            absl::StrCat("#!/bin/sh\necho \"$*\" >> ", calls_,
                         "\nif [ \"$1\" = --version ]; then echo '", version, "'; exit ",
                         version_exit, "; fi\necho '{\"status\":\"running\",\"pid\":4242}'\n"),
            0755)
            .ok());
  }
  OciRuntime MakeRuntime(bool in_process = true) {
    OciRuntimeOptions o;
    o.runtime_path = tmp_.path() + "/runc-stand-in";
    o.runc_root = root_;
    o.read_state_in_process = in_process;
    o.state_reader = options_;
    return OciRuntime(o);
  }
  std::vector<std::string> Calls() {
    std::string text = ReadFile(calls_).value_or("");
    return absl::StrSplit(text, '\n', absl::SkipEmpty());
  }
  std::string calls_;
};

TEST_F(OciRuntimeStateTest, AReadableStateNeedsNoRuncProcess) {
  WriteState();
  OciRuntime rt = MakeRuntime();
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<RuncState> s = rt.State("c1");
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(*s, (RuncState{RuncStatus::kRunning, getpid()}));
  }
  EXPECT_TRUE(absl::IsNotFound(rt.State("gone").status()));
  // runc was asked its version once, never a state.
  EXPECT_EQ(Calls(), std::vector<std::string>{"--version"});
}

TEST_F(OciRuntimeStateTest, WhatTheReaderCannotDecideRuncAnswers) {
  ASSERT_TRUE(WriteFileAtomic(Dir() + "/state.json", "{not json").ok());
  OciRuntime rt = MakeRuntime();
  absl::StatusOr<RuncState> s = rt.State("c1");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s, (RuncState{RuncStatus::kRunning, 4242}));
  EXPECT_EQ(Calls(),
            (std::vector<std::string>{"--version", absl::StrCat("--root ", root_, " state c1")}));
}

TEST_F(OciRuntimeStateTest, AnotherRuntimeOrTheOptionOffAlwaysRunsIt) {
  WriteState();
  SetVersion("crun version 1.8.1");
  OciRuntime crun = MakeRuntime();
  EXPECT_EQ(crun.State("c1")->pid, 4242);
  EXPECT_EQ(crun.State("c1")->pid, 4242);
  OciRuntime off = MakeRuntime(/*in_process=*/false);
  EXPECT_EQ(off.State("c1")->pid, 4242);
  std::vector<std::string> calls = Calls();
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "--version"), 1);  // crun's, once
  EXPECT_EQ(calls.size(), 4u);
}

TEST_F(OciRuntimeStateTest, ARuntimeThatFailsItsVersionIsAskedAgainLater) {
  WriteState();
  SetVersion("runc version 1.1.5", /*version_exit=*/1);
  OciRuntime rt = MakeRuntime();
  EXPECT_EQ(rt.State("c1")->pid, 4242);
  SetVersion("runc version 1.1.5");
  EXPECT_EQ(rt.State("c1")->pid, getpid());
  EXPECT_EQ(rt.State("c1")->pid, getpid());
  std::vector<std::string> calls = Calls();
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "--version"), 2);
}

}  // namespace
}  // namespace berth::oci
