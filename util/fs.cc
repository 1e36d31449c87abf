// Filesystem helpers: atomic replace by rename, recursive mkdir/remove, random ids.
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
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
  if (!fd.valid()) return absl::InternalError(absl::StrCat("creating ", tmp, ": ", strerror(errno)));
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

absl::Status MakeDirs(const std::string& path, int mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return absl::InternalError(absl::StrCat("creating directory ", path, ": ", ec.message()));
  chmod(path.c_str(), mode);
  return absl::OkStatus();
}

absl::Status RemoveAll(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return absl::InternalError(absl::StrCat("removing ", path, ": ", ec.message()));
  }
  return absl::OkStatus();
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
    struct pollfd p{in.get(), POLLIN, 0};
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
