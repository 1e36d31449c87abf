// util/fs: WaitForPath wakes on creation and rename and times out naming the path; MakeDirs never
// changes what exists; RemoveAll never descends into a mount or follows a link.
#include "util/fs.h"

#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
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

mode_t ModeOf(const std::string& p) {
  struct stat st;
  EXPECT_EQ(lstat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

// A log path of "../../root/x.log" made MakeDirs chmod /root to 0755.
TEST_F(FsTest, MakeDirsNeverChangesTheModeOfADirectoryThatExists) {
  const std::string existing = dir_ + "/private";
  ASSERT_EQ(mkdir(existing.c_str(), 0700), 0);
  ASSERT_TRUE(MakeDirs(existing, 0755).ok());
  EXPECT_EQ(ModeOf(existing), 0700u);
  ASSERT_TRUE(MakeDirs(existing + "/a/b", 0711).ok());
  EXPECT_EQ(ModeOf(existing), 0700u);
  EXPECT_EQ(ModeOf(existing + "/a/b"), 0711u);  // new ones get the mode, whatever the umask
}

TEST_F(FsTest, RemoveAllRemovesATreeWithoutFollowingLinks) {
  const std::string outside = dir_ + "/outside";
  ASSERT_TRUE(MakeDirs(outside + "/keep").ok());
  std::ofstream(outside + "/keep/file") << "x";
  const std::string tree = dir_ + "/tree";
  ASSERT_TRUE(MakeDirs(tree + "/a/b/c").ok());
  std::ofstream(tree + "/a/b/c/f") << "y";
  ASSERT_EQ(symlink(outside.c_str(), (tree + "/a/link").c_str()), 0);
  ASSERT_EQ(chmod((tree + "/a/b").c_str(), 0), 0);  // unreadable to others, not to root
  ASSERT_TRUE(RemoveAll(tree).ok());
  EXPECT_FALSE(PathExists(tree));
  EXPECT_TRUE(PathExists(outside + "/keep/file"));
  EXPECT_TRUE(RemoveAll(dir_ + "/absent").ok());
}

// RemoveAll used to delete everything inside a mounted filesystem before failing with EBUSY.
TEST_F(FsTest, RemoveAllNeverDescendsIntoAMount) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting needs root";
  const std::string tree = dir_ + "/tree";
  const std::string mnt = tree + "/sub/mnt";
  ASSERT_TRUE(MakeDirs(mnt).ok());
  ASSERT_EQ(mount("t", mnt.c_str(), "tmpfs", 0, "size=1m"), 0);
  std::ofstream(mnt + "/precious") << "z";
  std::ofstream(tree + "/sub/other") << "w";
  absl::Status st = RemoveAll(tree);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find(mnt), std::string::npos) << st;
  EXPECT_TRUE(PathExists(mnt + "/precious"));
  ASSERT_EQ(umount2(mnt.c_str(), MNT_DETACH), 0);
  EXPECT_TRUE(RemoveAll(tree).ok());
  EXPECT_FALSE(PathExists(tree));
}

TEST_F(FsTest, RemoveAllOfAFileOrALinkRemovesOnlyIt) {
  std::ofstream(dir_ + "/f") << "x";
  ASSERT_TRUE(MakeDirs(dir_ + "/d").ok());
  ASSERT_EQ(symlink((dir_ + "/d").c_str(), (dir_ + "/l").c_str()), 0);
  ASSERT_TRUE(RemoveAll(dir_ + "/f").ok());
  ASSERT_TRUE(RemoveAll(dir_ + "/l").ok());
  EXPECT_FALSE(PathExists(dir_ + "/f"));
  EXPECT_FALSE(PathExists(dir_ + "/l"));
  EXPECT_TRUE(PathExists(dir_ + "/d"));
}

}  // namespace
}  // namespace berth
