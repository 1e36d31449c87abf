// CRI container resources to the OCI `linux.resources` object.
#ifndef BERTH_RUNTIME_CGROUPS_RESOURCES_H_
#define BERTH_RUNTIME_CGROUPS_RESOURCES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "runtime/cgroups/mode.h"

namespace runtime::v1 {
class LinuxContainerResources;
}  // namespace runtime::v1

namespace berth::cgroups {

struct ResourceOptions {
  // See SwapControllerAvailable: without it no swap limit is written (runc would refuse it).
  bool swap_controller = true;
  // CRI has no per-container pids limit (kubelet limits the pod's cgroup); berth's config may set
  // a default. 0 = none.
  int64_t pids_limit = 0;
  // The page sizes the host's hugetlb controller can limit (HugetlbPageSizes); unset = all.
  // kubelet sends a limit for every size the kernel offers, also where the controller is
  // missing, so limits for other sizes are left out (as containerd and CRI-O do) rather than
  // making runc fail the container.
  std::optional<std::vector<std::string>> hugetlb_page_sizes;
};

// cpu (shares, quota, period, cpus, mems), memory (limit; swap = CRI's memory_swap_limit_in_bytes,
// which like OCI's swap counts memory plus swap; when only a limit is given, swap = limit so the
// container does not swap), hugepageLimits, pids, and unified (cgroup v2 only: runc refuses it on
// v1). Zero / empty CRI fields are left out so runc keeps its defaults. oom_score_adj is not a
// resource in OCI: it goes to process.oomScoreAdj (the spec generator's job).
nlohmann::json ToOciResources(const runtime::v1::LinuxContainerResources& resources,
                              CgroupMode mode, const ResourceOptions& options = {});

}  // namespace berth::cgroups

#endif  // BERTH_RUNTIME_CGROUPS_RESOURCES_H_
