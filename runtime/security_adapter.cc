// Confinement of one container's spec, from runtime/security (capabilities, seccomp, paths,
// sysctls) and runtime/cgroups (resources).
#include "runtime/security_adapter.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"
#include "util/fs.h"
#include "runtime/cgroups/mode.h"
#include "runtime/cgroups/resources.h"
#include "runtime/security/capabilities.h"
#include "runtime/security/defaults.h"
#include "runtime/security/seccomp.h"
#include "runtime/security/sysctls.h"

namespace berth::engine {
namespace {

using json = nlohmann::json;

// berthd can only hand out capabilities in its own bounding set (a node agent may run without
// e.g. CAP_SYS_RESOURCE); asking runc for more fails every container with EPERM.
const std::set<std::string>& OwnBoundingSet() {
  static const std::set<std::string> own = [] {
    std::set<std::string> out;
    std::string status = ReadFile("/proc/self/status").value_or("");
    size_t pos = status.find("CapBnd:");
    uint64_t mask =
        pos == std::string::npos ? ~0ull : strtoull(status.c_str() + pos + 7, nullptr, 16);
    const auto& known = security::KnownCapabilities();
    for (size_t i = 0; i < known.size() && i < 64; ++i) {
      if (mask & (1ull << i)) out.insert(known[i]);
    }
    return out;
  }();
  return own;
}

void LimitToOwnBoundingSet(security::CapabilitySets* caps) {
  const auto& own = OwnBoundingSet();
  for (auto* set :
       {&caps->bounding, &caps->effective, &caps->permitted, &caps->inheritable, &caps->ambient}) {
    std::erase_if(*set, [&](const std::string& c) { return !own.count(c); });
  }
}

cgroups::CgroupMode HostCgroupMode() {
  static const cgroups::CgroupMode mode =
      cgroups::DetectCgroupMode().value_or(cgroups::CgroupMode::kLegacy);
  return mode;
}

}  // namespace

absl::Status ApplySecurity(const SecurityRequest& r, json* spec) {
  json& process = (*spec)["process"];
  json& linux = (*spec)["linux"];

  absl::StatusOr<security::CapabilitySets> caps =
      r.privileged
          ? absl::StatusOr<security::CapabilitySets>(security::PrivilegedCapabilities())
          : security::ApplyCapabilityChanges(security::DefaultCapabilities(), r.add_capabilities,
                                             r.drop_capabilities, r.add_ambient);
  if (!caps.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("linux.security_context.capabilities: ", caps.status().message()));
  }
  LimitToOwnBoundingSet(&*caps);
  process["capabilities"] = caps->ToOci();
  process["noNewPrivileges"] = r.no_new_privileges && !r.privileged;

  std::vector<std::string> masked = security::MaskedPathsFor(
      r.privileged, r.explicit_masked_paths ? r.masked_paths : security::DefaultMaskedPaths());
  std::vector<std::string> readonly = security::ReadonlyPathsFor(
      r.privileged,
      r.explicit_readonly_paths ? r.readonly_paths : security::DefaultReadonlyPaths());
  if (!masked.empty()) linux["maskedPaths"] = masked;
  if (!readonly.empty()) linux["readonlyPaths"] = readonly;

  absl::StatusOr<security::SeccompProfile> profile = security::SeccompProfileFromCri(
      r.has_seccomp ? &r.seccomp : nullptr, r.seccomp_profile_path,
      r.seccomp_default_when_empty ? security::SeccompProfileType::kRuntimeDefault
                                   : security::SeccompProfileType::kUnconfined);
  if (!profile.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("linux.security_context.seccomp: ", profile.status().message()));
  }
  if (!r.privileged && profile->type != security::SeccompProfileType::kUnconfined) {
    security::SeccompRequest sreq;
    sreq.profile = *profile;
    sreq.capabilities = caps->effective;
    absl::StatusOr<json> seccomp = security::BuildSeccomp(sreq);
    if (!seccomp.ok()) return seccomp.status();
    if (!seccomp->is_null() && !seccomp->empty()) linux["seccomp"] = *seccomp;
  }

  if (linux.contains("sysctl")) {
    std::map<std::string, std::string> requested = linux["sysctl"];
    absl::StatusOr<std::map<std::string, std::string>> ok = security::ValidateSysctls(
        requested,
        security::PodNamespaces{.own_network = r.pod_has_own_netns, .own_ipc = r.pod_has_own_ipc});
    if (!ok.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("linux.sysctls: ", ok.status().message()));
    }
    linux["sysctl"] = *ok;
  }

  json devices = json::array();
  if (r.privileged) {
    // Privileged containers see every host device.
    linux["resources"]["devices"] = json::array({{{"allow", true}, {"access", "rwm"}}});
  }
  for (const auto& d : r.devices) {
    struct stat st;
    if (stat(d.host_path.c_str(), &st) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("devices.host_path \"", d.host_path, "\" does not exist"));
    }
    if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat("devices.host_path \"", d.host_path, "\" is not a device"));
    }
    std::string type = S_ISCHR(st.st_mode) ? "c" : "b";
    devices.push_back({{"path", d.container_path},
                       {"type", type},
                       {"major", major(st.st_rdev)},
                       {"minor", minor(st.st_rdev)},
                       {"fileMode", st.st_mode & 07777},
                       {"uid", 0},
                       {"gid", 0}});
    linux["resources"]["devices"].push_back(
        {{"allow", true},
         {"type", type},
         {"major", major(st.st_rdev)},
         {"minor", minor(st.st_rdev)},
         {"access", d.permissions.empty() ? "rwm" : d.permissions}});
  }
  if (!devices.empty()) linux["devices"] = devices;
  return absl::OkStatus();
}

json ResourcesToOci(const runtime::v1::LinuxContainerResources& r) {
  // What the host's controllers can do, read once: runc refuses a swap limit without swap
  // accounting and a hugetlb limit without the hugetlb controller.
  static const cgroups::ResourceOptions host = [] {
    cgroups::ResourceOptions o;
    o.swap_controller = cgroups::SwapControllerAvailable(HostCgroupMode());
    o.hugetlb_page_sizes = cgroups::HugetlbPageSizes(HostCgroupMode());
    LOG(INFO) << "cgroups: swap limits " << (o.swap_controller ? "available" : "unavailable")
              << ", hugetlb page sizes: "
              << (o.hugetlb_page_sizes->empty() ? "none (no hugetlb controller)"
                                                : absl::StrJoin(*o.hugetlb_page_sizes, ","));
    return o;
  }();
  return cgroups::ToOciResources(r, HostCgroupMode(), host);
}

}  // namespace berth::engine
