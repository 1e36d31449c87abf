// A streaming Backend that runs real local processes (no containers): exec forks the command with
// pipes or, with a tty, on a fresh pty that follows resizes; attach runs /bin/cat; port-forward
// connects to 127.0.0.1:<port>. For streaming server tests.
#ifndef BERTH_TEST_STREAMING_PROCESS_BACKEND_H_
#define BERTH_TEST_STREAMING_PROCESS_BACKEND_H_

#include <atomic>

#include "server/streaming/backend.h"

namespace berth::test {

class ProcessBackend : public streaming::Backend {
 public:
  // container_id is ignored; cmd is run with execvp.
  absl::StatusOr<int> Exec(const std::string& container_id, const std::vector<std::string>& cmd,
                           const engine::StreamIO& io) override;
  absl::Status Attach(const std::string& container_id, const engine::StreamIO& io) override;
  absl::Status PortForward(const std::string& pod_id, int32_t port, int fd) override;

  // Port-forward calls that reached a listener.
  int forwards() const { return forwards_.load(); }

 private:
  std::atomic<int> forwards_{0};
};

}  // namespace berth::test

#endif  // BERTH_TEST_STREAMING_PROCESS_BACKEND_H_
