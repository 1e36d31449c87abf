// A pod's network counters from /proc/<pid>/net/dev of a process inside the pod's netns.
#ifndef BERTH_RUNTIME_STATS_NET_DEV_H_
#define BERTH_RUNTIME_STATS_NET_DEV_H_

#include <sys/types.h>

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/runtime/v1/api.pb.h"

namespace berth::engine::stats {

// Every interface of a /proc/<pid>/net/dev text except loopback (cAdvisor and kubelet leave it
// out too), in file order. Lines that do not parse are skipped.
std::vector<runtime::v1::NetworkInterfaceUsage> ParseNetDev(absl::string_view text);

// Reads /proc/<pid>/net/dev: the counters of the network namespace `pid` lives in.
// NotFound naming the pid when the process is gone.
absl::StatusOr<std::vector<runtime::v1::NetworkInterfaceUsage>> ReadNetDev(pid_t pid);

// CRI NetworkUsage from the interfaces: all of them, and eth0 (the CNI default) as the default
// interface, or the first one when there is no eth0.
runtime::v1::NetworkUsage ToNetworkUsage(std::vector<runtime::v1::NetworkInterfaceUsage> interfaces,
                                         int64_t timestamp_ns);

}  // namespace berth::engine::stats

#endif  // BERTH_RUNTIME_STATS_NET_DEV_H_
