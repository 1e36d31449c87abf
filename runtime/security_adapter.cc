// Confinement of one container's spec. (Interim: capabilities and paths only; seccomp and the
// cgroup translation come from runtime/security and runtime/cgroups once they land.)
#include "runtime/security_adapter.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace berth::runtime {
namespace {

using json = nlohmann::json;

const std::vector<std::string> kDefaultCaps = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
    "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"};

const std::vector<std::string> kDefaultMasked = {
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap"};
const std::vector<std::string> kDefaultReadonly = {"/proc/bus", "/proc/fs", "/proc/irq",
                                                   "/proc/sys", "/proc/sysrq-trigger"};

}  // namespace

absl::Status ApplySecurity(const SecurityRequest& r, json* spec) {
  std::set<std::string> caps(kDefaultCaps.begin(), kDefaultCaps.end());
  auto norm = [](std::string c) {
    c = absl::AsciiStrToUpper(c);
    return absl::StartsWith(c, "CAP_") || c == "ALL" ? c : absl::StrCat("CAP_", c);
  };
  for (const auto& d : r.drop_capabilities) {
    if (norm(d) == "ALL") caps.clear(); else caps.erase(norm(d));
  }
  for (const auto& a : r.add_capabilities) caps.insert(norm(a));
  std::vector<std::string> list(caps.begin(), caps.end());
  (*spec)["process"]["capabilities"] = {
      {"bounding", list}, {"effective", list}, {"permitted", list}};
  (*spec)["process"]["noNewPrivileges"] = r.no_new_privileges;
  if (!r.privileged) {
    (*spec)["linux"]["maskedPaths"] = r.explicit_masked_paths ? r.masked_paths : kDefaultMasked;
    (*spec)["linux"]["readonlyPaths"] =
        r.explicit_readonly_paths ? r.readonly_paths : kDefaultReadonly;
  }
  json devices = json::array();
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
    devices.push_back({{"path", d.container_path}, {"type", type},
                       {"major", major(st.st_rdev)}, {"minor", minor(st.st_rdev)},
                       {"fileMode", st.st_mode & 07777}, {"uid", 0}, {"gid", 0}});
    (*spec)["linux"]["resources"]["devices"].push_back(
        {{"allow", true}, {"type", type}, {"major", major(st.st_rdev)},
         {"minor", minor(st.st_rdev)}, {"access", d.permissions.empty() ? "rwm" : d.permissions}});
  }
  if (!devices.empty()) (*spec)["linux"]["devices"] = devices;
  return absl::OkStatus();
}

json ResourcesToOci(const ::runtime::v1::LinuxContainerResources& r) {
  json out = json::object();
  json cpu = json::object();
  if (r.cpu_shares() > 0) cpu["shares"] = r.cpu_shares();
  if (r.cpu_quota() != 0) cpu["quota"] = r.cpu_quota();
  if (r.cpu_period() > 0) cpu["period"] = r.cpu_period();
  if (!r.cpuset_cpus().empty()) cpu["cpus"] = r.cpuset_cpus();
  if (!r.cpuset_mems().empty()) cpu["mems"] = r.cpuset_mems();
  if (!cpu.empty()) out["cpu"] = cpu;
  if (r.memory_limit_in_bytes() > 0) {
    out["memory"]["limit"] = r.memory_limit_in_bytes();
    if (r.memory_swap_limit_in_bytes() > 0) out["memory"]["swap"] = r.memory_swap_limit_in_bytes();
  }
  return out;
}

}  // namespace berth::runtime
