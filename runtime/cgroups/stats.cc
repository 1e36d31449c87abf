// ReadStats: a handful of open/read/close calls per container, parsed in place.
#include "runtime/cgroups/stats.h"

#include <limits.h>
#include <time.h>

#include <cerrno>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "runtime/cgroups/cgroup_file.h"
#include "runtime/cgroups/paths.h"

namespace berth::cgroups {
namespace {

using internal::KeyedValue;
using internal::ParseUint;
using internal::ReadSmallFile;

// memory.stat is the largest file read (about 1.5 KiB on v1, 3 KiB on v2).
constexpr size_t kBufSize = 16384;

// Builds "<root>/<controller>/<rel>/<file>" (controller may be empty on v2) and reads it.
long ReadCgroupFile(const std::string& root, const char* controller, const std::string& rel,
                    const char* file, char* buf) {
  char path[PATH_MAX];
  int n =
      controller[0] != '\0'
          ? snprintf(path, sizeof(path), "%s/%s%s/%s", root.c_str(), controller, rel.c_str(), file)
          : snprintf(path, sizeof(path), "%s%s/%s", root.c_str(), rel.c_str(), file);
  if (n < 0 || static_cast<size_t>(n) >= sizeof(path)) return -ENAMETOOLONG;
  return ReadSmallFile(path, buf, kBufSize);
}

std::optional<uint64_t> ReadUint(const std::string& root, const char* controller,
                                 const std::string& rel, const char* file, char* buf) {
  long n = ReadCgroupFile(root, controller, rel, file, buf);
  if (n < 0) return std::nullopt;
  return ParseUint(absl::string_view(buf, n));
}

// Where one hierarchy keeps the memory figures: its usage file and memory.stat's keys.
struct MemoryFiles {
  const char* controller;  // "" on v2
  const char* usage;
  const char* inactive_file;
  const char* rss;
  const char* page_faults;
  const char* major_page_faults;
};
constexpr MemoryFiles kV1Memory{"memory",    "memory.usage_in_bytes", "total_inactive_file",
                                "total_rss", "total_pgfault",         "total_pgmajfault"};
constexpr MemoryFiles kV2Memory{"",     "memory.current", "inactive_file",
                                "anon", "pgfault",        "pgmajfault"};

// Usage, working set (usage less inactive file pages, as kubelet's eviction counts it), RSS and
// faults; false when the usage file cannot be read.
bool ReadMemory(const std::string& root, const MemoryFiles& f, const std::string& rel, char* buf,
                CgroupStats& s) {
  auto usage = ReadUint(root, f.controller, rel, f.usage, buf);
  if (!usage) return false;
  s.has_memory = true;
  s.memory_usage_bytes = *usage;
  long n = ReadCgroupFile(root, f.controller, rel, "memory.stat", buf);
  if (n > 0) {
    absl::string_view stat(buf, n);
    uint64_t inactive = KeyedValue(stat, f.inactive_file).value_or(0);
    s.working_set_bytes = s.memory_usage_bytes > inactive ? s.memory_usage_bytes - inactive : 0;
    s.rss_bytes = KeyedValue(stat, f.rss).value_or(0);
    s.page_faults = KeyedValue(stat, f.page_faults).value_or(0);
    s.major_page_faults = KeyedValue(stat, f.major_page_faults).value_or(0);
  }
  return true;
}

void ReadPids(const std::string& root, const char* controller, const std::string& rel, char* buf,
              CgroupStats& s) {
  if (auto pids = ReadUint(root, controller, rel, "pids.current", buf)) {
    s.has_pids = true;
    s.pids_current = *pids;
  }
}

void ReadV1(const std::string& root, const std::string& rel, char* buf, CgroupStats& s) {
  if (auto usage = ReadUint(root, "cpuacct", rel, "cpuacct.usage", buf)) {
    s.has_cpu = true;
    s.cpu_usage_ns = *usage;
  }
  if (ReadMemory(root, kV1Memory, rel, buf, s)) {
    auto limit = ReadUint(root, "memory", rel, "memory.limit_in_bytes", buf);
    // v1 reports "no limit" as the largest page-aligned value it can hold.
    if (limit && *limit < (uint64_t{1} << 62)) s.memory_limit_bytes = *limit;
  }
  ReadPids(root, "pids", rel, buf, s);
}

void ReadV2(const std::string& root, const std::string& rel, char* buf, CgroupStats& s) {
  long n = ReadCgroupFile(root, "", rel, "cpu.stat", buf);
  if (n > 0) {
    if (auto usec = KeyedValue(absl::string_view(buf, n), "usage_usec")) {
      s.has_cpu = true;
      s.cpu_usage_ns = *usec * 1000;
    }
  }
  if (ReadMemory(root, kV2Memory, rel, buf, s)) {
    // "max" does not parse: unlimited stays 0.
    s.memory_limit_bytes = ReadUint(root, "", rel, "memory.max", buf).value_or(0);
  }
  ReadPids(root, "", rel, buf, s);
}

}  // namespace

std::optional<uint64_t> ReadCgroupUint(const std::string& rel, const char* controller,
                                       const char* file, const std::string& root) {
  char buf[kBufSize];
  return ReadUint(root, controller, rel, file, buf);
}

absl::StatusOr<CgroupStats> ReadStats(const std::string& cgroups_path, CgroupMode mode,
                                      const std::string& root) {
  absl::StatusOr<std::string> rel = CgroupRelativeDir(cgroups_path);
  if (!rel.ok()) return rel.status();
  CgroupStats s;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  s.timestamp_ns = int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
  char buf[kBufSize];
  if (mode == CgroupMode::kUnified) {
    ReadV2(root, *rel, buf, s);
  } else {
    ReadV1(root, *rel, buf, s);
  }
  if (!s.has_cpu && !s.has_memory && !s.has_pids) {
    return absl::NotFoundError(
        absl::StrCat("cgroup \"", cgroups_path, "\" not found under ", root));
  }
  return s;
}

}  // namespace berth::cgroups
