// RunProcess with real programs: output capture, stdin, exit codes, timeouts, truncation.
#include "util/subprocess.h"

#include "gtest/gtest.h"

namespace berth {
namespace {

TEST(SubprocessTest, CapturesOutputAndExitCode) {
  auto r = RunProcess({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->ok());
}

TEST(SubprocessTest, FeedsStdin) {
  RunOptions o;
  o.stdin_data = std::string(200000, 'x');
  auto r = RunProcess({"wc", "-c"}, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "200000\n");
}

TEST(SubprocessTest, KillsAfterTimeout) {
  RunOptions o;
  o.timeout = absl::Milliseconds(200);
  auto r = RunProcess({"sleep", "30"}, o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->term_signal, SIGKILL);
}

TEST(SubprocessTest, TruncatesOutputBeyondLimit) {
  RunOptions o;
  o.max_output = 10;
  auto r = RunProcess({"sh", "-c", "head -c 100000 /dev/zero"}, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out.size(), 10u);
  EXPECT_TRUE(r->out_truncated);
}

TEST(SubprocessTest, AChildThatIgnoresStdinDoesNotKillTheCaller) {
  RunOptions o;
  o.stdin_data = std::string(1 << 20, 'x');  // more than a pipe holds
  auto r = RunProcess({"sh", "-c", "exit 3"}, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 3);
}

TEST(SubprocessTest, MissingProgramIsNotFound) {
  auto r = RunProcess({"berth-no-such-program"});
  EXPECT_TRUE(absl::IsNotFound(r.status()));
}

TEST(SubprocessTest, EnvironmentIsAdded) {
  RunOptions o;
  o.env = {"BERTH_TEST_VALUE=42"};
  auto r = RunProcess({"sh", "-c", "echo $BERTH_TEST_VALUE"}, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "42\n");
}

}  // namespace
}  // namespace berth
