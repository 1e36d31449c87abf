// The confinement of //server:cri_request_fuzz: a mount namespace where only its scratch root,
// /proc and libFuzzer's directories are writable (so an escape shows as EROFS), a log sink that
// aborts on such a message, a per-call watchdog and small helpers. Only the fuzz target includes
// it.
#ifndef BERTH_SERVER_CRI_REQUEST_FUZZ_HOST_H_
#define BERTH_SERVER_CRI_REQUEST_FUZZ_HOST_H_

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "glog/logging.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/server_context.h"
#include "proto/runtime/v1/api.grpc.pb.h"
#include "runtime/stats/collector.h"
#include "runtime/testing/engine_fakes.h"
#include "server/config.h"
#include "server/cri_request_fuzz.h"
#include "server/image_service.h"
#include "server/runtime_service.h"
#include "server/streaming/server.h"
#include "storage/images/image_store.h"
#include "util/fd.h"
#include "util/fs.h"

// libFuzzer's own mutation, for the custom mutator (absent from the seed-replay build, which
// never mutates).
extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size)
    __attribute__((weak));

namespace berth::server::fuzz {

// Longer than any call over the fakes takes (milliseconds), shorter than libFuzzer's -timeout.
inline constexpr absl::Duration kCallLimit = absl::Seconds(8);

[[noreturn]] inline void Fail(const std::string& why) {
  fprintf(stderr, "cri_request_fuzz: %s\n", why.c_str());
  fflush(stderr);
  abort();
}

inline const std::string& Erofs() {
  static const std::string text = strerror(EROFS);
  return text;
}

// ---------------------------------------------------------------------------------------------
// The read-only view of the host.

// What libFuzzer writes to, from its command line: corpus directories and the artifact directory.
inline std::vector<std::string> FuzzerOutputDirs(int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 1; argv != nullptr && i < argc; ++i) {
    const std::string a = argv[i];
    std::string dir;
    if (!a.empty() && a[0] != '-') {
      dir = a;
    } else if (absl::StartsWith(a, "-artifact_prefix=")) {
      dir = a.substr(strlen("-artifact_prefix="));
      if (!dir.empty() && dir.back() != '/') dir = std::filesystem::path(dir).parent_path();
    } else if (absl::StartsWith(a, "-exact_artifact_path=")) {
      dir = std::filesystem::path(a.substr(strlen("-exact_artifact_path="))).parent_path();
    }
    struct stat st;
    if (dir.empty() || stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    char* real = realpath(dir.c_str(), nullptr);
    if (real == nullptr) continue;
    out.emplace_back(real);
    free(real);
  }
  return out;
}

inline bool WriteProcFile(const char* path, const std::string& text) {
  const int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

// A mount namespace of this process's own (as root in a user namespace of its own when not root)
// in which every mount is read-only but `writable`, /proc and a fresh tmpfs at `scratch`. False
// when the kernel lets this process have none.
inline bool Confine(const std::string& scratch, const std::vector<std::string>& writable) {
  if (unshare(CLONE_NEWNS) != 0) {
    const uid_t uid = geteuid();
    const gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return false;
    if (!WriteProcFile("/proc/self/setgroups", "deny") ||
        !WriteProcFile("/proc/self/uid_map", absl::StrCat("0 ", uid, " 1")) ||
        !WriteProcFile("/proc/self/gid_map", absl::StrCat("0 ", gid, " 1"))) {
      Fail(absl::StrCat("mapping root in a user namespace: ", strerror(errno)));
    }
  }
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    Fail(absl::StrCat("making / private: ", strerror(errno)));
  }
  for (const std::string& w : writable) {
    if (mount(w.c_str(), w.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      Fail(absl::StrCat("binding ", w, ": ", strerror(errno)));
    }
  }
  struct mount_attr ro = {};
  ro.attr_set = MOUNT_ATTR_RDONLY;
  if (mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof(ro)) != 0) {
    Fail(absl::StrCat("making every mount read-only: ", strerror(errno)));
  }
  struct mount_attr rw = {};
  rw.attr_clr = MOUNT_ATTR_RDONLY;
  // /proc stays writable: the user-namespace code writes uid_map files of the processes it makes.
  if (mount_setattr(AT_FDCWD, "/proc", 0, &rw, sizeof(rw)) != 0) {
    Fail(absl::StrCat("/proc writable again: ", strerror(errno)));
  }
  for (const std::string& w : writable) {
    if (mount_setattr(AT_FDCWD, w.c_str(), AT_RECURSIVE, &rw, sizeof(rw)) != 0) {
      Fail(absl::StrCat(w, " writable again: ", strerror(errno)));
    }
  }
  if (mount("tmpfs", scratch.c_str(), "tmpfs", MS_NOSUID, "mode=0755,size=2g") != 0) {
    Fail(absl::StrCat("tmpfs at ", scratch, ": ", strerror(errno)));
  }
  return true;
}

// Collects berth's log lines that name EROFS (a failed write outside the scratch root).
class EscapeSink final : public google::LogSink {
 public:
  void send(google::LogSeverity, const char*, const char*, int, const google::LogMessageTime&,
            const char* message, size_t message_len) override {
    absl::string_view text(message, message_len);
    if (!absl::StrContains(text, Erofs())) return;
    absl::MutexLock l(&mu_);
    if (first_.empty()) first_ = std::string(text);
  }
  std::string Take() {
    absl::MutexLock l(&mu_);
    return std::exchange(first_, "");
  }

