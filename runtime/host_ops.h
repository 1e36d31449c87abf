// The host operations of the engine that need privileges no unit test has (mounts), behind a
// seam: HostOps does them for real; tests that run without root pass a fake.
#ifndef BERTH_RUNTIME_HOST_OPS_H_
#define BERTH_RUNTIME_HOST_OPS_H_

#include <string>

#include "absl/status/status.h"

namespace berth::engine {

class HostOps {
 public:
  virtual ~HostOps() = default;
  // A tmpfs at `target` (nosuid, nodev, noexec) with the given mount options (mode, size, ...).
  virtual absl::Status MountTmpfs(const std::string& target, const std::string& options);
  // Detaches whatever is mounted at `target`; nothing mounted or no such path is fine.
  virtual absl::Status Unmount(const std::string& target);
};

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_HOST_OPS_H_
