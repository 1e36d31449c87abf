// Default masked and read-only paths, as Kubernetes, containerd and CRI-O use them.
#include "runtime/security/defaults.h"

namespace berth::security {

const std::vector<std::string>& DefaultMaskedPaths() {
  // Kernel memory, keyrings, timing and scheduler internals, firmware and power-capping
  // interfaces: information leaks and side channels about the host.
  static const auto* paths = new std::vector<std::string>{
      "/proc/acpi",
      "/proc/asound",
      "/proc/kcore",
      "/proc/keys",
      "/proc/latency_stats",
      "/proc/timer_list",
      "/proc/timer_stats",
      "/proc/sched_debug",
      "/proc/scsi",
      "/sys/firmware",
      "/sys/devices/virtual/powercap",
  };
  return *paths;
}

const std::vector<std::string>& DefaultReadonlyPaths() {
  // Host-wide kernel tunables and triggers that /proc exposes even inside namespaces.
  static const auto* paths = new std::vector<std::string>{
      "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
  };
  return *paths;
}

std::vector<std::string> MaskedPathsFor(bool privileged,
                                        const std::vector<std::string>& requested) {
  if (privileged) return {};
  if (!requested.empty()) return requested;
  return DefaultMaskedPaths();
}

std::vector<std::string> ReadonlyPathsFor(bool privileged,
                                          const std::vector<std::string>& requested) {
  if (privileged) return {};
  if (!requested.empty()) return requested;
  return DefaultReadonlyPaths();
}

}  // namespace berth::security
