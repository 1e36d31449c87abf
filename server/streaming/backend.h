// The interface the streaming server runs sessions on; berth's engine implements it (and tests
// implement it with plain processes).
#ifndef BERTH_SERVER_STREAMING_BACKEND_H_
#define BERTH_SERVER_STREAMING_BACKEND_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/stream_io.h"

namespace berth::streaming {

// Each call blocks until its session ends and runs on a thread of its own, never on a thread
// that reads or writes a connection, so it may take as long as the process lives.
//
// The descriptors in StreamIO belong to the server and stay open for the whole call; the backend
// neither closes them nor keeps them after returning. `in` reaches EOF when the client closes
// stdin; writes to `out`/`err` fail (EPIPE) once the client is gone, which is how a backend
// learns that a session was abandoned. With `tty`, sizes arrive on `io.resize` (Pop it until
// closed()), the first usually before any input.
class Backend {
 public:
  virtual ~Backend() = default;
  // Runs `cmd` in the container; returns the process's exit code (non-zero exits are not
  // errors: the server reports them to the client as NonZeroExitCode). An error status means
  // the command could not be run at all.
  virtual absl::StatusOr<int> Exec(const std::string& container_id,
                                   const std::vector<std::string>& cmd,
                                   const engine::StreamIO& io) = 0;
  // Joins the container's main process's stdio until the client or the process goes away.
  virtual absl::Status Attach(const std::string& container_id, const engine::StreamIO& io) = 0;
  // Copies bytes both ways between `fd` (a connected stream socket the server owns) and `port`
  // in the pod's network namespace until both directions end. A shutdown(SHUT_WR) seen on `fd`
  // is the client's half-close; the backend half-closes `fd` when the port's side ends.
  virtual absl::Status PortForward(const std::string& pod_id, int32_t port, int fd) = 0;
};

}  // namespace berth::streaming

#endif  // BERTH_SERVER_STREAMING_BACKEND_H_
