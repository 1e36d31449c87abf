// Pod user namespaces: mapping checks, namespaces made by a short-lived child and pinned by bind
// mounts, and a probe of what the kernel allows. The idmapped volume copies are staged_mounts.cc.
#include "runtime/userns.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/nsfs.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "glog/logging.h"
#include "network/loopback.h"
#include "util/fs.h"
#include "util/mount.h"

namespace berth::engine {
namespace {

namespace cri = runtime::v1;

// The kernel takes at most this many lines in uid_map/gid_map (since Linux 4.15).
constexpr int kMaxMappingLines = 340;
// IDs are 32 bits and (uid_t)-1 means "no ID": a range may end at 2^32 - 2 at most.
constexpr uint64_t kIdLimit = 0xFFFFFFFFull;

// The first pair of overlapping ranges in [start, start + length), as indices; -1 if none.
std::pair<int, int> FindOverlap(const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
  std::vector<int> order(ranges.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::sort(order.begin(), order.end(),
            [&](int a, int b) { return ranges[a].first < ranges[b].first; });
  for (size_t k = 1; k < order.size(); ++k) {
    const auto& prev = ranges[order[k - 1]];
    if (prev.first + prev.second > ranges[order[k]].first) {
      return {std::min(order[k - 1], order[k]), std::max(order[k - 1], order[k])};
    }
  }
  return {-1, -1};
}

absl::Status WriteProcFile(const std::string& path, const std::string& content) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, absl::StrCat("opening ", path));
  // The kernel takes a map in one write only.
  ssize_t n = write(fd.get(), content.data(), content.size());
  if (n != static_cast<ssize_t>(content.size())) {
    return ErrnoStatus(n < 0 ? errno : EIO, absl::StrCat("writing ", path));
  }
  return absl::OkStatus();
}

// A child process in a new user namespace with the given mappings (and, optionally, in a network
// namespace that user namespace owns), alive until the object goes, so that its /proc/<pid>/ns
// files can be opened or pinned. berthd is multithreaded: the child makes raw system calls only.
class NamespaceChild {
 public:
  static absl::StatusOr<std::unique_ptr<NamespaceChild>> Spawn(const IdMappings& uids,
                                                               const IdMappings& gids,
                                                               bool with_netns) {
    int to[2], from[2];
    if (pipe2(to, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
    UniqueFd to_read(to[0]), to_write(to[1]);
    if (pipe2(from, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
    UniqueFd from_read(from[0]), from_write(from[1]);
    pid_t pid = fork();
    if (pid < 0) return ErrnoStatus(errno, "fork for a user namespace");
    if (pid == 0) {
      close(to[1]);
      close(from[0]);
      // One status byte per step (0 or an errno); EOF on `to` means "exit now".
      auto report = [&](int err) {
        unsigned char b = static_cast<unsigned char>(err);
        if (write(from[1], &b, 1) != 1 || err != 0) _exit(1);
      };
      char go;
      report(unshare(CLONE_NEWUSER) == 0 ? 0 : errno);
      if (read(to[0], &go, 1) != 1) _exit(1);  // the parent writes the maps meanwhile
      if (with_netns) report(unshare(CLONE_NEWNET) == 0 ? 0 : errno);
      while (read(to[0], &go, 1) > 0) {
      }
      _exit(0);
    }
    auto child =
        absl::WrapUnique(new NamespaceChild(pid, std::move(to_write), std::move(from_read)));
    to_read.reset();
    from_write.reset();
    if (absl::Status st = child->Await("unshare(CLONE_NEWUSER)"); !st.ok()) return st;
    const std::string proc = absl::StrCat("/proc/", pid);
    if (absl::Status st = WriteProcFile(proc + "/uid_map", IdMapFile(uids)); !st.ok()) return st;
    if (absl::Status st = WriteProcFile(proc + "/gid_map", IdMapFile(gids)); !st.ok()) return st;
    if (write(child->to_child_.get(), "m", 1) != 1) {
      return ErrnoStatus(errno, "telling the user namespace child its maps are written");
    }
    if (with_netns) {
      if (absl::Status st = child->Await("unshare(CLONE_NEWNET)"); !st.ok()) return st;
    }
    return child;
  }

  ~NamespaceChild() {
    to_child_.reset();  // EOF: the child exits
    int status;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }

  std::string NsPath(absl::string_view which) const {
    return absl::StrCat("/proc/", pid_, "/ns/", which);
  }

 private:
  NamespaceChild(pid_t pid, UniqueFd to_child, UniqueFd from_child)
      : pid_(pid), to_child_(std::move(to_child)), from_child_(std::move(from_child)) {}

  absl::Status Await(const std::string& step) {
    unsigned char b;
    ssize_t n;
    while ((n = read(from_child_.get(), &b, 1)) < 0 && errno == EINTR) {
    }
    if (n != 1) return absl::InternalError(absl::StrCat(step, ": the child died"));
    if (b != 0) return ErrnoStatus(b, step);
    return absl::OkStatus();
  }

  pid_t pid_;
  UniqueFd to_child_;
  UniqueFd from_child_;
};

// Bind-mounts a namespace file at `path` (a new file), as `ip netns` does.
absl::Status Pin(const std::string& ns_file, const std::string& path) {
  {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
    if (!fd.valid()) return ErrnoStatus(errno, absl::StrCat("creating ", path));
  }
  if (mount(ns_file.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    int err = errno;
    unlink(path.c_str());
    return ErrnoStatus(err, absl::StrCat("pinning ", ns_file, " at ", path));
  }
  return absl::OkStatus();
}

}  // namespace

bool SameMappings(const IdMappings& a, const IdMappings& b) {
  if (a.size() != b.size()) return false;
  for (int i = 0; i < a.size(); ++i) {
    if (a[i].container_id() != b[i].container_id() || a[i].host_id() != b[i].host_id() ||
        a[i].length() != b[i].length()) {
      return false;
    }
  }
  return true;
}

absl::Status ValidateIdMappings(const IdMappings& mappings, absl::string_view field) {
  if (mappings.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " must have at least one mapping"));
  }
  if (mappings.size() > kMaxMappingLines) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " has ", mappings.size(), " mappings; the kernel takes at most ", kMaxMappingLines));
  }
  std::vector<std::pair<uint64_t, uint64_t>> container, host;
  bool root_mapped = false;
  for (int i = 0; i < mappings.size(); ++i) {
    const cri::IDMapping& m = mappings[i];
    const std::string at = absl::StrCat(field, "[", i, "]");
    if (m.length() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(at, ".length must be positive"));
    }
    if (uint64_t{m.container_id()} + m.length() > kIdLimit) {
      return absl::InvalidArgumentError(absl::StrCat(
          at, ": container IDs ", m.container_id(), " + length ", m.length(), " overflow 32 bits"));
    }
    if (uint64_t{m.host_id()} + m.length() > kIdLimit) {
      return absl::InvalidArgumentError(absl::StrCat(at, ": host IDs ", m.host_id(), " + length ",
                                                     m.length(), " overflow 32 bits"));
    }
    if (m.host_id() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          at, ".host_id 0 maps the host's root into the pod, which defeats its user namespace"));
    }
    root_mapped |= m.container_id() == 0;
    container.emplace_back(m.container_id(), m.length());
    host.emplace_back(m.host_id(), m.length());
  }
  if (auto [a, b] = FindOverlap(container); a >= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, "[", a, "] and ", field, "[", b, "] overlap in container IDs"));
  }
  if (auto [a, b] = FindOverlap(host); a >= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, "[", a, "] and ", field, "[", b, "] overlap in host IDs"));
  }
  if (!root_mapped) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must map container ID 0: the pod's processes start as its root"));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> ValidatePodUserNamespace(const cri::NamespaceOption& options) {
  if (!options.has_userns_options()) return false;
  const cri::UserNamespace& u = options.userns_options();
  const std::string mode_field = absl::StrCat(kUsernsField, ".mode");
  switch (u.mode()) {
    case cri::NODE:
      if (!u.uids().empty() || !u.gids().empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            kUsernsField,
            ".uids and .gids must be empty for mode NODE (the host's user namespace)"));
      }
      return false;
    case cri::POD:
      break;
    case cri::CONTAINER:
    case cri::TARGET:
      return absl::InvalidArgumentError(absl::StrCat(
          mode_field, " ", cri::NamespaceMode_Name(u.mode()),
          " is not supported: a pod's containers share the pod's user namespace (POD) or the "
          "host's (NODE)"));
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(mode_field, " ", static_cast<int>(u.mode()), " is not a namespace mode"));
  }
  const std::pair<const IdMappings*, const char*> lists[] = {{&u.uids(), ".uids"},
                                                             {&u.gids(), ".gids"}};
  for (const auto& [maps, name] : lists) {
    if (absl::Status st = ValidateIdMappings(*maps, absl::StrCat(kUsernsField, name)); !st.ok()) {
      return st;
    }
  }
  // A namespace the pod's root does not own cannot be joined from its user namespace, and runc
  // 1.1 cannot mount sysfs or procfs for it (no fallback to bind mounts).
  const std::pair<const char*, cri::NamespaceMode> shared[] = {
      {"network", options.network()}, {"pid", options.pid()}, {"ipc", options.ipc()}};
  for (const auto& [name, mode] : shared) {
    if (mode == cri::NODE) {
      return absl::InvalidArgumentError(absl::StrCat(
          "linux.security_context.namespace_options.", name,
          " NODE cannot be combined with a pod user namespace (", mode_field, " POD)"));
    }
  }
  return true;
}