 private:
  absl::Mutex mu_;
  std::string first_ ABSL_GUARDED_BY(mu_);
};

// Aborts the process when a call runs past kCallLimit.
class Watchdog {
 public:
  Watchdog() : thread_([this] { Run(); }) {}
  ~Watchdog() {
    {
      absl::MutexLock l(&mu_);
      stop_ = true;
    }
    thread_.join();
  }
  void Arm(const char* what) {
    absl::MutexLock l(&mu_);
    what_ = what;
    deadline_ = absl::Now() + kCallLimit;
  }
  void Disarm() {
    absl::MutexLock l(&mu_);
    what_ = nullptr;
  }

 private:
  void Run() {
    absl::MutexLock l(&mu_);
    while (!stop_) {
      if (what_ != nullptr && absl::Now() > deadline_) {
        Fail(absl::StrCat(what_, " has not returned after ", absl::FormatDuration(kCallLimit)));
      }
      mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Milliseconds(100));
    }
  }

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  const char* what_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::Time deadline_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// Nobody connects to the streaming server: only its URLs are fuzzed.
class NoSessions final : public streaming::Backend {
 public:
  absl::StatusOr<int> Exec(const std::string&, const std::vector<std::string>&,
                           const engine::StreamIO&) override {
    return absl::UnimplementedError("no sessions in the fuzz target");
  }
  absl::Status Attach(const std::string&, const engine::StreamIO&) override {
    return absl::UnimplementedError("no sessions in the fuzz target");
  }
  absl::Status PortForward(const std::string&, int32_t, int) override {
    return absl::UnimplementedError("no sessions in the fuzz target");
  }
};

inline int CountEntries(const char* dir) {
  UniqueDir d(opendir(dir));
  if (!d) Fail(absl::StrCat("opendir ", dir));
  int n = 0;
  while (dirent* e = readdir(d.get())) n += e->d_name[0] != '.';
  return n;
}

inline void Must(const absl::Status& st, const std::string& what) {
  if (!st.ok()) Fail(absl::StrCat(what, ": ", st.ToString()));
}

// True when `path` is `dir` or below it (both lexically normal and absolute).
inline bool Inside(const std::string& path, const std::string& dir) {
  return path == dir || absl::StartsWith(path, dir == "/" ? dir : dir + "/");
}

// Mutates one field of `req` (cri_request_fuzz_mutator.cc); false when it found none to change.
bool MutateRequest(google::protobuf::Message* req, std::minstd_rand& rng);

}  // namespace berth::server::fuzz

#endif  // BERTH_SERVER_CRI_REQUEST_FUZZ_HOST_H_
