// util/fs: WaitForPath wakes on creation and rename, and times out naming the path.
#include "util/fs.h"

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "gtest/gtest.h"

namespace berth {
namespace {

class FsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-fs-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(FsTest, WaitForPathReturnsAtOnceForAnExistingFile) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/f", "x").ok());
  EXPECT_TRUE(WaitForPath(dir_ + "/f", 0).ok());
}

TEST_F(FsTest, WaitForPathWakesWhenTheFileIsCreatedOrRenamedIn) {
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    WriteFileAtomic(dir_ + "/renamed", "x").IgnoreError();  // temp file + rename
  });
  auto t0 = std::chrono::steady_clock::now();
  absl::Status st = WaitForPath(dir_ + "/renamed", 10000);
  writer.join();
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST_F(FsTest, WaitForPathTimesOutNamingThePath) {
  absl::Status st = WaitForPath(dir_ + "/never", 50);
  EXPECT_TRUE(absl::IsDeadlineExceeded(st)) << st;
  EXPECT_NE(st.message().find("never"), std::string::npos);
}

TEST_F(FsTest, WaitForPathInAMissingDirectoryFails) {
  EXPECT_FALSE(WaitForPath(dir_ + "/nodir/f", 50).ok());
}

}  // namespace
}  // namespace berth
