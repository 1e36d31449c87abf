// The per-pod files bind-mounted into every container: hostname, hosts and resolv.conf.
#ifndef BERTH_RUNTIME_POD_FILES_H_
#define BERTH_RUNTIME_POD_FILES_H_

#include "absl/status/status.h"
#include "proto/berth/v1/records.pb.h"

namespace berth::engine {

// Writes <sandbox dir>/{hostname,hosts,resolv.conf} for the pod (host's files for host network).
absl::Status WritePodFiles(const berth::v1::Sandbox& sandbox, bool host_network);

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_POD_FILES_H_
