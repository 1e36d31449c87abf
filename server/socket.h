// The CRI Unix socket: parent directory, stale-socket replacement, refusal if a live berthd owns
// it.
#ifndef BERTH_SERVER_SOCKET_H_
#define BERTH_SERVER_SOCKET_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth::server {

// "unix:///run/berth/berth.sock" -> "/run/berth/berth.sock".
absl::StatusOr<std::string> SocketPath(const std::string& listen);

// Makes the socket path usable: creates its directory (0711), removes a stale socket left by a
// crashed run, and fails with FailedPrecondition if something is still accepting on it.
absl::Status PrepareSocketPath(const std::string& path);

}  // namespace berth::server

#endif  // BERTH_SERVER_SOCKET_H_
