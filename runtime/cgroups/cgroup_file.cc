// Allocation-free reads and parses of cgroup control files.
#include "runtime/cgroups/cgroup_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

namespace berth::cgroups::internal {

long ReadSmallFile(const char* path, char* buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  size_t total = 0;
  // Control files are generated in one go; keep reading until EOF in case of a short read.
  while (total + 1 < cap) {
    ssize_t n = read(fd, buf + total, cap - 1 - total);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return -err;
    }
    if (n == 0) break;
    total += static_cast<size_t>(n);
  }
  close(fd);
  buf[total] = '\0';
  return static_cast<long>(total);
}

std::optional<uint64_t> ParseUint(absl::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr == text.data()) return std::nullopt;
  return value;
}

std::optional<uint64_t> KeyedValue(absl::string_view text, absl::string_view key) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == absl::string_view::npos) eol = text.size();
    absl::string_view line = text.substr(pos, eol - pos);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ' ') {
      return ParseUint(line.substr(key.size() + 1));
    }
    pos = eol + 1;
  }
  return std::nullopt;
}

}  // namespace berth::cgroups::internal
