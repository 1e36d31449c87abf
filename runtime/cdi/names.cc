// CDI names: vendor, class and device name rules, qualified names, and the device names a
// container requests (CRI's CDI_devices and "cdi.k8s.io/" annotations).
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/cdi/cdi.h"
#include "runtime/cdi/cdi_internal.h"

namespace berth::cdi {
namespace {

using internal::IsAlnum;
using internal::IsLetter;
using internal::kMaxClassBytes;
using internal::kMaxDeviceNameBytes;
using internal::kMaxVendorBytes;
using internal::Quote;

absl::Status CheckVendorOrClass(absl::string_view what, absl::string_view name, size_t max_len) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  if (name.size() > max_len) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", Quote(name), " is longer than ", max_len, " characters"));
  }
  if (!IsLetter(name[0])) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", Quote(name), " must start with a letter"));
  }
  for (size_t i = 1; i + 1 < name.size(); ++i) {
    char c = name[i];
    if (!IsAlnum(c) && c != '_' && c != '-' && c != '.') {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " ", Quote(name), " has an invalid character ", Quote(name.substr(i, 1))));
    }
  }
  if (!IsAlnum(name.back())) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", Quote(name), " must end with a letter or digit"));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> DefaultSpecDirs() { return {"/etc/cdi", "/var/run/cdi"}; }

absl::Status ValidateVendorName(absl::string_view vendor) {
  return CheckVendorOrClass("vendor", vendor, kMaxVendorBytes);
}

absl::Status ValidateClassName(absl::string_view cls) {
  return CheckVendorOrClass("class", cls, kMaxClassBytes);
}

absl::Status ValidateDeviceName(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("device name is empty");
  if (name.size() > kMaxDeviceNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("device name ", Quote(name), " is longer than ",
                                                   kMaxDeviceNameBytes, " characters"));
  }
  if (!IsAlnum(name[0])) {
    return absl::InvalidArgumentError(
        absl::StrCat("device name ", Quote(name), " must start with a letter or digit"));
  }
  for (size_t i = 1; i + 1 < name.size(); ++i) {
    char c = name[i];
    if (!IsAlnum(c) && c != '_' && c != '-' && c != '.' && c != ':') {
      return absl::InvalidArgumentError(absl::StrCat(
          "device name ", Quote(name), " has an invalid character ", Quote(name.substr(i, 1))));
    }
  }
  if (!IsAlnum(name.back())) {
    return absl::InvalidArgumentError(
        absl::StrCat("device name ", Quote(name), " must end with a letter or digit"));
  }
  return absl::OkStatus();
}

absl::StatusOr<QualifiedName> ParseQualifiedName(absl::string_view device) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("CDI device ", Quote(device), ": ", why));
  };
  size_t eq = device.find('=');
  size_t slash = device.find('/');
  if (device.empty() || device[0] == '/' || eq == absl::string_view::npos || eq == 0 ||
      eq + 1 == device.size() || slash == absl::string_view::npos || slash == 0 || slash > eq ||
      slash + 1 == eq) {
    return bad("not a fully qualified name (vendor.com/class=name)");
  }
  QualifiedName q{std::string(device.substr(0, slash)),
                  std::string(device.substr(slash + 1, eq - slash - 1)),
                  std::string(device.substr(eq + 1))};
  if (absl::Status st = ValidateVendorName(q.vendor); !st.ok()) return bad(st.message());
  if (absl::Status st = ValidateClassName(q.cls); !st.ok()) return bad(st.message());
  if (absl::Status st = ValidateDeviceName(q.name); !st.ok()) return bad(st.message());
  return q;
}

absl::StatusOr<std::vector<std::string>> CollectDeviceNames(
    const std::vector<std::string>& cri_devices,
    const std::map<std::string, std::string>& annotations) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](absl::string_view name, absl::string_view from) -> absl::Status {
    absl::StatusOr<QualifiedName> q = ParseQualifiedName(name);
    if (!q.ok()) return absl::InvalidArgumentError(absl::StrCat(from, ": ", q.status().message()));
    if (seen.insert(std::string(name)).second) out.emplace_back(name);
    if (out.size() > kMaxRequestedDevices) {
      return absl::InvalidArgumentError(
          absl::StrCat("more than ", kMaxRequestedDevices, " CDI devices requested"));
    }
    return absl::OkStatus();
  };
  for (const std::string& d : cri_devices) {
    if (absl::Status st = add(d, "CDI_devices"); !st.ok()) return st;
  }
  for (const auto& [key, value] : annotations) {
    if (!absl::StartsWith(key, kAnnotationPrefix)) continue;
    for (absl::string_view d : absl::StrSplit(value, ',')) {
      if (absl::Status st = add(d, absl::StrCat("annotation ", Quote(key))); !st.ok()) return st;
    }
  }
  return out;
}

}  // namespace berth::cdi
