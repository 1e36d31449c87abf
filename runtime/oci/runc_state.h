// runc's view of a container: its status names, and `runc state`'s answer read in-process from
// runc 1.1's state directory, so that recovery needs no process per container.
#ifndef BERTH_RUNTIME_OCI_RUNC_STATE_H_
#define BERTH_RUNTIME_OCI_RUNC_STATE_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::oci {

// A container's status as `runc state` names it; kUnknown for a name runc does not use.
enum class RuncStatus { kUnknown, kCreating, kCreated, kRunning, kPaused, kStopped };
RuncStatus ParseRuncStatus(std::string_view name);
const char* RuncStatusName(RuncStatus status);

// What `runc state` says.
struct RuncState {
  RuncStatus status = RuncStatus::kUnknown;
  pid_t pid = 0;  // 0 when stopped, as runc prints it
  bool operator==(const RuncState&) const = default;
};

// What the reader consults besides runc's root; tests point them at fakes.
struct RuncStateReaderOptions {
  // The cgroup filesystem's mount point: freezer files are read only below it, as runc reads
  // them (openat2 beneath it, no magic links; on cgroup v2 also no symlinks, no other mount).
  std::string cgroup_root = "/sys/fs/cgroup";
  // Whether cgroup_root is a cgroup v2 mount (runc's IsCgroup2UnifiedMode); unset: detected.
  std::optional<bool> unified;
  // Whether systemd runs (runc's IsRunningSystemd: /run/systemd/system is a directory); unset:
  // lstat. runc refuses a systemd-driven container's state without it.
  std::optional<bool> systemd_running;
};

// Reads `<root>/<id>/state.json` and derives the status as runc 1.1's libcontainer does
// (refreshState: paused if its freezer says so, else stopped unless the init process
// `init_process_pid` lives with start time `init_process_start`, else created while
// `exec.fifo` exists, else running). Returns:
//   OK        runc's answer (status and pid);
//   NotFound  runc does not know the container (there is no `<root>/<id>`);
//   any other error: the reader cannot be sure what runc would say (no state.json yet, a
//             symlink, more than 4 MiB, not JSON, a layout or cgroup setup it does not know, a
//             freezer mid-change, an id runc would refuse): ask `runc state`.
// A file runc wrote but could not decode itself is the one case the reader may answer where
// runc fails: it checks only the fields it reads.
absl::StatusOr<RuncState> ReadRuncState(const std::string& root, const std::string& id,
                                        const RuncStateReaderOptions& options = {});

// `options` with the host facts it leaves unset filled in: whether cgroup_root is a cgroup v2
// mount (runtime/cgroups' DetectCgroupMode) and whether systemd runs. They do not change under a
// running berthd: a caller reading many states resolves them once instead of on every read.
RuncStateReaderOptions ResolveHostFacts(RuncStateReaderOptions options);

// libcontainer/system.Stat: the state (field 3) and start time in clock ticks since boot (field
// 22) of /proc/<pid>/stat, parsed as runc parses it; false where runc's parse fails.
bool ReadProcStat(int64_t pid, char* state, uint64_t* start_time);

// Whether `<runtime> --version` printed this (its stdout) for a runc whose state the reader
// understands: runc 1.1.x.
bool ReadableRuncVersion(absl::string_view version_output);

}  // namespace berth::oci

#endif  // BERTH_RUNTIME_OCI_RUNC_STATE_H_
