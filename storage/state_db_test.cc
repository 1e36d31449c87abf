// StateDB against a real RocksDB in a temporary directory, including a writer killed mid-loop.
#include "storage/state_db.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proto/berth/v1/records.pb.h"
#include "test/util/temp_dir.h"

namespace berth::storage {
namespace {

berth::v1::Container MakeContainer(const std::string& id) {
  berth::v1::Container c;
  c.mutable_config()->set_id(id);
  c.mutable_config()->set_name("name-" + id);
  c.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_RUNNING);
  return c;
}

TEST(StateDBTest, PutGetDeleteList) {
  test::TempDir dir;
  auto db = StateDB::Open(dir.path() + "/db");
  ASSERT_TRUE(db.ok()) << db.status();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        (*db)
            ->Put(Kind::kContainers, absl::StrCat("c", i), MakeContainer(absl::StrCat("c", i)))
            .ok());
  }
  berth::v1::Container got;
  ASSERT_TRUE((*db)->Get(Kind::kContainers, "c3", &got).ok());
  EXPECT_EQ(got.config().name(), "name-c3");
  EXPECT_EQ(got.state().status(), berth::v1::CONTAINER_STATUS_RUNNING);

  ASSERT_TRUE((*db)->Delete(Kind::kContainers, "c3").ok());
  EXPECT_TRUE(absl::IsNotFound((*db)->Get(Kind::kContainers, "c3", &got)));

  std::vector<std::string> keys;
  ASSERT_TRUE((*db)
                  ->ForEach(Kind::kContainers,
                            [&](absl::string_view k, absl::string_view) {
                              keys.emplace_back(k);
                              return absl::OkStatus();
                            })
                  .ok());
  EXPECT_EQ(keys, (std::vector<std::string>{"c0", "c1", "c2", "c4"}));
  // Kinds are separate column families.
  EXPECT_TRUE(absl::IsNotFound((*db)->Get(Kind::kSandboxes, "c0", &got)));
}

TEST(StateDBTest, UnparsableRecordIsDataLoss) {
  test::TempDir dir;
  auto db = StateDB::Open(dir.path() + "/db");
  ASSERT_TRUE(db.ok());
  Batch b;
  b.PutRaw(Kind::kContainers, "bad", "\xff\xff\xff");
  ASSERT_TRUE((*db)->Commit(std::move(b)).ok());
  berth::v1::Container got;
  EXPECT_TRUE(absl::IsDataLoss((*db)->Get(Kind::kContainers, "bad", &got)));
}

TEST(StateDBTest, BatchAppliesRecordAndNameTogether) {
  test::TempDir dir;
  auto db = StateDB::Open(dir.path() + "/db");
  ASSERT_TRUE(db.ok());
  Batch b;
  b.Put(Kind::kContainers, "abc", MakeContainer("abc"));
  b.PutName("container", "name-abc", "abc");
  ASSERT_TRUE((*db)->Commit(std::move(b)).ok());
  auto id = (*db)->LookupName("container", "name-abc");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "abc");

  Batch del;
  del.Delete(Kind::kContainers, "abc");
  del.DeleteName("container", "name-abc");
  ASSERT_TRUE((*db)->Commit(std::move(del)).ok());
  EXPECT_TRUE(absl::IsNotFound((*db)->LookupName("container", "name-abc").status()));
  EXPECT_TRUE((*db)->Commit(Batch()).ok());
}

TEST(StateDBTest, ReopenAfterCloseKeepsRecords) {
  test::TempDir dir;
  {
    auto db = StateDB::Open(dir.path() + "/db");
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Put(Kind::kSandboxes, "s1", MakeContainer("s1")).ok());
  }
  auto db = StateDB::Open(dir.path() + "/db");
  ASSERT_TRUE(db.ok()) << db.status();
  berth::v1::Container got;
  EXPECT_TRUE((*db)->Get(Kind::kSandboxes, "s1", &got).ok());
}

TEST(StateDBTest, SecondOpenOfSameDirectoryIsRefused) {
  test::TempDir dir;
  auto first = StateDB::Open(dir.path() + "/db");
  ASSERT_TRUE(first.ok());
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // RocksDB's LOCK is a per-process fcntl lock: only another process sees the conflict.
    auto second = StateDB::Open(dir.path() + "/db");
    _exit(!second.ok() && absl::IsFailedPrecondition(second.status()) ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(StateDBTest, AcknowledgedWritesSurviveAKilledWriter) {
  test::TempDir dir;
  const std::string path = dir.path() + "/db";
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    auto db = StateDB::Open(path, StateDBOptions{.sync_writes = false});
    if (!db.ok()) _exit(2);
    for (uint32_t i = 0;; ++i) {
      Batch b;
      b.Put(Kind::kContainers, absl::StrCat("k", i), MakeContainer(absl::StrCat("k", i)));
      b.PutName("container", absl::StrCat("n", i), absl::StrCat("k", i));
      if (!(*db)->Commit(std::move(b)).ok()) _exit(3);
      if (write(fds[1], &i, sizeof(i)) != sizeof(i)) _exit(4);
    }
  }
  close(fds[1]);
  uint32_t last = 0;
  int acked = 0;
  while (acked < 2000 && read(fds[0], &last, sizeof(last)) == sizeof(last)) ++acked;
  kill(child, SIGKILL);
  // Acknowledgements already in the pipe count too.
  while (read(fds[0], &last, sizeof(last)) == sizeof(last)) ++acked;
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "writer failed with " << WEXITSTATUS(status);
  ASSERT_GT(acked, 0);

  auto db = StateDB::Open(path);
  ASSERT_TRUE(db.ok()) << db.status();
  for (uint32_t i = 0; i <= last; ++i) {
    berth::v1::Container got;
    ASSERT_TRUE((*db)->Get(Kind::kContainers, absl::StrCat("k", i), &got).ok()) << i;
    ASSERT_TRUE((*db)->LookupName("container", absl::StrCat("n", i)).ok()) << i;
  }
}

}  // namespace
}  // namespace berth::storage
