// Telling a node reboot from a berthd restart, and a clean stop from a crash, as CRI-O does with
// its version file on tmpfs and its clean-shutdown file: a boot marker in the volatile state dir
// and a clean-shutdown marker in the persistent root.
#ifndef BERTH_RUNTIME_REBOOT_H_
#define BERTH_RUNTIME_REBOOT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth::engine {

struct BootFiles {
  std::string root;  // persistent: holds the clean-shutdown marker
  std::string
      state_dir;  // volatile (tmpfs): holds the boot marker; its runc root is state_dir/runc
  std::string kernel_boot_id = "/proc/sys/kernel/random/boot_id";
};

struct BootCheck {
  // The volatile state is not this boot's: its marker is gone (a reboot emptied the tmpfs, or
  // someone emptied the dir) or names another boot. No container of the records runs any more.
  bool rebooted = false;
  // The last berthd stopped cleanly (every record was written through before it went).
  bool clean_shutdown = false;
  std::string boot_id;  // this boot's, from the kernel; empty when it does not say
  std::string reason;   // why `rebooted`, for the log
};

// Reads both markers and consumes the clean-shutdown one, so that a crash from now on reads as
// one. A state dir without a marker that still holds runc state was left by a berthd that kept
// no marker: not a reboot.
absl::StatusOr<BootCheck> CheckBoot(const BootFiles& files);
// Once recovery is done: the volatile state is this boot's from now on.
absl::Status RecordBoot(const BootFiles& files, const std::string& boot_id);
// At a clean stop, after the last record is written.
absl::Status RecordCleanShutdown(const BootFiles& files);

std::string BootMarkerPath(const BootFiles& files);
std::string CleanShutdownPath(const BootFiles& files);

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_REBOOT_H_
