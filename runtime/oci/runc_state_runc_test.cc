// The in-process reader against real runc: for a busybox container taken through created,
// running, paused, running again and stopped, it answers what `runc state` answers (status and
// pid) without falling back, and NotFound once runc has deleted it.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/oci/oci_runtime.h"
#include "runtime/oci/runc_state.h"
#include "test/util/temp_dir.h"
#include "util/fd.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace berth::oci {
namespace {

using json = nlohmann::json;

class RealRuncStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "runc needs root";
    absl::StatusOr<std::string> runc = FindProgram("runc");
    ASSERT_TRUE(runc.ok()) << runc.status();
    runc_ = *runc;
    absl::StatusOr<std::string> busybox = ReadFile("/bin/busybox");  // Debian's busybox-static
    ASSERT_TRUE(busybox.ok()) << busybox.status();
    root_ = tmp_.path() + "/runc";
    bundle_ = tmp_.path() + "/bundle";
    ASSERT_TRUE(MakeDirs(bundle_ + "/rootfs/bin").ok());
    ASSERT_TRUE(WriteFileAtomic(bundle_ + "/rootfs/bin/busybox", *busybox, 0755).ok());
    ASSERT_EQ(symlink("busybox", (bundle_ + "/rootfs/bin/sleep").c_str()), 0);
    Runc({"spec", "--bundle", bundle_}, /*with_root=*/false);
    json spec = json::parse(ReadFile(bundle_ + "/config.json").value(), nullptr, false);
    ASSERT_TRUE(spec.is_object());
    spec["process"]["args"] = {"/bin/sleep", "1000"};
    spec["process"]["terminal"] = false;
    // A leaf of its own, which `runc delete` removes.
    spec["linux"]["cgroupsPath"] = absl::StrCat("/berth-runc-state-test-", getpid());
    ASSERT_TRUE(WriteFileAtomic(bundle_ + "/config.json", spec.dump()).ok());
  }

  void TearDown() override {
    if (!runc_.empty())
      RunProcess({runc_, "--root", root_, "delete", "--force", kId}).IgnoreError();
  }

  RunResult Runc(std::vector<std::string> args, bool with_root = true) {
    std::vector<std::string> argv = {runc_};
    if (with_root) argv.insert(argv.end(), {"--root", root_});
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<RunResult> r = RunProcess(argv, RunOptions{.timeout = absl::Seconds(60)});
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return RunResult{};
    EXPECT_TRUE(args[0] == "state" || r->ok()) << DescribeFailure(argv, *r);
    return *r;
  }

  // `runc create` leaves the container's init holding its stdio: /dev/null, not a pipe.
  void Create() {
    UniqueFd null(open("/dev/null", O_RDWR | O_CLOEXEC));
    absl::StatusOr<pid_t> pid =
        SpawnProcess({runc_, "--root", root_, "create", "--bundle", bundle_, kId}, RunOptions{},
                     null.get(), null.get(), null.get());
    ASSERT_TRUE(pid.ok()) << pid.status();
    absl::StatusOr<int> status = WaitProcess(*pid);
    ASSERT_TRUE(status.ok() && WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  }

  // What `runc state` prints; nullopt when runc does not know the container.
  std::optional<RuncState> RuncSays() {
    RunResult r = Runc({"state", kId});
    if (!r.ok()) {
      EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
      return std::nullopt;
    }
    json j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.out;
    if (!j.is_object()) return std::nullopt;
    return RuncState{ParseRuncStatus(j.value("status", "")), j.value("pid", 0)};
  }

  // The reader, straight and through OciRuntime, answers as runc does.
  void ExpectSameAnswer(RuncStatus want) {
    SCOPED_TRACE(RuncStatusName(want));
    std::optional<RuncState> runc = RuncSays();
    ASSERT_TRUE(runc.has_value());
    EXPECT_EQ(RuncStatusName(runc->status), std::string(RuncStatusName(want)));
    absl::StatusOr<RuncState> read = ReadRuncState(root_, kId);
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(RuncStatusName(read->status), std::string(RuncStatusName(runc->status)));
    EXPECT_EQ(read->pid, runc->pid);
    absl::StatusOr<RuncState> via = Runtime().State(kId);
    ASSERT_TRUE(via.ok()) << via.status();
    EXPECT_EQ(*via, *runc);
  }

  OciRuntime Runtime() {
    OciRuntimeOptions o;
    o.runtime_path = runc_;
    o.runc_root = root_;
    return OciRuntime(o);
  }

  static constexpr char kId[] = "berth-runc-state-test";
  test::TempDir tmp_;
  std::string runc_, root_, bundle_;
};

TEST_F(RealRuncStateTest, CreatedRunningPausedStoppedAndDeletedAsRuncSaysThem) {
  absl::StatusOr<RuncState> none = ReadRuncState(root_, kId);
  EXPECT_TRUE(absl::IsNotFound(none.status())) << none.status();
  EXPECT_FALSE(RuncSays().has_value());

  Create();
  ExpectSameAnswer(RuncStatus::kCreated);
  Runc({"start", kId});
  ExpectSameAnswer(RuncStatus::kRunning);
  Runc({"pause", kId});
  ExpectSameAnswer(RuncStatus::kPaused);
  Runc({"resume", kId});
  ExpectSameAnswer(RuncStatus::kRunning);
  Runc({"kill", kId, "KILL"});
  for (int i = 0; i < 200; ++i) {
    std::optional<RuncState> s = RuncSays();
    if (s && s->status == RuncStatus::kStopped) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ExpectSameAnswer(RuncStatus::kStopped);
  Runc({"delete", kId});
  none = ReadRuncState(root_, kId);
  EXPECT_TRUE(absl::IsNotFound(none.status())) << none.status();
  EXPECT_TRUE(absl::IsNotFound(Runtime().State(kId).status()));
  EXPECT_FALSE(RuncSays().has_value());
}

// A container paused and then killed stays paused to runc (it asks the freezer first): the
// reader agrees, and both see it stopped once thawed.
TEST_F(RealRuncStateTest, AKilledContainerThatIsStillFrozenIsPaused) {
  Create();
  Runc({"start", kId});
  Runc({"pause", kId});
  std::optional<RuncState> s = RuncSays();
  ASSERT_TRUE(s.has_value());
  ASSERT_EQ(kill(s->pid, SIGKILL), 0);
  ExpectSameAnswer(RuncStatus::kPaused);
  Runc({"resume", kId});
  for (int i = 0; i < 200; ++i) {
    s = RuncSays();
    if (s && s->status == RuncStatus::kStopped) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ExpectSameAnswer(RuncStatus::kStopped);
}

}  // namespace
}  // namespace berth::oci
