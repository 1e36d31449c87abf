// Running a helper program (bash, systemd-analyze) from a test and collecting what it printed.
#ifndef BERTH_TEST_DEPLOY_RUN_COMMAND_H_
#define BERTH_TEST_DEPLOY_RUN_COMMAND_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::test {

struct CommandResult {
  int exit_code = -1;  // 128+signal when killed by a signal
  std::string output;  // stdout and stderr interleaved
};

// Runs argv (argv[0] looked up on PATH) with the test's environment plus `env`, stdin from
// /dev/null, and waits for it. An error only when it could not be started at all.
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         const std::map<std::string, std::string>& env = {});

// Whether `name` is an executable found on PATH.
bool OnPath(const std::string& name);

}  // namespace berth::test

#endif  // BERTH_TEST_DEPLOY_RUN_COMMAND_H_
