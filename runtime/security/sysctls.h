// Pod sysctls: which ones a pod may set, given the namespaces it owns.
#ifndef BERTH_RUNTIME_SECURITY_SYSCTLS_H_
#define BERTH_RUNTIME_SECURITY_SYSCTLS_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::security {

// Which namespaces the pod has of its own (false = shares the host's).
struct PodNamespaces {
  bool own_network = true;
  bool own_ipc = true;
};

// Kubernetes accepts "net/ipv4/ip_forward" as well as "net.ipv4.ip_forward"; when the first
// separator is '/', '/' and '.' swap ("net/ipv4/conf/eth0.100/rp_filter" becomes
// "net.ipv4.conf.eth0/100.rp_filter"), as /proc/sys paths do.
std::string NormalizeSysctlName(absl::string_view name);

// OK when the (normalized) sysctl lives in a namespace the pod owns, the set Kubernetes treats
// as namespaced: kernel.shm{all,max,mni,_rmid_forced}, kernel.msg{max,mnb,mni}, kernel.sem and
// fs.mqueue.* (IPC namespace); net.* (network namespace). Anything else, including
// kernel.hostname/domainname (the UTS name is the pod's hostname, set through CRI), is
// InvalidArgument naming the key.
absl::Status CheckSysctl(absl::string_view name, PodNamespaces namespaces);

// Checks every key of a CRI sysctl map (any map of string to string) and returns them normalized,
// ready for OCI `linux.sysctl`.
template <typename Map>
absl::StatusOr<std::map<std::string, std::string>> ValidateSysctls(const Map& sysctls,
                                                                   PodNamespaces namespaces) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : sysctls) {
    std::string name = NormalizeSysctlName(key);
    if (absl::Status s = CheckSysctl(name, namespaces); !s.ok()) return s;
    out[std::move(name)] = value;
  }
  return out;
}

}  // namespace berth::security

#endif  // BERTH_RUNTIME_SECURITY_SYSCTLS_H_
