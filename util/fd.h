// UniqueFd: an owned file descriptor, closed exactly once; UniqueDir: an owned DIR stream.
#ifndef BERTH_UTIL_FD_H_
#define BERTH_UTIL_FD_H_

#include <dirent.h>
#include <errno.h>
#include <unistd.h>

#include <cstddef>
#include <memory>
#include <utility>

namespace berth {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};
// An opendir/fdopendir stream, closed (with the descriptor fdopendir took) exactly once.
using UniqueDir = std::unique_ptr<DIR, DirCloser>;

// Writes all of `data`, retrying short writes and EINTR; false on any other failure.
inline bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace berth

#endif  // BERTH_UTIL_FD_H_
