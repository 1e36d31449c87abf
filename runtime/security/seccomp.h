// Seccomp for containers: berth's RuntimeDefault profile, Localhost profiles, CRI profile names.
#ifndef BERTH_RUNTIME_SECURITY_SECCOMP_H_
#define BERTH_RUNTIME_SECURITY_SECCOMP_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace runtime::v1 {
class SecurityProfile;
}  // namespace runtime::v1

namespace berth::security {

enum class SeccompProfileType { kRuntimeDefault, kUnconfined, kLocalhost };

struct SeccompProfile {
  SeccompProfileType type = SeccompProfileType::kRuntimeDefault;
  // Absolute path of the profile file; only for kLocalhost.
  std::string localhost_path;
};

struct SeccompRequest {
  SeccompProfile profile;
  // The container's capabilities (the bounding set, CAP_X spelling): they enable cap-gated rules
  // of the default profile and the `includes/excludes.caps` of Docker-form profiles.
  std::vector<std::string> capabilities;
  // Kubernetes runs privileged containers unconfined whatever profile they name.
  bool privileged = false;
};

// The OCI `linux.seccomp` object for a container, or a null json value when the container runs
// without seccomp (Unconfined, or privileged).
//  - RuntimeDefault: berth's profile for the host's architecture (native plus compat arches),
//    with cap-gated rules enabled by request.capabilities. Names that libseccomp cannot resolve
//    on any of those architectures are dropped, so an old libseccomp never makes runc fail.
//  - Localhost: the JSON file at profile.localhost_path, in OCI form or Docker's profile form
//    (archMap, syscalls[].names/name, includes/excludes); InvalidArgument naming the path when it
//    is relative, missing, unreadable or not a valid profile.
absl::StatusOr<nlohmann::json> BuildSeccomp(const SeccompRequest& request);

// CRI's deprecated string form (seccomp_profile_path): "runtime/default", "docker/default",
// "unconfined", "localhost/<absolute path>"; "" means `when_empty`. InvalidArgument otherwise.
absl::StatusOr<SeccompProfile> ParseSeccompProfileName(
    absl::string_view name, SeccompProfileType when_empty = SeccompProfileType::kUnconfined);

// The profile a CRI security context asks for: the structured field when it is set (pass
// nullptr when has_seccomp() is false), else the deprecated string.
absl::StatusOr<SeccompProfile> SeccompProfileFromCri(
    const runtime::v1::SecurityProfile* profile, absl::string_view deprecated_name,
    SeccompProfileType when_empty = SeccompProfileType::kUnconfined);

// The seccomp architectures berth targets on this host: native first, then its compat arches.
std::vector<std::string> SeccompArchitectures();

struct SeccompSupportInfo {
  bool kernel_seccomp = false;     // CONFIG_SECCOMP: /proc/self/status has a Seccomp field
  bool kernel_filter = false;      // SECCOMP_MODE_FILTER is available (what runc needs)
  std::string libseccomp_version;  // "2.5.4"
  unsigned libseccomp_api_level = 0;
  nlohmann::json ToJson() const;  // for CRI Status verbose info
};
SeccompSupportInfo SeccompSupport();

}  // namespace berth::security

#endif  // BERTH_RUNTIME_SECURITY_SECCOMP_H_
