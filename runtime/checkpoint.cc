// Checkpoint archives: the bounds every archive is held to (and their test seams), the metadata
// CheckpointContainer writes beside CRIU's images, and the CRI config merge of a restore (as
// CRI-O's). The writable layer's walk is in checkpoint_write.cc, reading archives back in
// checkpoint_read.cc, CRIU itself in criu.cc.
#include "runtime/checkpoint.h"

#include <sys/stat.h>

#include <atomic>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "runtime/checkpoint_internal.h"
#include "runtime/checkpoint_testing.h"
#include "util/fs.h"

namespace berth::engine {
namespace {

namespace cri = runtime::v1;
using json = nlohmann::json;

// Bounds on a whole archive, so a crafted one (a gzip bomb, millions of empty files) cannot fill
// the node's disk or inodes while it is unpacked. Constants, not config: CRI has no field for
// them and berth's config knows checkpoints only by runtime.criu_path. The bytes are most of a
// checkpoint's weight (CRIU's pages are the container's memory, plus its writable layer), so the
// bound sits well above the memory of any pod berth expects to restore; the entries are CRIU's
// few images per process and thread plus the writable layer's files (node_modules-sized ones
// included). Checkpointing refuses what restoring would refuse.
constexpr int64_t kMaxArchiveBytes = int64_t{256} << 30;
constexpr int64_t kMaxArchiveEntries = int64_t{1} << 20;

std::atomic<int64_t> max_archive_bytes{kMaxArchiveBytes};
std::atomic<int64_t> max_archive_entries{kMaxArchiveEntries};

absl::Mutex walk_hook_mu(absl::kConstInit);
std::function<void(const std::string&)>* walk_hook = nullptr;  // guarded by walk_hook_mu

std::string Rfc3339(int64_t ns) {
  return absl::FormatTime(absl::RFC3339_full, absl::FromUnixNanos(ns), absl::UTCTimeZone());
}

}  // namespace

namespace checkpoint_internal {

int64_t MaxArchiveBytes() { return max_archive_bytes.load(); }
int64_t MaxArchiveEntries() { return max_archive_entries.load(); }

void RunWalkHook(const std::string& name) {
  absl::MutexLock l(&walk_hook_mu);
  if (walk_hook != nullptr) (*walk_hook)(name);
}

const char* TypeName(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFIFO:
      return "a FIFO";
    case S_IFCHR:
      return "a character device";
    case S_IFBLK:
      return "a block device";
    case S_IFSOCK:
      return "a socket";
    case S_IFLNK:
      return "a symlink";
    case S_IFDIR:
      return "a directory";
    default:
      return "a regular file";
  }
}

}  // namespace checkpoint_internal

namespace checkpoint_testing {

void SetWalkHook(std::function<void(const std::string& name)> hook) {
  absl::MutexLock l(&walk_hook_mu);
  delete walk_hook;
  walk_hook = hook ? new std::function<void(const std::string&)>(std::move(hook)) : nullptr;
}

ArchiveLimits DefaultArchiveLimits() { return {kMaxArchiveBytes, kMaxArchiveEntries}; }

void SetArchiveLimits(const ArchiveLimits& limits) {
  max_archive_bytes = limits.max_bytes;
  max_archive_entries = limits.max_entries;
}

}  // namespace checkpoint_testing

bool IsCheckpointArchiveRef(absl::string_view image) { return absl::StartsWith(image, "/"); }

absl::Status WriteCheckpointMetadata(const berth::v1::Container& container,
                                     int64_t checkpointed_at_ns, const std::string& dir) {
  const auto& cc = container.config();
  json cfg = {
      {"berthCheckpointVersion", kCheckpointFormatVersion},
      {"id", cc.id()},
      {"name", cc.name()},
      {"sandboxId", cc.sandbox_id()},
      {"rootfsImage", cc.image_id()},
      {"rootfsImageRef", cc.image_ref()},
      {"rootfsImageName", cc.image_name()},
      {"runtime", "runc"},
      {"createdTime", Rfc3339(cc.created_at_ns())},
      {"checkpointedTime", Rfc3339(checkpointed_at_ns)},
      {"checkpointedAtNs", checkpointed_at_ns},
  };
  if (absl::Status st =
          WriteFileAtomic(absl::StrCat(dir, "/", kCheckpointConfigDump), cfg.dump(2) + "\n", 0600);
      !st.ok()) {
    return st;
  }
  if (absl::Status st =
          WriteFileAtomic(absl::StrCat(dir, "/", kCheckpointSpecDump), cc.oci_spec(), 0600);
      !st.ok()) {
    return st;
  }
  return WriteFileAtomic(absl::StrCat(dir, "/", kCheckpointRecord), container.SerializeAsString(),
                         0600);
}

// The restore rule. CRI-O's CRImportCheckpoint (server/container_restore.go) builds the new
// container's config from the request (metadata, labels, linux resources and security context,
// and the host side of every mount) and takes from the archive only what describes the process
// CRIU brings back: the image (rootfsImageName) and, via the spec, what runs in it. berth is
// stricter where CRI-O still trusts the archive: an archive is a file anyone able to write one
// may have made, so
//   from the archive: image, command, args, envs, working_dir — what the checkpointed container
//     was, all of it confined to the container (the image must already be on the node);
//   from the request alone, unset when the request leaves them unset: metadata, labels,
//     annotations (runc reads org.criu.config from them: a CRIU config file can run host
//     commands), mounts and devices (host paths), log path, linux resources and security
//     context (privileges, capabilities, SELinux/AppArmor/seccomp, run-as user, namespaces),
//     stdin/tty, and everything else.
// Mounts are the request's at the container paths the checkpointed container had mounts at (as
// CRI-O does: CRIU restores exactly those); CheckRestoreMounts refuses a request that lacks one.
cri::ContainerConfig MergeRestoreConfig(const cri::ContainerConfig& checkpointed,
                                        const cri::ContainerConfig& request) {
  cri::ContainerConfig out = request;
  *out.mutable_image() = checkpointed.image();
  *out.mutable_command() = checkpointed.command();
  *out.mutable_args() = checkpointed.args();
  *out.mutable_envs() = checkpointed.envs();
  out.set_working_dir(checkpointed.working_dir());
  absl::flat_hash_set<std::string> paths;
  for (const auto& m : checkpointed.mounts()) paths.insert(m.container_path());
  out.clear_mounts();
  for (const auto& m : request.mounts()) {
    if (paths.contains(m.container_path())) *out.add_mounts() = m;
  }
  return out;
}

absl::Status CheckRestoreMounts(const cri::ContainerConfig& checkpointed,
                                const cri::ContainerConfig& request) {
  absl::flat_hash_set<std::string> given;
  for (const auto& m : request.mounts()) given.insert(m.container_path());
  std::vector<std::string> missing;
  for (const auto& m : checkpointed.mounts()) {
    if (!given.contains(m.container_path())) missing.push_back(m.container_path());
  }
  if (missing.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "config.mounts: the checkpointed container had mounts at ", absl::StrJoin(missing, ", "),
      ", which the request must give (their host paths come only from the request)"));
}

bool AwaitingRestore(const berth::v1::Container& c) {
  return c.config().has_restore() && c.state().status() == berth::v1::CONTAINER_STATUS_CREATED &&
         c.state().conmon_pid() == 0;
}

}  // namespace berth::engine
