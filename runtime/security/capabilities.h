// Linux capabilities for containers: the default set, the host's full set, CRI add/drop.
#ifndef BERTH_RUNTIME_SECURITY_CAPABILITIES_H_
#define BERTH_RUNTIME_SECURITY_CAPABILITIES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace berth::security {

// Every capability name Linux defines that berth knows, indexed by capability number.
const std::vector<std::string>& KnownCapabilities();

// The capabilities this host's kernel knows (0..cap_last_cap), in number order. Read once from
// /proc/sys/kernel/cap_last_cap; when that cannot be read, every capability berth knows.
const std::vector<std::string>& HostCapabilities();

// The set containerd and CRI-O give a container that asks for nothing else.
std::vector<std::string> DefaultCapabilities();

// "CAP_NET_ADMIN", "NET_ADMIN" and "net_admin" all become "CAP_NET_ADMIN"; a name Linux does not
// define is InvalidArgument naming it.
absl::StatusOr<std::string> NormalizeCapability(absl::string_view name);

// The OCI `process.capabilities` sets.
struct CapabilitySets {
  std::vector<std::string> bounding;
  std::vector<std::string> effective;
  std::vector<std::string> permitted;
  std::vector<std::string> inheritable;
  std::vector<std::string> ambient;
  nlohmann::json ToOci() const;
};

// Applies CRI's add/drop lists to `defaults` in containerd's order: add "ALL" (the host's set),
// drop "ALL", then the named adds, then the named drops, so {add: ALL, drop: CHOWN} is everything
// but CAP_CHOWN and {drop: ALL, add: CHOWN} is CAP_CHOWN alone. Bounding, effective and permitted
// get the result; `add_ambient` (CRI's add_ambient_capabilities) go into inheritable and ambient,
// and into the other three so the kernel keeps them. Every set is in capability-number order.
absl::StatusOr<CapabilitySets> ApplyCapabilityChanges(
    const std::vector<std::string>& defaults, const std::vector<std::string>& add,
    const std::vector<std::string>& drop, const std::vector<std::string>& add_ambient = {});

// A privileged container: every capability the host knows in bounding, effective and permitted.
CapabilitySets PrivilegedCapabilities();

}  // namespace berth::security

#endif  // BERTH_RUNTIME_SECURITY_CAPABILITIES_H_
