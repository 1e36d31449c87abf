// A container's resource usage read straight from its cgroup files (no fork, few allocations).
#ifndef BERTH_RUNTIME_CGROUPS_STATS_H_
#define BERTH_RUNTIME_CGROUPS_STATS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/cgroups/mode.h"

namespace berth::cgroups {

struct CgroupStats {
  int64_t timestamp_ns = 0;  // CLOCK_REALTIME when the files were read (CRI's timestamp)

  bool has_cpu = false;
  uint64_t cpu_usage_ns = 0;  // cumulative, all CPUs

  bool has_memory = false;
  uint64_t memory_usage_bytes = 0;
  uint64_t working_set_bytes = 0;  // usage - inactive_file, as kubelet's eviction reads it
  uint64_t rss_bytes = 0;          // anonymous memory
  uint64_t page_faults = 0;
  uint64_t major_page_faults = 0;
  uint64_t memory_limit_bytes = 0;  // 0 = unlimited

  bool has_pids = false;
  uint64_t pids_current = 0;
};

// Reads the cgroup of an OCI cgroupsPath (either driver's form, see paths.h):
//  v1/hybrid: cpuacct.usage; memory.usage_in_bytes, memory.limit_in_bytes, memory.stat
//             (total_inactive_file, total_rss, total_pgfault, total_pgmajfault); pids.current.
//  v2:        cpu.stat usage_usec; memory.current, memory.max, memory.stat (inactive_file, anon,
//             pgfault, pgmajfault); pids.current.
// A controller whose files are absent leaves its has_* false; NotFound naming the path when no
// controller has the cgroup (the container is gone).
absl::StatusOr<CgroupStats> ReadStats(const std::string& cgroups_path, CgroupMode mode,
                                      const std::string& root = kCgroupRoot);

// One number from `file` of the cgroup directory `rel` (relative to the hierarchy, "/..."), under
// `controller` on v1 ("" on v2), read as ReadStats reads its files: nullopt when the file is
// absent or holds "max" or anything but a number.
std::optional<uint64_t> ReadCgroupUint(const std::string& rel, const char* controller,
                                       const char* file, const std::string& root = kCgroupRoot);

}  // namespace berth::cgroups

#endif  // BERTH_RUNTIME_CGROUPS_STATS_H_
