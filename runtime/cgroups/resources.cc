// LinuxContainerResources -> linux.resources, field by field.
#include "runtime/cgroups/resources.h"

#include <algorithm>

#include "glog/logging.h"
#include "proto/runtime/v1/api.pb.h"

namespace berth::cgroups {

nlohmann::json ToOciResources(const runtime::v1::LinuxContainerResources& r, CgroupMode mode,
                              const ResourceOptions& options) {
  nlohmann::json out = nlohmann::json::object();

  nlohmann::json cpu = nlohmann::json::object();
  if (r.cpu_shares() > 0) cpu["shares"] = static_cast<uint64_t>(r.cpu_shares());
  if (r.cpu_quota() != 0) cpu["quota"] = r.cpu_quota();
  if (r.cpu_period() > 0) cpu["period"] = static_cast<uint64_t>(r.cpu_period());
  if (!r.cpuset_cpus().empty()) cpu["cpus"] = r.cpuset_cpus();
  if (!r.cpuset_mems().empty()) cpu["mems"] = r.cpuset_mems();
  if (!cpu.empty()) out["cpu"] = std::move(cpu);

  nlohmann::json memory = nlohmann::json::object();
  if (r.memory_limit_in_bytes() > 0) memory["limit"] = r.memory_limit_in_bytes();
  if (options.swap_controller) {
    if (r.memory_swap_limit_in_bytes() != 0) {
      memory["swap"] = r.memory_swap_limit_in_bytes();
    } else if (r.memory_limit_in_bytes() > 0) {
      memory["swap"] = r.memory_limit_in_bytes();
    }
  }
  if (!memory.empty()) out["memory"] = std::move(memory);

  if (r.hugepage_limits_size() > 0) {
    nlohmann::json limits = nlohmann::json::array();
    for (const auto& h : r.hugepage_limits()) {
      const auto& sizes = options.hugetlb_page_sizes;
      if (sizes && std::find(sizes->begin(), sizes->end(), h.page_size()) == sizes->end()) {
        VLOG(1) << "leaving out the " << h.page_size()
                << " hugetlb limit: the host's hugetlb controller cannot limit that size";
        continue;
      }
      limits.push_back({{"pageSize", h.page_size()}, {"limit", h.limit()}});
    }
    if (!limits.empty()) out["hugepageLimits"] = std::move(limits);
  }

  if (options.pids_limit > 0) out["pids"] = {{"limit", options.pids_limit}};

  if (!r.unified().empty()) {
    if (mode == CgroupMode::kUnified) {
      nlohmann::json unified = nlohmann::json::object();
      for (const auto& [key, value] : r.unified()) unified[key] = value;
      out["unified"] = std::move(unified);
    } else {
      LOG(WARNING) << "ignoring " << r.unified().size()
                   << " unified (cgroup v2) resource settings on a cgroup " << CgroupModeName(mode)
                   << " host";
    }
  }
  return out;
}

}  // namespace berth::cgroups
