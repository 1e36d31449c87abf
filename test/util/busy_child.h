// A forked test process that waits for Go() (so it can be moved into a cgroup first), then
// touches memory and spins; killed and reaped on destruction.
#ifndef BERTH_TEST_UTIL_BUSY_CHILD_H_
#define BERTH_TEST_UTIL_BUSY_CHILD_H_

#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace berth::test {

class BusyChild {
 public:
  explicit BusyChild(size_t touch_bytes) {
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      close(fds[1]);
      char c;
      while (read(fds[0], &c, 1) < 0 && errno == EINTR) {
      }
      void* mem =
          mmap(nullptr, touch_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (mem == MAP_FAILED) _exit(2);
      volatile char* p = static_cast<char*>(mem);
      for (size_t i = 0; i < touch_bytes; i += 4096) p[i] = 1;
      [[maybe_unused]] volatile uint64_t sink = 0;
      for (uint64_t i = 0;; ++i) sink = i;
    }
    close(fds[0]);
    go_fd_ = fds[1];
  }
  ~BusyChild() {
    if (go_fd_ >= 0) close(go_fd_);
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  void Go() {
    (void)!write(go_fd_, "g", 1);
    close(go_fd_);
    go_fd_ = -1;
  }
  // Blocks until the child ends; its wait status.
  int WaitForExit() {
    int status = 0;
    waitpid(pid_, &status, 0);
    reaped_ = true;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int go_fd_ = -1;
  bool reaped_ = false;
};

// Moves a child that touches 256 MiB into a cgroup through `add` (the caller has limited that
// cgroup's memory to a few MiB; without swap) and waits for it: "" when the kernel's OOM killer
// SIGKILLed it, otherwise what happened instead.
inline std::string RunIntoOomKill(const std::function<bool(pid_t)>& add) {
  BusyChild child(size_t{256} << 20);
  if (child.pid() <= 0) return "fork failed";
  if (!add(child.pid())) return "cannot move the child into the cgroup";
  child.Go();
  const int status = child.WaitForExit();
  if (!WIFSIGNALED(status)) return "the child exited with status " + std::to_string(status);
  if (WTERMSIG(status) != SIGKILL)
    return "the child died of signal " + std::to_string(WTERMSIG(status));
  return "";
}

}  // namespace berth::test

#endif  // BERTH_TEST_UTIL_BUSY_CHILD_H_
