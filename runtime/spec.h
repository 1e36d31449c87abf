// Building a container's OCI runtime spec (config.json) from the CRI request and the image config.
#ifndef BERTH_RUNTIME_SPEC_H_
#define BERTH_RUNTIME_SPEC_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "proto/berth/v1/records.pb.h"
#include "proto/runtime/v1/api.pb.h"
#include "runtime/user.h"

namespace berth::engine {

// Where a pod's shared pieces live, known once its sandbox exists.
struct PodContext {
  const runtime::v1::PodSandboxConfig* pod = nullptr;
  std::string sandbox_id;
  std::string sandbox_dir;  // hostname, hosts, resolv.conf
  std::string shm_path;     // the pod's /dev/shm (empty: private tmpfs)
  std::string netns_path;   // persistent netns; empty: a new one (infra) or infra's (containers)
  pid_t infra_pid = 0;      // namespaces of the infra container, joined by app containers
  bool host_network = false;
  bool host_pid = false;
  bool host_ipc = false;
  // A pod in its own user namespace: every container (infra too) joins the namespace pinned at
  // userns_path; the mappings go into config.json as well, runc 1.1 needs them to know the
  // host IDs of root. Empty: the host's user namespace.
  std::string userns_path;
  std::vector<runtime::v1::IDMapping> uid_mappings;
  std::vector<runtime::v1::IDMapping> gid_mappings;
};

struct SpecOptions {
  std::string cgroups_path;
  int oom_score_adj_floor = -1000;  // berthd may not lower below this (no CAP_SYS_RESOURCE)
  bool seccomp_default_when_empty = true;
};

// The infra (pause) container of a pod.
absl::StatusOr<nlohmann::json> BuildInfraSpec(const PodContext& pod, const std::string& rootfs,
                                              const std::string& pause_path,
                                              const SpecOptions& options);

// An application container: rootfs must already be mounted (users are resolved from it).
absl::StatusOr<nlohmann::json> BuildContainerSpec(const PodContext& pod,
                                                  const runtime::v1::ContainerConfig& config,
                                                  const berth::v1::ImageConfig& image,
                                                  const std::string& container_id,
                                                  const std::string& rootfs,
                                                  const SpecOptions& options);

// kubelet's rules: command replaces the entrypoint, args replace cmd.
absl::StatusOr<std::vector<std::string>> ContainerArgs(const runtime::v1::ContainerConfig& config,
                                                       const berth::v1::ImageConfig& image);

// Environment: image env, then CRI envs (later wins), PATH and HOSTNAME defaulted.
std::vector<std::string> ContainerEnv(const runtime::v1::ContainerConfig& config,
                                      const berth::v1::ImageConfig& image,
                                      const std::string& hostname, const std::string& home);

// The process section for ExecSync/Exec, derived from the container's spec.
nlohmann::json ExecProcess(const nlohmann::json& container_spec,
                           const std::vector<std::string>& cmd, bool tty);

// Clamps a requested oom_score_adj to what berthd may set, logging the first clamp.
int ClampOomScoreAdj(int requested, int floor);

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_SPEC_H_
