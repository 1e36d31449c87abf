// CRIU for checkpoint/restore: finding one that works on this kernel, and what its logs say.
#ifndef BERTH_RUNTIME_CRIU_H_
#define BERTH_RUNTIME_CRIU_H_

#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace berth::engine {

// Finds, from `criu_path` (a path, or a name on PATH), a CRIU that passes `criu check` on this
// kernel. The first Find runs the check (up to 30 s; concurrent callers wait for it) and its
// answer is kept for the life of the probe: a CRIU installed or fixed later needs a new probe
// (for berthd, a restart). Owned by whoever needs the answer; thread-safe.
class CriuProbe {
 public:
  explicit CriuProbe(std::string criu_path) : criu_path_(std::move(criu_path)) {}
  CriuProbe(const CriuProbe&) = delete;
  CriuProbe& operator=(const CriuProbe&) = delete;

  // The absolute path of the CRIU found; FailedPrecondition saying what is missing otherwise.
  absl::StatusOr<std::string> Find() ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Usable() ABSL_LOCKS_EXCLUDED(mu_) { return Find().status(); }

  const std::string& criu_path() const { return criu_path_; }

 private:
  const std::string criu_path_;
  absl::Mutex mu_;
  std::optional<absl::StatusOr<std::string>> found_ ABSL_GUARDED_BY(mu_);
};

// The last error lines of a CRIU log (dump.log, restore.log), for error messages; empty if none.
std::string CriuLogErrors(const std::string& log_path);

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_CRIU_H_
