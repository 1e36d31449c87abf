// Persistent network namespaces for pods, bind-mounted under a directory the way `ip netns` does.
#ifndef BERTH_NETWORK_NETNS_H_
#define BERTH_NETWORK_NETNS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth::network {

// Where CreateNetns(netns_dir, pod_id) makes the pod's namespace.
std::string NetnsPath(const std::string& netns_dir, const std::string& pod_id);

// Creates a new network namespace that outlives every process in it, bind-mounted at
// `<netns_dir>/<pod_id>`, and returns that path. berthd's own threads never change namespace.
// Fails with AlreadyExists when the file is already there.
absl::StatusOr<std::string> CreateNetns(const std::string& netns_dir, const std::string& pod_id);

// Unmounts (lazily) and unlinks a namespace file. An absent file is fine: removal is idempotent.
absl::Status RemoveNetns(const std::string& path);

// The namespace files directly under `netns_dir` (full paths, sorted); an absent dir is empty.
// The engine compares them with its pods on restart to remove leftovers.
absl::StatusOr<std::vector<std::string>> ListNetns(const std::string& netns_dir);

// Whether `path` is a mounted network namespace (not just a leftover empty file).
bool IsNetnsMounted(const std::string& path);

}  // namespace berth::network

#endif  // BERTH_NETWORK_NETNS_H_