absl::Status ValidateContainerUserNamespace(const cri::NamespaceOption& container,
                                            const cri::NamespaceOption& pod) {
  if (!container.has_userns_options()) return absl::OkStatus();
  const cri::UserNamespace& c = container.userns_options();
  const std::string mode_field = absl::StrCat(kUsernsField, ".mode");
  if (c.mode() == cri::CONTAINER || c.mode() == cri::TARGET) {
    return absl::InvalidArgumentError(absl::StrCat(
        mode_field, " ", cri::NamespaceMode_Name(c.mode()),
        " is not supported: a pod's containers share the pod's user namespace (POD) or the "
        "host's (NODE)"));
  }
  if (c.mode() != cri::POD && c.mode() != cri::NODE) {
    return absl::InvalidArgumentError(
        absl::StrCat(mode_field, " ", static_cast<int>(c.mode()), " is not a namespace mode"));
  }
  const bool pod_userns = pod.has_userns_options() && pod.userns_options().mode() == cri::POD;
  if ((c.mode() == cri::POD) != pod_userns) {
    return absl::InvalidArgumentError(absl::StrCat(
        mode_field, " ", cri::NamespaceMode_Name(c.mode()), " differs from the pod's (",
        pod_userns ? "POD" : "NODE", "): a container runs in its pod's user namespace"));
  }
  if (pod_userns && (!SameMappings(c.uids(), pod.userns_options().uids()) ||
                     !SameMappings(c.gids(), pod.userns_options().gids()))) {
    return absl::InvalidArgumentError(
        absl::StrCat(kUsernsField, ".uids and .gids must be the pod's mappings"));
  }
  if (!pod_userns && (!c.uids().empty() || !c.gids().empty())) {
    return absl::InvalidArgumentError(absl::StrCat(
        kUsernsField, ".uids and .gids must be empty for mode NODE (the host's user namespace)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> HostIdOf(const IdMappings& mappings, uint32_t id) {
  for (const cri::IDMapping& m : mappings) {
    if (id >= m.container_id() && uint64_t{id} < uint64_t{m.container_id()} + m.length()) {
      return m.host_id() + (id - m.container_id());
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("container ID ", id, " is not mapped"));
}

absl::StatusOr<HostRoot> HostRootOf(const IdMappings& uids, const IdMappings& gids) {
  absl::StatusOr<uint32_t> uid = HostIdOf(uids, 0);
  if (!uid.ok()) return uid.status();
  absl::StatusOr<uint32_t> gid = HostIdOf(gids, 0);
  if (!gid.ok()) return gid.status();
  return HostRoot{*uid, *gid};
}

std::string IdMapFile(const IdMappings& mappings) {
  std::string out;
  for (const cri::IDMapping& m : mappings) {
    absl::StrAppend(&out, m.container_id(), " ", m.host_id(), " ", m.length(), "\n");
  }
  return out;
}

absl::Status CreatePodNamespaces(const IdMappings& uids, const IdMappings& gids,
                                 const std::string& userns_path, const std::string& netns_path) {
  absl::StatusOr<std::unique_ptr<NamespaceChild>> child =
      NamespaceChild::Spawn(uids, gids, !netns_path.empty());
  if (!child.ok()) return child.status();
  if (absl::Status st = Pin((*child)->NsPath("user"), userns_path); !st.ok()) return st;
  if (!netns_path.empty()) {
    if (absl::Status st = Pin((*child)->NsPath("net"), netns_path); !st.ok()) {
      RemovePinnedNamespace(userns_path).IgnoreError();
      return st;
    }
    // As for every pod netns: lo is berth's job, not a CNI plugin's.
    if (absl::Status st = network::BringUpLoopback(netns_path); !st.ok()) {
      RemovePinnedNamespace(netns_path).IgnoreError();
      RemovePinnedNamespace(userns_path).IgnoreError();
      return st;
    }
  }
  return absl::OkStatus();
}

absl::Status RemovePinnedNamespace(const std::string& path) {
  if (absl::Status st = DetachAllMounts(path); !st.ok()) return st;
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("removing ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> OpenUserNamespace(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, absl::StrCat("opening user namespace ", path));
  if (ioctl(fd.get(), NS_GET_NSTYPE) != CLONE_NEWUSER) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a pinned user namespace"));
  }
  return fd;
}

absl::StatusOr<UniqueFd> NewUserNamespace(const IdMappings& uids, const IdMappings& gids) {
  absl::StatusOr<std::unique_ptr<NamespaceChild>> child = NamespaceChild::Spawn(uids, gids, false);
  if (!child.ok()) return child.status();
  return OpenUserNamespace((*child)->NsPath("user"));
}

absl::Status CheckReachableFromUserNamespace(const std::string& path, const HostRoot& root) {
  std::string dir = path;
  while (true) {
    size_t slash = dir.rfind('/');
    if (slash == std::string::npos) break;
    dir = slash == 0 ? "/" : dir.substr(0, slash);
    struct stat st;
    if (stat(dir.c_str(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("stat ", dir));
    const mode_t search = st.st_uid == root.uid   ? S_IXUSR
                          : st.st_gid == root.gid ? S_IXGRP
                                                  : S_IXOTH;
    if ((st.st_mode & search) == 0) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "containers of a pod in a user namespace cannot reach %s: directory %s has mode %04o "
          "and belongs to %d:%d, outside the pod's namespace (give others search permission, "
          "e.g. chmod o+x)",
          path, dir, st.st_mode & 07777, st.st_uid, st.st_gid));
    }
    if (dir == "/") break;
  }
  return absl::OkStatus();
}

absl::Status ProbeUserNamespaces(const std::string& dir) {
  if (!PathExists("/proc/self/ns/user")) {
    return absl::FailedPreconditionError("this kernel has no user namespaces");
  }
  std::string probe = absl::StrCat(dir, "/.userns-probe-XXXXXX");
  if (mkdtemp(probe.data()) == nullptr) {
    return ErrnoStatus(errno, absl::StrCat("creating a probe directory in ", dir));
  }
  const std::string merged = probe + "/merged";
  bool mounted = false;
  absl::Status result = [&]() -> absl::Status {
    for (const char* sub : {"/lower", "/upper", "/work", "/merged"}) {
      if (absl::Status st = MakeDirs(probe + sub, 0755); !st.ok()) return st;
    }
    if (absl::Status st = WriteFileAtomic(probe + "/lower/file", ""); !st.ok()) return st;
    constexpr uint32_t kHostRoot = 3000000000u;
    IdMappings maps;
    cri::IDMapping* m = maps.Add();
    m->set_container_id(0);
    m->set_host_id(kHostRoot);
    m->set_length(65536);
    absl::StatusOr<UniqueFd> userns = NewUserNamespace(maps, maps);
    if (!userns.ok()) return userns.status();
    absl::StatusOr<UniqueFd> view = IdmappedClone(probe, userns->get(), false);
    if (!view.ok()) return view.status();
    // What the image store does for a container of such a pod: lowers through the idmapped
    // view, upper and work as they are.
    if (absl::Status st = MountOverlayThroughTree(
            view->get(), probe,
            absl::StrCat("lowerdir=lower,upperdir=", probe, "/upper,workdir=", probe, "/work"),
            merged);
        !st.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("overlayfs does not take an idmapped lower layer here: ", st.message()));
    }
    mounted = true;
    struct stat st;
    if (stat((merged + "/file").c_str(), &st) != 0) return ErrnoStatus(errno, "stat probe file");
    if (st.st_uid != kHostRoot) {
      return absl::FailedPreconditionError(absl::StrCat(
          "an idmapped overlay lower layer shows uid ", st.st_uid, " instead of ", kHostRoot));
    }
    return absl::OkStatus();
  }();
  if (mounted && umount2(merged.c_str(), 0) != 0 && umount2(merged.c_str(), MNT_DETACH) != 0) {
    LOG(ERROR) << "unmounting " << merged << ": " << strerror(errno) << "; leaving " << probe;
    return result;
  }
  if (absl::Status st = RemoveAll(probe); !st.ok()) LOG(WARNING) << st;
  return result;
}

}  // namespace berth::engine
