// Namespaced sysctls: the IPC and network sets Kubernetes allows per pod.
#include "runtime/security/sysctls.h"

#include <array>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace berth::security {

std::string NormalizeSysctlName(absl::string_view name) {
  size_t sep = name.find_first_of("./");
  std::string out(name);
  if (sep == absl::string_view::npos || name[sep] == '.') return out;
  for (char& c : out) {
    if (c == '/') {
      c = '.';
    } else if (c == '.') {
      c = '/';
    }
  }
  return out;
}

absl::Status CheckSysctl(absl::string_view name, PodNamespaces namespaces) {
  static constexpr std::array<absl::string_view, 8> kIpcNames = {
      "kernel.sem",    "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
      "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni"};
  bool ipc = absl::StartsWith(name, "fs.mqueue.");
  for (absl::string_view n : kIpcNames) ipc = ipc || name == n;
  if (ipc) {
    if (namespaces.own_ipc) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        "sysctl \"", name, "\" lives in the IPC namespace, which this pod shares with the host"));
  }
  if (absl::StartsWith(name, "net.")) {
    if (namespaces.own_network) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("sysctl \"", name,
                     "\" lives in the network namespace, which this pod shares with the host"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("sysctl \"", name, "\" is not namespaced: a pod cannot set it"));
}

}  // namespace berth::security
