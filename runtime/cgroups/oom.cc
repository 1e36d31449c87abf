// The OOM-kill counter of a cgroup, from memory.oom_control (v1) or memory.events (v2).
#include "runtime/cgroups/oom.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "runtime/cgroups/cgroup_file.h"
#include "runtime/cgroups/paths.h"

namespace berth::cgroups {

absl::StatusOr<uint64_t> ReadOomKillCount(const std::string& cgroups_path, CgroupMode mode,
                                          const std::string& root) {
  absl::StatusOr<std::string> rel = CgroupRelativeDir(cgroups_path);
  if (!rel.ok()) return rel.status();
  std::string path = mode == CgroupMode::kUnified
                         ? absl::StrCat(root, *rel, "/memory.events")
                         : absl::StrCat(root, "/memory", *rel, "/memory.oom_control");
  char buf[4096];
  long n = internal::ReadSmallFile(path.c_str(), buf, sizeof(buf));
  if (n < 0) {
    std::string msg = absl::StrCat("cannot read \"", path, "\": ", strerror(static_cast<int>(-n)));
    return n == -ENOENT ? absl::NotFoundError(msg) : absl::InternalError(msg);
  }
  return internal::KeyedValue(absl::string_view(buf, n), "oom_kill").value_or(0);
}

}  // namespace berth::cgroups
