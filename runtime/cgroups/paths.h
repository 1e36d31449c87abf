// Where a container's cgroup lives: the OCI `linux.cgroupsPath` for each cgroup driver.
#ifndef BERTH_RUNTIME_CGROUPS_PATHS_H_
#define BERTH_RUNTIME_CGROUPS_PATHS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::cgroups {

enum class CgroupDriver { kCgroupfs, kSystemd };

// "cgroupfs" or "systemd", the names berth.toml's runtime.cgroup_driver and kubelet use.
absl::string_view CgroupDriverName(CgroupDriver driver);
// The driver of one of those names; InvalidArgument for any other.
absl::StatusOr<CgroupDriver> ParseCgroupDriver(absl::string_view name);

// The OCI cgroupsPath for container `id` under the pod's cgroup_parent (CRI
// LinuxPodSandboxConfig.cgroup_parent), in the form runc expects for the driver:
//  - cgroupfs: "<parent>/berth-<id>", e.g. "/kubepods/burstable/pod<uid>/berth-<id>"; an empty
//    parent means "/berth". The parent must be an absolute path.
//  - systemd: "<parent slice>:berth:<id>", e.g. "kubepods-burstable-pod<uid>.slice:berth:<id>",
//    which runc turns into the scope berth-<id>.scope; an empty parent means "system.slice". The
//    parent must be a slice name.
// InvalidArgument naming the parent when it does not fit the driver (a kubelet configured with
// the other driver), or when id is empty or has a '/'.
absl::StatusOr<std::string> ContainerCgroupsPath(CgroupDriver driver, absl::string_view parent,
                                                 absl::string_view id);

// The directory of a cgroupsPath relative to each hierarchy's root, for reading its files:
// cgroupfs paths as they are; "a-b.slice:berth:<id>" becomes
// "/a.slice/a-b.slice/berth-<id>.scope", following systemd's slice nesting.
absl::StatusOr<std::string> CgroupRelativeDir(absl::string_view cgroups_path);

}  // namespace berth::cgroups

#endif  // BERTH_RUNTIME_CGROUPS_PATHS_H_
