// Running berthd: assemble the parts from the config, serve until a signal, shut down in order.
#ifndef BERTH_SERVER_DAEMON_H_
#define BERTH_SERVER_DAEMON_H_

#include "absl/status/status.h"
#include "server/config.h"

namespace berth::server {

// Serves the CRI until SIGTERM or SIGINT; in-flight calls get a bounded time to finish.
absl::Status RunDaemon(const Config& config);

// `berthd check`: prints what the host has and lacks; true when containers can run.
bool CheckHost(const Config& config);

// The pause binary berthd uses: the configured one, else berth-pause next to berthd (or in the
// Bazel output tree beside it), else on PATH.
absl::StatusOr<std::string> FindPauseBinary(const Config& config);

}  // namespace berth::server

#endif  // BERTH_SERVER_DAEMON_H_
