// User namespaces for pods (CRI userns_options, KEP-127 "hostUsers: false"): validation of the
// mappings, a pinned namespace per pod, idmapped mounts, and whether this host supports them.
#ifndef BERTH_RUNTIME_USERNS_H_
#define BERTH_RUNTIME_USERNS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "nlohmann/json.hpp"
#include "proto/runtime/v1/api.pb.h"
#include "util/fd.h"

namespace berth::engine {

using IdMappings = google::protobuf::RepeatedPtrField<runtime::v1::IDMapping>;

// Whether two mapping lists are the same ranges in the same order.
bool SameMappings(const IdMappings& a, const IdMappings& b);

// Where the CRI carries the options, for error messages.
inline constexpr char kUsernsField[] = "linux.security_context.namespace_options.userns_options";

// One list of uid or gid mappings: non-empty, at most the kernel's 340 lines, no empty or
// 32-bit-overflowing range, no overlap on either side, container ID 0 mapped, and host ID 0
// never mapped (mapping host root into a pod would undo what the namespace is for).
// InvalidArgument naming `field`.
absl::Status ValidateIdMappings(const IdMappings& mappings, absl::string_view field);

// Whether a pod's namespace options ask for a user namespace of its own: false when
// userns_options is absent or mode NODE (the host's), true for mode POD with valid mappings.
// InvalidArgument for CONTAINER and TARGET, for mappings with NODE, for invalid mappings, and
// for POD together with the host's network, PID or IPC namespace.
absl::StatusOr<bool> ValidatePodUserNamespace(const runtime::v1::NamespaceOption& options);

// A container joins its pod's user namespace (or the host's) whatever it asks; when it does ask,
// the request must agree with the pod's. InvalidArgument naming the field otherwise.
absl::Status ValidateContainerUserNamespace(const runtime::v1::NamespaceOption& container,
                                            const runtime::v1::NamespaceOption& pod);

// The host ID that container ID `id` maps to; InvalidArgument when it is unmapped.
absl::StatusOr<uint32_t> HostIdOf(const IdMappings& mappings, uint32_t id);

// The host uid and gid of a user namespace's root (container ID 0).
struct HostRoot {
  uint32_t uid = 0;
  uint32_t gid = 0;
};
absl::StatusOr<HostRoot> HostRootOf(const IdMappings& uids, const IdMappings& gids);

// The text of /proc/<pid>/uid_map (or gid_map) for `mappings`.
std::string IdMapFile(const IdMappings& mappings);

// Creates a user namespace with these mappings, pinned by a bind mount at `userns_path` (a new
// file), and, when `netns_path` is not empty, a network namespace owned by it pinned there too:
// a netns the pod's root does not own would keep it from mounting sysfs or joining the netns
// after the user namespace. The pins outlive every process and berthd restarts.
absl::Status CreatePodNamespaces(const IdMappings& uids, const IdMappings& gids,
                                 const std::string& userns_path, const std::string& netns_path);

// Unmounts and removes a pinned namespace file; an absent file is fine.
absl::Status RemovePinnedNamespace(const std::string& path);

// Opens a pinned user namespace; FailedPrecondition when the file is not one.
absl::StatusOr<UniqueFd> OpenUserNamespace(const std::string& path);

// A user namespace with these mappings that only the returned fd keeps alive.
absl::StatusOr<UniqueFd> NewUserNamespace(const IdMappings& uids, const IdMappings& gids);

// Idmapped copies of a mount: IdmappedClone (util/mount.h).

// Idmapped copies of a container's volumes, attached under a staging directory only until
// `runc create` has bind-mounted them into the container; destruction detaches them and removes
// their mount points (never recursively: a staged mount shows a volume's files).
class StagedMounts {
 public:
  StagedMounts() = default;
  explicit StagedMounts(std::string dir) : dir_(std::move(dir)) {}
  ~StagedMounts() { Release(); }
  StagedMounts(StagedMounts&& o) noexcept;
  StagedMounts& operator=(StagedMounts&& o) noexcept;
  StagedMounts(const StagedMounts&) = delete;
  StagedMounts& operator=(const StagedMounts&) = delete;

  void Add(std::string mount_point) { points_.push_back(std::move(mount_point)); }
  size_t size() const { return points_.size(); }
  void Release();

 private:
  std::string dir_;
  std::vector<std::string> points_;
};

// For every mount of `config` with uidMappings/gidMappings (kubelet sets the pod's mappings on
// the volumes of a pod in a user namespace): validates them, attaches an idmapped copy of its
// host path under `staging_dir` and points the spec's bind mount there. `pod_userns_path` (may
// be empty) is reused when the mappings are the pod's own. Mounts with recursive_read_only
// (KEP-3857; runc 1.1 has no "rro") get a detached copy with every submount read-only, staged
// the same way, idmapped too when they have mappings. InvalidArgument naming mounts[i].
absl::StatusOr<StagedMounts> StageIdmappedMounts(const runtime::v1::ContainerConfig& config,
                                                 const std::string& pod_userns_path,
                                                 const IdMappings& pod_uids,
                                                 const IdMappings& pod_gids,
                                                 const std::string& staging_dir,
                                                 nlohmann::json* spec);

// Detaches and removes what a berthd that died mid-creation left under `staging_root`.
absl::Status RemoveStagedMounts(const std::string& staging_root);

// FailedPrecondition naming the first directory above `path` that the namespace's root cannot
// search: runc reaches a container's rootfs by path from inside the user namespace, where a
// directory of host root grants only its "other" permissions.
absl::Status CheckReachableFromUserNamespace(const std::string& path, const HostRoot& root);

// Whether this host can run pods in user namespaces the way berth does: creates a user
// namespace and mounts an overlay over an idmapped view of a directory made in `dir` (the
// filesystem the image layers live on). Uncached.
absl::Status ProbeUserNamespaces(const std::string& dir);

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_USERNS_H_
