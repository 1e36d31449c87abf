// cgroupsPath forms for runc's cgroupfs and systemd drivers, and their directories.
#include "runtime/cgroups/paths.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace berth::cgroups {
namespace {

constexpr absl::string_view kPrefix = "berth";

// "kubepods-burstable-pod1.slice" -> "/kubepods.slice/kubepods-burstable.slice/...pod1.slice".
absl::StatusOr<std::string> ExpandSlice(absl::string_view slice) {
  if (!absl::ConsumeSuffix(&slice, ".slice") || absl::StrContains(slice, '/')) {
    return absl::InvalidArgumentError(
        absl::StrCat("cgroup parent \"", slice, "\" is not a systemd slice name"));
  }
  if (slice == "-") return std::string("/");
  std::string out;
  std::string prefix;
  for (absl::string_view part : absl::StrSplit(slice, '-')) {
    if (part.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("systemd slice \"", slice, ".slice\" has an empty component"));
    }
    absl::StrAppend(&prefix, prefix.empty() ? "" : "-", part);
    absl::StrAppend(&out, "/", prefix, ".slice");
  }
  return out;
}

}  // namespace

absl::string_view CgroupDriverName(CgroupDriver driver) {
  return driver == CgroupDriver::kSystemd ? "systemd" : "cgroupfs";
}

absl::StatusOr<CgroupDriver> ParseCgroupDriver(absl::string_view name) {
  if (name == "cgroupfs") return CgroupDriver::kCgroupfs;
  if (name == "systemd") return CgroupDriver::kSystemd;
  return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" is not cgroupfs or systemd"));
}

absl::StatusOr<std::string> ContainerCgroupsPath(CgroupDriver driver, absl::string_view parent,
                                                 absl::string_view id) {
  if (id.empty() || absl::StrContains(id, '/') || absl::StrContains(id, ':')) {
    return absl::InvalidArgumentError(
        absl::StrCat("container id \"", id, "\" cannot name a cgroup"));
  }
  if (driver == CgroupDriver::kCgroupfs) {
    if (parent.empty()) parent = "/berth";
    if (parent[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat(
          "cgroup parent \"", parent,
          "\" is not an absolute path: is the kubelet using the systemd cgroup driver?"));
    }
    while (parent.size() > 1 && absl::ConsumeSuffix(&parent, "/")) {
    }
    return absl::StrCat(parent == "/" ? "" : parent, "/", kPrefix, "-", id);
  }
  if (parent.empty()) parent = "system.slice";
  if (!absl::EndsWith(parent, ".slice") || absl::StrContains(parent, '/')) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cgroup parent \"", parent,
        "\" is not a systemd slice: is the kubelet using the cgroupfs cgroup driver?"));
  }
  return absl::StrCat(parent, ":", kPrefix, ":", id);
}

absl::StatusOr<std::string> CgroupRelativeDir(absl::string_view cgroups_path) {
  if (absl::StartsWith(cgroups_path, "/")) return std::string(cgroups_path);
  std::vector<absl::string_view> parts = absl::StrSplit(cgroups_path, ':');
  if (parts.size() != 3) {
    return absl::InvalidArgumentError(absl::StrCat("cgroups path \"", cgroups_path,
                                                   "\" is neither absolute nor slice:prefix:name"));
  }
  absl::StatusOr<std::string> slice = ExpandSlice(parts[0].empty() ? "system.slice" : parts[0]);
  if (!slice.ok()) return slice.status();
  std::string scope = parts[1].empty() ? absl::StrCat(parts[2], ".scope")
                                       : absl::StrCat(parts[1], "-", parts[2], ".scope");
  return absl::StrCat(*slice == "/" ? "" : *slice, "/", scope);
}

}  // namespace berth::cgroups
