// The /proc and /sys paths a container sees masked or read-only, and how CRI's lists override them.
#ifndef BERTH_RUNTIME_SECURITY_DEFAULTS_H_
#define BERTH_RUNTIME_SECURITY_DEFAULTS_H_

#include <string>
#include <vector>

namespace berth::security {

// Paths runc hides (bind-mounts /dev/null or an empty tmpfs over) in an unprivileged container.
const std::vector<std::string>& DefaultMaskedPaths();
// Paths runc remounts read-only in an unprivileged container.
const std::vector<std::string>& DefaultReadonlyPaths();

// OCI `linux.maskedPaths` / `linux.readonlyPaths` for a container: none when privileged, CRI's
// list when it sent one (kubelet sends its own defaults, or an empty list for procMount
// Unmasked, which protobuf cannot tell from "unset"; so an empty list means berth's defaults),
// else berth's defaults.
std::vector<std::string> MaskedPathsFor(bool privileged, const std::vector<std::string>& requested);
std::vector<std::string> ReadonlyPathsFor(bool privileged,
                                          const std::vector<std::string>& requested);

}  // namespace berth::security

#endif  // BERTH_RUNTIME_SECURITY_DEFAULTS_H_
