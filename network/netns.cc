// Network namespace files: created from a short-lived thread so berthd's threads stay in the host
// namespace, and pinned by a bind mount of that thread's /proc entry.
#include "network/netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "network/loopback.h"
#include "util/fd.h"
#include "util/fs.h"

namespace berth::network {
namespace {

constexpr long kNsfsMagic = 0x6e736673;
constexpr long kProcMagic = 0x9fa0;

// Like `ip netns`: the directory becomes a shared mount (bind-mounting it onto itself first when
// it is not a mount point), so namespace mounts made or removed here propagate into mount
// namespaces created later instead of being pinned by private copies there.
absl::Status MakeSharedMountDir(const std::string& dir) {
  if (absl::Status s = MakeDirs(dir, 0755); !s.ok()) return s;
  if (mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) == 0) return absl::OkStatus();
  if (errno != EINVAL) return ErrnoStatus(errno, absl::StrCat("making ", dir, " a shared mount"));
  if (mount(dir.c_str(), dir.c_str(), "none", MS_BIND | MS_REC, nullptr) != 0) {
    return ErrnoStatus(errno, absl::StrCat("bind-mounting ", dir, " onto itself"));
  }
  if (mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) != 0) {
    return ErrnoStatus(errno, absl::StrCat("making ", dir, " a shared mount"));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsNetnsMounted(const std::string& path) {
  struct statfs st;
  if (statfs(path.c_str(), &st) != 0) return false;
  return st.f_type == kNsfsMagic || st.f_type == kProcMagic;
}

std::string NetnsPath(const std::string& netns_dir, const std::string& pod_id) {
  return absl::StrCat(netns_dir, "/", pod_id);
}

absl::StatusOr<std::string> CreateNetns(const std::string& netns_dir, const std::string& pod_id) {
  if (pod_id.empty() || pod_id.find('/') != std::string::npos || pod_id == "." || pod_id == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid pod id \"", pod_id, "\" for a netns name"));
  }
  if (absl::Status s = MakeSharedMountDir(netns_dir); !s.ok()) return s;
  const std::string path = NetnsPath(netns_dir, pod_id);
  {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
    if (!fd.valid()) {
      return ErrnoStatus(errno, absl::StrCat("creating netns file for pod \"", pod_id, "\""));
    }
  }
  absl::Cleanup remove_file = [&] { unlink(path.c_str()); };

  // unshare(CLONE_NEWNET) moves only the calling thread, so a throwaway thread does it and
  // pins its new namespace before exiting; no other berthd thread ever sees it.
  absl::Status result;
  std::thread worker([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      result = ErrnoStatus(errno, absl::StrCat("unshare(CLONE_NEWNET) for pod \"", pod_id, "\""));
      return;
    }
    // lo comes up here, for free, rather than by a loopback CNI plugin exec per ADD and DEL.
    if (absl::Status st = BringUpLoopbackHere(); !st.ok()) {
      result = absl::Status(st.code(), absl::StrCat("pod \"", pod_id, "\": ", st.message()));
      return;
    }
    std::string self = absl::StrCat("/proc/self/task/", gettid(), "/ns/net");
    if (mount(self.c_str(), path.c_str(), "none", MS_BIND, nullptr) != 0) {
      result = ErrnoStatus(
          errno, absl::StrCat("bind-mounting the netns of pod \"", pod_id, "\" at ", path));
    }
  });
  worker.join();
  if (!result.ok()) return result;
  std::move(remove_file).Cancel();
  return path;
}

absl::Status RemoveNetns(const std::string& path) {
  // A namespace mounted twice (a crash between steps, or a propagated copy) needs as many unmounts.
  for (int i = 0; i < 16; ++i) {
    if (umount2(path.c_str(), MNT_DETACH) == 0) continue;
    if (errno == EINVAL || errno == ENOENT) break;
    return ErrnoStatus(errno, absl::StrCat("unmounting netns ", path));
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("removing netns file ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ListNetns(const std::string& netns_dir) {
  std::vector<std::string> out;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir(netns_dir.c_str()), closedir);
  if (!dir) {
    if (errno == ENOENT) return out;
    return ErrnoStatus(errno, absl::StrCat("listing ", netns_dir));
  }
  while (dirent* e = readdir(dir.get())) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string full = absl::StrCat(netns_dir, "/", name);
    struct stat st;
    // lstat: a mounted nsfs file reports as a regular file, which is what we list.
    if (lstat(full.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    out.push_back(std::move(full));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace berth::network
