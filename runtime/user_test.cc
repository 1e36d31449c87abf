// User resolution against real files in a temporary rootfs, including a symlink that points out.
#include "runtime/user.h"

#include <sys/stat.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "test/util/temp_dir.h"
#include "util/fs.h"

namespace berth::engine {
namespace {

class UserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeDirs(root_.path() + "/etc").ok());
    ASSERT_TRUE(WriteFileAtomic(root_.path() + "/etc/passwd",
                                "root:x:0:0:root:/root:/bin/sh\n"
                                "www:x:33:33:www:/var/www:/bin/false\n"
                                "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
                    .ok());
    ASSERT_TRUE(WriteFileAtomic(root_.path() + "/etc/group",
                                "root:x:0:\nwww:x:33:\nstaff:x:50:www,nobody\naudio:x:29:www\n")
                    .ok());
  }
  test::TempDir root_;
};

TEST_F(UserTest, EmptyUserIsRoot) {
  auto u = ResolveUser(root_.path(), {});
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->uid, 0u);
  EXPECT_EQ(u->gid, 0u);
  EXPECT_EQ(u->home, "/root");
}

TEST_F(UserTest, NamedUserGetsItsGroupsAndHome) {
  auto u = ResolveUser(root_.path(), {.image_user = "www"});
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 33u);
  EXPECT_EQ(u->gid, 33u);
  EXPECT_EQ(u->home, "/var/www");
  EXPECT_EQ(u->additional_gids, (std::vector<uint32_t>{50, 29}));
}

TEST_F(UserTest, NumericUserNotInPasswdHasGidZero) {
  auto u = ResolveUser(root_.path(), {.image_user = "1234"});
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->uid, 1234u);
  EXPECT_EQ(u->gid, 0u);
}

TEST_F(UserTest, UserAndGroupByName) {
  auto u = ResolveUser(root_.path(), {.image_user = "nobody:staff"});
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->uid, 65534u);
  EXPECT_EQ(u->gid, 50u);
}

TEST_F(UserTest, CriFieldsOverrideTheImage) {
  UserRequest r{.image_user = "www",
                .has_uid = true,
                .uid = 1000,
                .has_gid = true,
                .gid = 3000,
                .supplemental_groups = {4000, 4000}};
  auto u = ResolveUser(root_.path(), r);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->uid, 1000u);
  EXPECT_EQ(u->gid, 3000u);
  EXPECT_EQ(u->additional_gids, (std::vector<uint32_t>{4000}));
}

TEST_F(UserTest, UnknownNameIsInvalidArgument) {
  EXPECT_TRUE(absl::IsInvalidArgument(ResolveUser(root_.path(), {.username = "ghost"}).status()));
  EXPECT_TRUE(
      absl::IsInvalidArgument(ResolveUser(root_.path(), {.image_user = "www:ghosts"}).status()));
}

TEST_F(UserTest, SymlinkOutOfTheRootStaysInside) {
  test::TempDir other;
  ASSERT_TRUE(MakeDirs(other.path() + "/etc").ok());
  ASSERT_TRUE(WriteFileAtomic(other.path() + "/etc/passwd", "evil:x:7:7::/:/bin/sh\n").ok());
  ASSERT_EQ(unlink((root_.path() + "/etc/passwd").c_str()), 0);
  // An absolute link resolves against the container root, not the host.
  ASSERT_EQ(symlink((other.path() + "/etc/passwd").c_str(), (root_.path() + "/etc/passwd").c_str()),
            0);
  EXPECT_TRUE(absl::IsNotFound(ReadFileInRoot(root_.path(), "/etc/passwd").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ResolveUser(root_.path(), {.image_user = "evil"}).status()));
}

// A FIFO as the image's /etc/passwd used to block CreateContainer forever in open().
TEST_F(UserTest, FifoPasswdIsRefusedWithoutBlocking) {
  ASSERT_EQ(unlink((root_.path() + "/etc/passwd").c_str()), 0);
  ASSERT_EQ(mkfifo((root_.path() + "/etc/passwd").c_str(), 0644), 0);
  absl::StatusOr<std::string> r = ReadFileInRoot(root_.path(), "/etc/passwd");
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  // A user that would need the file is then unknown; root needs nothing from it.
  EXPECT_TRUE(absl::IsInvalidArgument(ResolveUser(root_.path(), {.image_user = "www"}).status()));
  EXPECT_TRUE(ResolveUser(root_.path(), {}).ok());
}

TEST_F(UserTest, DirectoryOrHugePasswdIsRefused) {
  ASSERT_EQ(unlink((root_.path() + "/etc/group").c_str()), 0);
  ASSERT_TRUE(MakeDirs(root_.path() + "/etc/group").ok());
  EXPECT_TRUE(absl::IsInvalidArgument(ReadFileInRoot(root_.path(), "/etc/group").status()));
  ASSERT_TRUE(WriteFileAtomic(root_.path() + "/etc/passwd", std::string(5 << 20, '#')).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(ReadFileInRoot(root_.path(), "/etc/passwd").status()));
}

// KEP-3619: Merge (default) adds the image's /etc/group memberships; Strict only the request's.
TEST_F(UserTest, SupplementalGroupsPolicyMergeAndStrict) {
  UserRequest merge{.image_user = "www", .supplemental_groups = {1000}};
  auto u = ResolveUser(root_.path(), merge);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->additional_gids, (std::vector<uint32_t>{50, 29, 1000}));
  UserRequest strict = merge;
  strict.strict_supplemental_groups = true;
  u = ResolveUser(root_.path(), strict);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->gid, 33u);
  EXPECT_EQ(u->additional_gids, (std::vector<uint32_t>{1000}));
}

}  // namespace
}  // namespace berth::engine
