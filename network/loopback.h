// Brings up `lo` in a pod's network namespace without a CNI plugin process (as containerd and
// CRI-O do), so a pod's loopback costs an ioctl instead of a plugin exec on every ADD and DEL.
#ifndef BERTH_NETWORK_LOOPBACK_H_
#define BERTH_NETWORK_LOOPBACK_H_

#include <string>

#include "absl/status/status.h"

namespace berth::network {

// Sets IFF_UP on `lo` in the calling thread's current network namespace.
absl::Status BringUpLoopbackHere();

// Same for the namespace pinned at `netns_path`, entered from a short-lived thread so no other
// thread of the caller changes namespace. FailedPrecondition when the file is not a netns.
absl::Status BringUpLoopback(const std::string& netns_path);

}  // namespace berth::network

#endif  // BERTH_NETWORK_LOOPBACK_H_
