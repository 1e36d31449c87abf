// The confinement part of a container's spec: capabilities, seccomp, masked paths, devices,
// no_new_privs, and the resources section. Joins the spec builder to runtime/security and cgroups.
#ifndef BERTH_RUNTIME_SECURITY_ADAPTER_H_
#define BERTH_RUNTIME_SECURITY_ADAPTER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "proto/runtime/v1/api.pb.h"

namespace berth::engine {

struct DeviceRequest {
  std::string host_path;
  std::string container_path;
  std::string permissions;  // r, w, m
};

struct SecurityRequest {
  bool privileged = false;
  bool has_seccomp = false;  // the structured field was set
  runtime::v1::SecurityProfile seccomp;
  std::string seccomp_profile_path;  // deprecated string form
  // A request naming no profile at all gets RuntimeDefault (true) or, as CRI's text says, none.
  bool seccomp_default_when_empty = true;
  std::vector<std::string> add_capabilities;
  std::vector<std::string> drop_capabilities;
  std::vector<std::string> add_ambient;
  bool no_new_privileges = false;
  bool explicit_masked_paths = false;
  bool explicit_readonly_paths = false;
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;
  bool pod_has_own_netns = true;
  bool pod_has_own_ipc = true;
  std::vector<DeviceRequest> devices;
};

// Fills process.capabilities, process.noNewPrivileges, linux.seccomp, linux.maskedPaths,
// linux.readonlyPaths and linux.devices of `spec`; validates sysctls already in it.
absl::Status ApplySecurity(const SecurityRequest& request, nlohmann::json* spec);

// CRI resources to OCI linux.resources for this host's cgroup mode.
nlohmann::json ResourcesToOci(const runtime::v1::LinuxContainerResources& resources);

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_SECURITY_ADAPTER_H_
