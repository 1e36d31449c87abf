// Internal: reading small cgroup files into a caller's buffer and picking numbers out of them.
#ifndef BERTH_RUNTIME_CGROUPS_CGROUP_FILE_H_
#define BERTH_RUNTIME_CGROUPS_CGROUP_FILE_H_

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"

namespace berth::cgroups::internal {

// Reads up to cap-1 bytes of `path` into buf (NUL-terminated). Returns the bytes read, or
// -errno. One open, one or two reads, one close: no allocation.
long ReadSmallFile(const char* path, char* buf, size_t cap);

// A decimal unsigned at the start of `text` (leading whitespace allowed); nullopt for "max" or
// anything else that is not a number.
std::optional<uint64_t> ParseUint(absl::string_view text);

// The value of "key value" lines (memory.stat, cpu.stat, memory.events, memory.oom_control).
std::optional<uint64_t> KeyedValue(absl::string_view text, absl::string_view key);

}  // namespace berth::cgroups::internal

#endif  // BERTH_RUNTIME_CGROUPS_CGROUP_FILE_H_
