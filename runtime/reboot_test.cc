// Boot and clean-shutdown markers: a reboot, an emptied state dir, a restart, an old berthd's dir.
#include "runtime/reboot.h"

#include "gtest/gtest.h"
#include "test/util/temp_dir.h"
#include "util/fs.h"

namespace berth::engine {
namespace {

class RebootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    files_.root = dir_.path() + "/root";
    files_.state_dir = dir_.path() + "/run";
    files_.kernel_boot_id = dir_.path() + "/boot_id";
    ASSERT_TRUE(MakeDirs(files_.root).ok());
    ASSERT_TRUE(MakeDirs(files_.state_dir).ok());
    Boot("11111111-aaaa");
  }
  void Boot(const std::string& id) {
    ASSERT_TRUE(WriteFileAtomic(files_.kernel_boot_id, id + "\n").ok());
  }
  BootCheck Check() {
    absl::StatusOr<BootCheck> c = CheckBoot(files_);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.value_or(BootCheck{});
  }

  test::TempDir dir_;
  BootFiles files_;
};

TEST_F(RebootTest, AFirstStartReadsAsAnEmptiedStateDirAndNoCleanShutdown) {
  BootCheck c = Check();
  EXPECT_TRUE(c.rebooted);
  EXPECT_FALSE(c.clean_shutdown);
  EXPECT_EQ(c.boot_id, "11111111-aaaa");
}

TEST_F(RebootTest, ARestartInTheSameBootIsNoReboot) {
  ASSERT_TRUE(RecordBoot(files_, Check().boot_id).ok());
  BootCheck c = Check();
  EXPECT_FALSE(c.rebooted) << c.reason;
  EXPECT_FALSE(c.clean_shutdown);  // a crash: nothing recorded a clean stop
}

TEST_F(RebootTest, ACleanStopIsSeenOnceThenConsumed) {
  ASSERT_TRUE(RecordBoot(files_, Check().boot_id).ok());
  ASSERT_TRUE(RecordCleanShutdown(files_).ok());
  EXPECT_TRUE(Check().clean_shutdown);
  // Consumed: a crash after this start must not read as a clean stop.
  EXPECT_FALSE(Check().clean_shutdown);
}

TEST_F(RebootTest, AnEmptiedStateDirIsAReboot) {
  ASSERT_TRUE(RecordBoot(files_, Check().boot_id).ok());
  ASSERT_TRUE(RemoveAll(files_.state_dir).ok());
  ASSERT_TRUE(MakeDirs(files_.state_dir).ok());
  BootCheck c = Check();
  EXPECT_TRUE(c.rebooted);
  EXPECT_NE(c.reason.find("no boot marker"), std::string::npos) << c.reason;
}

TEST_F(RebootTest, AStateDirFromAnotherBootIsAReboot) {
  // A state dir that is not a tmpfs keeps its marker over a reboot; the kernel's boot id moved.
  ASSERT_TRUE(RecordBoot(files_, Check().boot_id).ok());
  Boot("22222222-bbbb");
  BootCheck c = Check();
  EXPECT_TRUE(c.rebooted);
  EXPECT_NE(c.reason.find("11111111-aaaa"), std::string::npos) << c.reason;
  EXPECT_NE(c.reason.find("22222222-bbbb"), std::string::npos) << c.reason;
}

TEST_F(RebootTest, AnOldBerthdsStateWithRuncStateButNoMarkerIsNoReboot) {
  ASSERT_TRUE(MakeDirs(files_.state_dir + "/runc/0123abcd").ok());
  EXPECT_FALSE(Check().rebooted);
}

}  // namespace
}  // namespace berth::engine
