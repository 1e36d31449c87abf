// Which cgroup layout the host uses: v1 only, v1 with an empty v2 hierarchy (hybrid), or v2 only.
#ifndef BERTH_RUNTIME_CGROUPS_MODE_H_
#define BERTH_RUNTIME_CGROUPS_MODE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::cgroups {

inline constexpr char kCgroupRoot[] = "/sys/fs/cgroup";

enum class CgroupMode {
  kLegacy,   // tmpfs at the root, one v1 hierarchy per controller
  kHybrid,   // as kLegacy, plus a controller-less v2 hierarchy at <root>/unified (systemd's)
  kUnified,  // cgroup2 at the root
};

const char* CgroupModeName(CgroupMode mode);  // "v1", "hybrid", "v2"

// From the filesystem types at `root` and `root`/unified (statfs: CGROUP2_SUPER_MAGIC, TMPFS).
// FailedPrecondition naming `root` when it is neither.
absl::StatusOr<CgroupMode> DetectCgroupMode(const std::string& root = kCgroupRoot);

// Whether the memory controller can limit swap (v1: memory.memsw.* exist, i.e. swapaccount=1;
// v2: memory.swap.max exists in some child of the root). Without it runc refuses a swap limit.
bool SwapControllerAvailable(CgroupMode mode, const std::string& root = kCgroupRoot);

// The huge page sizes a container's hugetlb limits can name, in runc's notation ("2MB", "1GB"):
// those the kernel offers under `hugepages_dir`, or none when the hugetlb controller is missing
// (v1: no <root>/hugetlb hierarchy; v2: "hugetlb" not in <root>/cgroup.controllers).
std::vector<std::string> HugetlbPageSizes(
    CgroupMode mode, const std::string& root = kCgroupRoot,
    const std::string& hugepages_dir = "/sys/kernel/mm/hugepages");

// "hugepages-2048kB" (a directory under /sys/kernel/mm/hugepages) -> "2MB"; "" if malformed.
std::string PageSizeName(const std::string& sysfs_dir_name);

}  // namespace berth::cgroups

#endif  // BERTH_RUNTIME_CGROUPS_MODE_H_
