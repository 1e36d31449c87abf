// MeasureTree on real directories: counts, hard links, symlinks, missing trees.
#include "runtime/stats/layer_walk.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "test/util/temp_dir.h"

namespace berth::engine::stats {
namespace {

void WriteBytes(const std::string& path, size_t n) {
  std::ofstream out(path, std::ios::binary);
  out << std::string(n, 'x');
}

TEST(MeasureTreeTest, CountsEveryInodeOnceAndAllocatedBytes) {
  test::TempDir tmp;
  const std::string& d = tmp.path();
  ASSERT_EQ(mkdir((d + "/sub").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((d + "/sub/deeper").c_str(), 0755), 0);
  WriteBytes(d + "/a", 100 << 10);
  WriteBytes(d + "/sub/deeper/b", 1);
  ASSERT_EQ(link((d + "/a").c_str(), (d + "/sub/a-again").c_str()), 0);
  ASSERT_EQ(symlink("/etc", (d + "/sub/etc-link").c_str()), 0);

  absl::StatusOr<TreeUsage> u = MeasureTree(d);
  ASSERT_TRUE(u.ok()) << u.status();
  // root, sub, deeper, a (twice linked, once counted), b, the symlink itself (not /etc).
  EXPECT_EQ(u->inodes, 6u);
  EXPECT_GE(u->bytes, uint64_t{100} << 10);
  EXPECT_LT(u->bytes, uint64_t{200} << 10);  // the hard link is not counted twice
}

TEST(MeasureTreeTest, EmptyDirectoryIsOneInode) {
  test::TempDir tmp;
  absl::StatusOr<TreeUsage> u = MeasureTree(tmp.path());
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->inodes, 1u);
}

TEST(MeasureTreeTest, MissingDirectoryIsNotFoundNamingIt) {
  absl::StatusOr<TreeUsage> u = MeasureTree("/nonexistent/berth-upper");
  EXPECT_TRUE(absl::IsNotFound(u.status())) << u.status();
  EXPECT_NE(u.status().message().find("/nonexistent/berth-upper"), std::string::npos);
}

TEST(MeasureTreeTest, RegularFileIsRefused) {
  test::TempDir tmp;
  WriteBytes(tmp.path() + "/f", 1);
  EXPECT_TRUE(absl::IsFailedPrecondition(MeasureTree(tmp.path() + "/f").status()));
}

}  // namespace
}  // namespace berth::engine::stats
