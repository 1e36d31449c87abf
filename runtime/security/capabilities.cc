// Capability names, the host's set from /proc, and CRI's add/drop semantics.
#include "runtime/security/capabilities.h"

#include <algorithm>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "glog/logging.h"

namespace berth::security {
namespace {

// Index in KnownCapabilities(), or -1.
int CapNumber(absl::string_view cap) {
  const auto& known = KnownCapabilities();
  for (size_t i = 0; i < known.size(); ++i) {
    if (known[i] == cap) return static_cast<int>(i);
  }
  return -1;
}

bool IsAll(absl::string_view name) { return absl::EqualsIgnoreCase(name, "ALL"); }

// A set of capabilities as a bitmap over capability numbers, so results come out in number order.
using CapBits = std::vector<bool>;

std::vector<std::string> Names(const CapBits& bits) {
  std::vector<std::string> out;
  for (size_t i = 0; i < bits.size(); ++i) {
    if (bits[i]) out.push_back(KnownCapabilities()[i]);
  }
  return out;
}

absl::Status SetAll(CapBits& bits, const std::vector<std::string>& names, bool value) {
  for (const auto& name : names) {
    if (IsAll(name)) continue;
    absl::StatusOr<std::string> cap = NormalizeCapability(name);
    if (!cap.ok()) return cap.status();
    bits[CapNumber(*cap)] = value;
  }
  return absl::OkStatus();
}

}  // namespace

const std::vector<std::string>& KnownCapabilities() {
  // Numbers from <linux/capability.h>; the position is the number.
  static const auto* caps = new std::vector<std::string>{
      "CAP_CHOWN",
      "CAP_DAC_OVERRIDE",
      "CAP_DAC_READ_SEARCH",
      "CAP_FOWNER",
      "CAP_FSETID",
      "CAP_KILL",
      "CAP_SETGID",
      "CAP_SETUID",
      "CAP_SETPCAP",
      "CAP_LINUX_IMMUTABLE",
      "CAP_NET_BIND_SERVICE",
      "CAP_NET_BROADCAST",
      "CAP_NET_ADMIN",
      "CAP_NET_RAW",
      "CAP_IPC_LOCK",
      "CAP_IPC_OWNER",
      "CAP_SYS_MODULE",
      "CAP_SYS_RAWIO",
      "CAP_SYS_CHROOT",
      "CAP_SYS_PTRACE",
      "CAP_SYS_PACCT",
      "CAP_SYS_ADMIN",
      "CAP_SYS_BOOT",
      "CAP_SYS_NICE",
      "CAP_SYS_RESOURCE",
      "CAP_SYS_TIME",
      "CAP_SYS_TTY_CONFIG",
      "CAP_MKNOD",
      "CAP_LEASE",
      "CAP_AUDIT_WRITE",
      "CAP_AUDIT_CONTROL",
      "CAP_SETFCAP",
      "CAP_MAC_OVERRIDE",
      "CAP_MAC_ADMIN",
      "CAP_SYSLOG",
      "CAP_WAKE_ALARM",
      "CAP_BLOCK_SUSPEND",
      "CAP_AUDIT_READ",
      "CAP_PERFMON",
      "CAP_BPF",
      "CAP_CHECKPOINT_RESTORE",
  };
  return *caps;
}

const std::vector<std::string>& HostCapabilities() {
  static const auto* caps = [] {
    const auto& known = KnownCapabilities();
    int last = static_cast<int>(known.size()) - 1;
    std::ifstream in("/proc/sys/kernel/cap_last_cap");
    std::string text;
    int kernel_last = 0;
    if (in >> text && absl::SimpleAtoi(text, &kernel_last) && kernel_last >= 0) {
      // A newer kernel's extra capabilities have no name berth could hand to runc.
      last = std::min(last, kernel_last);
    } else {
      LOG(WARNING) << "cannot read /proc/sys/kernel/cap_last_cap; assuming every known capability";
    }
    return new std::vector<std::string>(known.begin(), known.begin() + last + 1);
  }();
  return *caps;
}

std::vector<std::string> DefaultCapabilities() {
  return {"CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
          "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
          "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
          "CAP_KILL",    "CAP_AUDIT_WRITE"};
}

absl::StatusOr<std::string> NormalizeCapability(absl::string_view name) {
  std::string upper = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(name));
  if (!absl::StartsWith(upper, "CAP_")) upper = absl::StrCat("CAP_", upper);
  if (CapNumber(upper) < 0) {
    return absl::InvalidArgumentError(absl::StrCat("capability \"", name, "\" is unknown"));
  }
  return upper;
}

nlohmann::json CapabilitySets::ToOci() const {
  return {{"bounding", bounding},
          {"effective", effective},
          {"permitted", permitted},
          {"inheritable", inheritable},
          {"ambient", ambient}};
}

absl::StatusOr<CapabilitySets> ApplyCapabilityChanges(const std::vector<std::string>& defaults,
                                                      const std::vector<std::string>& add,
                                                      const std::vector<std::string>& drop,
                                                      const std::vector<std::string>& add_ambient) {
  const size_t n = KnownCapabilities().size();
  CapBits caps(n, false);
  if (absl::Status s = SetAll(caps, defaults, true); !s.ok()) return s;
  if (std::any_of(add.begin(), add.end(), IsAll)) {
    for (const auto& cap : HostCapabilities()) caps[CapNumber(cap)] = true;
  }
  if (std::any_of(drop.begin(), drop.end(), IsAll)) caps.assign(n, false);
  if (absl::Status s = SetAll(caps, add, true); !s.ok()) return s;
  if (absl::Status s = SetAll(caps, drop, false); !s.ok()) return s;

  CapBits ambient(n, false);
  if (absl::Status s = SetAll(ambient, add_ambient, true); !s.ok()) return s;
  for (size_t i = 0; i < n; ++i) {
    if (ambient[i]) caps[i] = true;
  }

  CapabilitySets sets;
  sets.bounding = Names(caps);
  sets.effective = sets.bounding;
  sets.permitted = sets.bounding;
  sets.inheritable = Names(ambient);
  sets.ambient = sets.inheritable;
  return sets;
}

CapabilitySets PrivilegedCapabilities() {
  CapabilitySets sets;
  sets.bounding = HostCapabilities();
  sets.effective = sets.bounding;
  sets.permitted = sets.bounding;
  return sets;
}

}  // namespace berth::security
