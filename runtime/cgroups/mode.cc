// Cgroup mode detection by filesystem magic, as runc and systemd do it.
#include "runtime/cgroups/mode.h"

#include <dirent.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace berth::cgroups {
namespace {

bool IsFsType(const std::string& path, long magic) {
  struct statfs fs;
  return statfs(path.c_str(), &fs) == 0 && static_cast<long>(fs.f_type) == magic;
}

}  // namespace

const char* CgroupModeName(CgroupMode mode) {
  switch (mode) {
    case CgroupMode::kLegacy:
      return "v1";
    case CgroupMode::kHybrid:
      return "hybrid";
    case CgroupMode::kUnified:
      return "v2";
  }
  return "unknown";
}

absl::StatusOr<CgroupMode> DetectCgroupMode(const std::string& root) {
  struct statfs fs;
  if (statfs(root.c_str(), &fs) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cgroup root \"", root, "\" cannot be examined: ", strerror(errno)));
  }
  if (static_cast<long>(fs.f_type) == CGROUP2_SUPER_MAGIC) return CgroupMode::kUnified;
  if (static_cast<long>(fs.f_type) != TMPFS_MAGIC) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cgroup root \"", root, "\" is neither a cgroup2 mount nor a tmpfs of v1 hierarchies"));
  }
  if (IsFsType(root + "/unified", CGROUP2_SUPER_MAGIC)) return CgroupMode::kHybrid;
  return CgroupMode::kLegacy;
}

bool SwapControllerAvailable(CgroupMode mode, const std::string& root) {
  if (mode != CgroupMode::kUnified) {
    return access((root + "/memory/memory.memsw.limit_in_bytes").c_str(), F_OK) == 0;
  }
  // The root cgroup has no memory.swap.max; any child with the memory controller does.
  DIR* dir = opendir(root.c_str());
  if (dir == nullptr) return false;
  bool found = false;
  while (struct dirent* e = readdir(dir)) {
    if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
    if (access((root + "/" + e->d_name + "/memory.swap.max").c_str(), F_OK) == 0) {
      found = true;
      break;
    }
  }
  closedir(dir);
  return found;
}

std::string PageSizeName(const std::string& sysfs_dir_name) {
  constexpr absl::string_view kPrefix = "hugepages-";
  absl::string_view v = sysfs_dir_name;
  if (!absl::ConsumePrefix(&v, kPrefix) || !absl::ConsumeSuffix(&v, "kB")) return "";
  uint64_t kb = 0;
  if (!absl::SimpleAtoi(v, &kb) || kb == 0) return "";
  // runc names sizes by the largest unit that divides them evenly, from KB up.
  static const char* const kUnits[] = {"KB", "MB", "GB", "TB"};
  size_t unit = 0;
  while (kb % 1024 == 0 && unit + 1 < std::size(kUnits)) {
    kb /= 1024;
    ++unit;
  }
  return absl::StrCat(kb, kUnits[unit]);
}

std::vector<std::string> HugetlbPageSizes(CgroupMode mode, const std::string& root,
                                          const std::string& hugepages_dir) {
  std::vector<std::string> sizes;
  bool controller = false;
  if (mode == CgroupMode::kUnified) {
    std::ifstream in(root + "/cgroup.controllers");
    std::string name;
    while (in >> name) controller = controller || name == "hugetlb";
  } else {
    controller = access((root + "/hugetlb").c_str(), F_OK) == 0;
  }
  if (!controller) return sizes;
  DIR* dir = opendir(hugepages_dir.c_str());
  if (dir == nullptr) return sizes;
  while (struct dirent* e = readdir(dir)) {
    std::string name = PageSizeName(e->d_name);
    if (!name.empty()) sizes.push_back(std::move(name));
  }
  closedir(dir);
  std::sort(sizes.begin(), sizes.end());
  return sizes;
}

}  // namespace berth::cgroups
