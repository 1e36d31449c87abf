// MeasureTree: an iterative openat/fstatat walk (no recursion, so deep trees cannot overflow the
// stack), one fd per directory level at most.
#include "runtime/stats/layer_walk.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "util/fd.h"

namespace berth::engine::stats {
namespace {

// fdopendir takes ownership of the fd only when it succeeds.
UniqueDir OpenDirAt(int parent, const char* name) {
  UniqueFd fd(openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return nullptr;
  DIR* d = fdopendir(fd.get());
  if (d == nullptr) return nullptr;
  fd.release();
  return UniqueDir(d);
}

}  // namespace

absl::StatusOr<TreeUsage> MeasureTree(const std::string& dir) {
  struct stat root;
  if (lstat(dir.c_str(), &root) != 0) {
    std::string msg = absl::StrCat("writable layer \"", dir, "\": ", strerror(errno));
    return errno == ENOENT ? absl::NotFoundError(msg) : absl::UnavailableError(msg);
  }
  if (!S_ISDIR(root.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("writable layer \"", dir, "\" is not a directory"));
  }
  TreeUsage usage;
  usage.bytes = static_cast<uint64_t>(root.st_blocks) * 512;
  usage.inodes = 1;
  absl::flat_hash_set<ino_t> linked;  // inodes with several links, counted once (same device)
  std::vector<UniqueDir> stack;
  if (UniqueDir d = OpenDirAt(AT_FDCWD, dir.c_str())) {
    stack.push_back(std::move(d));
  } else {
    return absl::UnavailableError(
        absl::StrCat("opening writable layer \"", dir, "\": ", strerror(errno)));
  }
  while (!stack.empty()) {
    DIR* d = stack.back().get();
    errno = 0;
    struct dirent* e = readdir(d);
    if (e == nullptr) {
      stack.pop_back();
      continue;
    }
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone meanwhile
    if (st.st_dev != root.st_dev) continue;  // a mount point: another filesystem's usage
    if (st.st_nlink > 1 && !S_ISDIR(st.st_mode) && !linked.insert(st.st_ino).second) continue;
    usage.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    ++usage.inodes;
    if (S_ISDIR(st.st_mode)) {
      if (UniqueDir child = OpenDirAt(dirfd(d), e->d_name)) stack.push_back(std::move(child));
    }
  }
  return usage;
}

}  // namespace berth::engine::stats
