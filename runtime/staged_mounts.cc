// Idmapped and recursively read-only copies of a container's volumes (open_tree/mount_setattr),
// staged under a directory until `runc create` has bound them into the container.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "runtime/userns.h"
#include "util/fs.h"
#include "util/mount.h"

namespace berth::engine {
namespace {

namespace cri = runtime::v1;

}  // namespace

StagedMounts::StagedMounts(StagedMounts&& o) noexcept
    : dir_(std::move(o.dir_)), points_(std::move(o.points_)) {
  o.points_.clear();
  o.dir_.clear();
}

StagedMounts& StagedMounts::operator=(StagedMounts&& o) noexcept {
  if (this != &o) {
    Release();
    dir_ = std::move(o.dir_);
    points_ = std::move(o.points_);
    o.points_.clear();
    o.dir_.clear();
  }
  return *this;
}

void StagedMounts::Release() {
  bool clean = true;
  for (const std::string& p : points_) {
    absl::Status st = DetachAllMounts(p);
    if (st.ok()) st = RemoveMountPoint(p);
    if (!st.ok()) {
      LOG(ERROR) << "releasing staged idmapped mount: " << st;
      clean = false;
    }
  }
  points_.clear();
  if (clean && !dir_.empty() && rmdir(dir_.c_str()) != 0 && errno != ENOENT) {
    LOG(WARNING) << "removing " << dir_ << ": " << strerror(errno);
  }
  dir_.clear();
}

namespace {

// Attaches the detached tree for mounts[i] at <staging_dir>/<i> and points the spec's bind mount
// of it there; runc binds it like any host path, and the staging copy is detached after create.
absl::Status AttachStaged(const UniqueFd& tree, const struct stat& st, int i, const cri::Mount& m,
                          const std::string& staging_dir, StagedMounts* staged_out,
                          nlohmann::json* spec) {
  StagedMounts& staged = *staged_out;
  const std::string at = absl::StrCat("mounts[", i, "]");
  if (staged.size() == 0) {
    if (absl::Status s = MakeDirs(staging_dir, 0700); !s.ok()) return s;
  }
  const std::string point = absl::StrCat(staging_dir, "/", i);
  if (S_ISDIR(st.st_mode)) {
    if (mkdir(point.c_str(), 0700) != 0) return ErrnoStatus(errno, absl::StrCat("mkdir ", point));
  } else {
    UniqueFd f(open(point.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!f.valid()) return ErrnoStatus(errno, absl::StrCat("creating ", point));
  }
  staged.Add(point);
  if (move_mount(tree.get(), "", AT_FDCWD, point.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return ErrnoStatus(
        errno, absl::StrCat("attaching the prepared copy of ", m.host_path(), " at ", point));
  }
  bool found = false;
  for (auto& jm : (*spec)["mounts"]) {
    if (jm.value("type", "") == "bind" && jm.value("destination", "") == m.container_path() &&
        jm.value("source", "") == m.host_path()) {
      jm["source"] = point;
      found = true;
    }
  }
  if (!found) {
    return absl::InternalError(absl::StrCat(at, ": the spec has no bind mount of ", m.host_path(),
                                            " at ", m.container_path()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<StagedMounts> StageIdmappedMounts(const cri::ContainerConfig& config,
                                                 const std::string& pod_userns_path,
                                                 const IdMappings& pod_uids,
                                                 const IdMappings& pod_gids,
                                                 const std::string& staging_dir,
                                                 nlohmann::json* spec) {
  StagedMounts staged(staging_dir);
  for (int i = 0; i < config.mounts_size(); ++i) {
    const cri::Mount& m = config.mounts(i);
    const bool idmapped = !m.uidmappings().empty() || !m.gidmappings().empty();
    if (!idmapped && !m.recursive_read_only()) continue;
    const std::string at = absl::StrCat("mounts[", i, "]");
    if (m.recursive_read_only()) {
      // critest's rules (and containerd's): recursive read-only needs readonly and private
      // propagation, since a propagated submount would appear writable.
      if (!m.readonly()) {
        return absl::InvalidArgumentError(
            absl::StrCat(at, ".recursive_read_only needs ", at, ".readonly"));
      }
      if (m.propagation() != cri::PROPAGATION_PRIVATE) {
        return absl::InvalidArgumentError(
            absl::StrCat(at, ".recursive_read_only needs private propagation, not ",
                         cri::MountPropagation_Name(m.propagation())));
      }
    }
    if (!idmapped) {
      // Recursive read-only alone: a read-only detached copy of the tree that runc binds.
      struct stat st;
      if (stat(m.host_path().c_str(), &st) != 0) {
        return ErrnoStatus(errno, absl::StrCat(at, ".host_path ", m.host_path()));
      }
      absl::StatusOr<UniqueFd> tree = ReadOnlyClone(m.host_path());
      if (!tree.ok()) {
        return absl::Status(tree.status().code(), absl::StrCat(at, ": ", tree.status().message()));
      }
      if (absl::Status s = AttachStaged(*tree, st, i, m, staging_dir, &staged, spec); !s.ok())
        return s;
      continue;
    }
    if (absl::Status st = ValidateIdMappings(m.uidmappings(), at + ".uidMappings"); !st.ok()) {
      return st;
    }
    if (absl::Status st = ValidateIdMappings(m.gidmappings(), at + ".gidMappings"); !st.ok()) {
      return st;
    }
    if (m.propagation() == cri::PROPAGATION_BIDIRECTIONAL) {
      return absl::InvalidArgumentError(absl::StrCat(
          at,
          ".propagation BIDIRECTIONAL cannot be combined with uidMappings: an idmapped "
          "mount is a private copy"));
    }
    UniqueFd userns;
    if (!pod_userns_path.empty() && SameMappings(m.uidmappings(), pod_uids) &&
        SameMappings(m.gidmappings(), pod_gids)) {
      absl::StatusOr<UniqueFd> fd = OpenUserNamespace(pod_userns_path);
      if (!fd.ok()) return fd.status();
      userns = std::move(*fd);
    } else {
      absl::StatusOr<UniqueFd> fd = NewUserNamespace(m.uidmappings(), m.gidmappings());
      if (!fd.ok()) return fd.status();
      userns = std::move(*fd);
    }
    struct stat st;
    if (stat(m.host_path().c_str(), &st) != 0) {
      return ErrnoStatus(errno, absl::StrCat(at, ".host_path ", m.host_path()));
    }
    absl::StatusOr<UniqueFd> tree = IdmappedClone(m.host_path(), userns.get(), /*recursive=*/true);
    if (!tree.ok()) {
      return absl::Status(tree.status().code(), absl::StrCat(at, ": ", tree.status().message()));
    }
    if (m.recursive_read_only()) {
      if (absl::Status ro = MakeTreeReadOnly(tree->get(), m.host_path()); !ro.ok()) {
        return absl::Status(ro.code(), absl::StrCat(at, ": ", ro.message()));
      }
    }
    if (absl::Status s = AttachStaged(*tree, st, i, m, staging_dir, &staged, spec); !s.ok())
      return s;
  }
  return staged;
}

absl::Status RemoveStagedMounts(const std::string& staging_root) {
  std::unique_ptr<DIR, int (*)(DIR*)> root(opendir(staging_root.c_str()), closedir);
  if (!root) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, absl::StrCat("listing ", staging_root));
  }
  absl::Status result;
  while (dirent* c = readdir(root.get())) {
    std::string name = c->d_name;
    if (name == "." || name == "..") continue;
    const std::string dir = absl::StrCat(staging_root, "/", name);
    std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
    if (!d) continue;
    while (dirent* e = readdir(d.get())) {
      std::string p = e->d_name;
      if (p == "." || p == "..") continue;
      const std::string point = absl::StrCat(dir, "/", p);
      absl::Status st = DetachAllMounts(point);
      if (st.ok()) st = RemoveMountPoint(point);
      result.Update(st);
    }
    if (rmdir(dir.c_str()) != 0 && errno != ENOENT) {
      result.Update(ErrnoStatus(errno, absl::StrCat("removing ", dir)));
    }
  }
  return result;
}

}  // namespace berth::engine
