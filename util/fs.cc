// Filesystem helpers: atomic replace by rename, recursive mkdir/remove, random ids.
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/random/random.h"
#include "absl/time/clock.h"
#include "absl/strings/str_cat.h"
#include "util/fd.h"

namespace berth {

absl::Status WriteFileAtomic(const std::string& path, const std::string& content, int mode,
                             bool sync) {
  std::string tmp = absl::StrCat(path, ".tmp-", getpid(), "-", gettid());
  UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd.valid())
    return absl::InternalError(absl::StrCat("creating ", tmp, ": ", strerror(errno)));
  size_t off = 0;
  while (off < content.size()) {
    ssize_t w = write(fd.get(), content.data() + off, content.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int e = errno;
      unlink(tmp.c_str());
      return absl::InternalError(absl::StrCat("writing ", tmp, ": ", strerror(e)));
    }
    off += w;
  }
  fchmod(fd.get(), mode);
  if (sync) fsync(fd.get());
  fd.reset();
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("renaming ", tmp, " to ", path, ": ", strerror(e)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, " does not exist"));
    return absl::InternalError(absl::StrCat("opening ", path, ": ", strerror(errno)));
  }
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t r = read(fd.get(), buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return absl::InternalError(absl::StrCat("reading ", path, ": ", strerror(errno)));
    if (r == 0) break;
    out.append(buf, r);
  }
  return out;
}

absl::Status MakeDirs(const std::string& path_in, int mode) {
  std::string path = path_in;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  // Only what this call creates gets `mode` (chmod, past the umask): an existing directory keeps
  // its mode, so a path from a client can never loosen one (a log path of ../../root).
  std::string cur;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    cur = path.substr(0, next);
    pos = next + 1;
    if (cur.empty() || cur == "/") continue;
    if (mkdir(cur.c_str(), next == path.size() ? mode : 0755) == 0) {
      if (chmod(cur.c_str(), next == path.size() ? mode : 0755) != 0) {
        return Errno(absl::StrCat("chmod ", cur));
      }
      continue;
    }
    if (errno != EEXIST) return Errno(absl::StrCat("creating directory ", cur));
    struct stat st;
    if (stat(cur.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("creating directory ", path, ": ", cur, " exists and is not a directory"));
    }
  }
  return absl::OkStatus();
}

namespace {

// Directories deeper than this are left in place with an error rather than risking the stack.
constexpr int kMaxRemoveDepth = 4096;

// Removes the entries of the open directory `dir` (at `path`, on device `dev`) and then
// `name` itself from `parent`. Never follows a link; never enters another filesystem.
absl::Status RemoveDirAt(int parent, const char* name, const std::string& path, dev_t dev,
                         int depth) {
  if (depth > kMaxRemoveDepth) {
    return absl::FailedPreconditionError(absl::StrCat("removing ", path, ": nested too deeply"));
  }
  int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return Errno(absl::StrCat("opening ", path));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return Errno(absl::StrCat("stat ", path));
  }
  if (st.st_dev != dev) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("removing ", path, ": it is a mount point (unmount it first)"));
  }
  DIR* d = fdopendir(fd);
  if (d == nullptr) {
    close(fd);
    return Errno(absl::StrCat("reading ", path));
  }
  absl::Status result;
  while (dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    const std::string child = absl::StrCat(path, "/", e->d_name);
    struct stat cst;
    if (fstatat(dirfd(d), e->d_name, &cst, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      result = Errno(absl::StrCat("stat ", child));
      break;
    }
    if (S_ISDIR(cst.st_mode)) {
      if (cst.st_dev != dev) {
        result = absl::FailedPreconditionError(
            absl::StrCat("removing ", child, ": it is a mount point (unmount it first)"));
        break;
      }
      result = RemoveDirAt(dirfd(d), e->d_name, child, dev, depth + 1);
      if (!result.ok()) break;
      continue;
    }
    if (unlinkat(dirfd(d), e->d_name, 0) != 0 && errno != ENOENT) {
      result = Errno(absl::StrCat("removing ", child));
      break;
    }
  }
  closedir(d);
  if (!result.ok()) return result;
  if (unlinkat(parent, name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
    if (errno == EBUSY) {
      return absl::FailedPreconditionError(
          absl::StrCat("removing ", path, ": it is a mount point"));
    }
    return Errno(absl::StrCat("removing ", path));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RemoveAll(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return Errno(absl::StrCat("stat ", path));
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlink(path.c_str()) != 0 && errno != ENOENT) return Errno(absl::StrCat("removing ", path));
    return absl::OkStatus();
  }
  // The tree may hold a container's files: everything below is reached by descriptor from here.
  const std::string parent_path = std::filesystem::path(path).parent_path().string();
  const std::string base = std::filesystem::path(path).filename().string();
  int parent =
      open(parent_path.empty() ? "." : parent_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (parent < 0) return Errno(absl::StrCat("opening ", parent_path));
  // The top may itself be a mount (an emptied shm, say): its own device is the one to stay on.
  absl::Status result = RemoveDirAt(parent, base.c_str(), path, st.st_dev, 0);
  close(parent);
  return result;
}

bool PathExists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

std::string NewId() {
  static thread_local absl::BitGen gen;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(64, '0');
  for (char& c : id) c = kHex[absl::Uniform(gen, 0, 16)];
  return id;
}

absl::Status WaitForPath(const std::string& path, int timeout_ms) {
  const std::string dir = std::filesystem::path(path).parent_path().string();
  UniqueFd in(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!in.valid()) return absl::InternalError(absl::StrCat("inotify_init1: ", strerror(errno)));
  // Watch first, then look: a file created in between is seen either way.
  if (inotify_add_watch(in.get(), dir.c_str(), IN_CREATE | IN_MOVED_TO) < 0) {
    return absl::InternalError(absl::StrCat("watching ", dir, ": ", strerror(errno)));
  }
  const absl::Time deadline = absl::Now() + absl::Milliseconds(timeout_ms);
  while (!PathExists(path)) {
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0) return absl::DeadlineExceededError(absl::StrCat(path, " did not appear"));
    struct pollfd p {
      in.get(), POLLIN, 0
    };
    if (poll(&p, 1, static_cast<int>(left)) < 0 && errno != EINTR) {
      return absl::InternalError(absl::StrCat("waiting for ", path, ": ", strerror(errno)));
    }
    char buf[4096];
    while (read(in.get(), buf, sizeof(buf)) > 0) {
    }
  }
  return absl::OkStatus();
}

absl::Status ErrnoStatus(int err, absl::string_view what) {
  std::string msg = absl::StrCat(what, ": ", strerror(err));
  if (err == ENOENT) return absl::NotFoundError(msg);
  if (err == EEXIST) return absl::AlreadyExistsError(msg);
  if (err == EPERM || err == EACCES) return absl::PermissionDeniedError(msg);
  return absl::InternalError(msg);
}

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(errno)));
}

}  // namespace berth
