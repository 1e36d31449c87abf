// OCI hooks from hooks.d directories (the containers/common JSON format, version 1.0.0): which
// hooks apply to a container, added to its spec for runc to run, and berth's own precreate stage.
#ifndef BERTH_RUNTIME_HOOKS_H_
#define BERTH_RUNTIME_HOOKS_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "re2/re2.h"

namespace berth::engine {

struct Hook {
  std::string file;     // where it was defined, for logs
  nlohmann::json hook;  // {path, args, env, timeout}: the OCI hook object
  bool always = false;
  std::map<std::string, std::string> annotations;  // key regex -> value regex
  std::vector<std::string> commands;               // regexes matched against args[0]
  // The same patterns compiled once with RE2 (Go's regexp syntax, as containers/common uses):
  // linear time and no recursion, whatever a container's args or annotations hold.
  std::vector<std::pair<std::shared_ptr<const re2::RE2>, std::shared_ptr<const re2::RE2>>>
      annotation_res;
  std::vector<std::shared_ptr<const re2::RE2>> command_res;
  bool has_bind_mounts = false;
  std::vector<std::string> stages;
};

// Parses one hooks.d file; InvalidArgument naming the file and field when it is not valid.
absl::StatusOr<Hook> ParseHook(const std::string& file, const std::string& text);

// Every valid hook in `dirs`; a file in a later directory replaces one of the same name in an
// earlier one. Invalid files are logged and skipped.
std::vector<Hook> LoadHooks(const std::vector<std::string>& dirs);

// Whether `hook` applies to the container `spec` describes (any one "when" condition suffices).
bool HookMatches(const Hook& hook, const nlohmann::json& spec);

// Adds the matching hooks to spec["hooks"] for the stages runc runs, then runs the matching
// precreate hooks (spec JSON in, spec JSON out) in order.
absl::Status ApplyHooks(const std::vector<Hook>& hooks, nlohmann::json* spec);

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_HOOKS_H_
