// Finding a usable CRIU (`criu check`) and reading its logs.
#include "runtime/criu.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace berth::engine {
namespace {

absl::StatusOr<std::string> Probe(const std::string& criu_path) {
  absl::StatusOr<std::string> found = FindProgram(criu_path);
  if (!found.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint and restore need CRIU, and runtime.criu_path \"", criu_path,
                     "\" names none on this node (", found.status().message(), ")"));
  }
  // CRIU may be installed yet unable to work with this kernel.
  absl::StatusOr<RunResult> r =
      RunProcess({*found, "check"}, RunOptions{.timeout = absl::Seconds(30)});
  if (r.ok() && r->ok()) return *found;
  std::string why = r.ok() ? (r->err.empty() ? r->out : r->err) : std::string(r.status().message());
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(why, '\n', absl::SkipWhitespace())) {
    if (!absl::StartsWith(line, "Warn")) lines.emplace_back(line);
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "CRIU at ", *found, " cannot checkpoint or restore on this kernel (`criu check` failed: ",
      absl::StrJoin(lines, "; "), "): set runtime.criu_path to a CRIU that supports it"));
}

}  // namespace

absl::StatusOr<std::string> CriuProbe::Find() {
  absl::MutexLock l(&mu_);  // held across `criu check`: concurrent first callers wait for it
  if (!found_.has_value()) found_ = Probe(criu_path_);
  return *found_;
}

std::string CriuLogErrors(const std::string& log_path) {
  absl::StatusOr<std::string> log = ReadFile(log_path);
  if (!log.ok()) return "";
  std::vector<std::string> errors;
  for (absl::string_view line : absl::StrSplit(*log, '\n', absl::SkipWhitespace())) {
    if (absl::StrContains(line, "Error (")) errors.emplace_back(line);
  }
  if (errors.size() > 3) errors.erase(errors.begin(), errors.end() - 3);
  return absl::StrJoin(errors, "; ");
}

}  // namespace berth::engine
