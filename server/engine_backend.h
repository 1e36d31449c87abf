// The streaming server's backend in berthd: exec, attach and port-forward sessions run on the
// engine (runc exec through a pty or pipes, conmon's attach socket, the pod's netns).
#ifndef BERTH_SERVER_ENGINE_BACKEND_H_
#define BERTH_SERVER_ENGINE_BACKEND_H_

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "server/streaming/backend.h"

namespace berth::server {

class EngineBackend final : public streaming::Backend {
 public:
  explicit EngineBackend(engine::Engine* engine) : engine_(engine) {}

  absl::StatusOr<int> Exec(const std::string& id, const std::vector<std::string>& cmd,
                           const engine::StreamIO& io) override;
  absl::Status Attach(const std::string& id, const engine::StreamIO& io) override;
  absl::Status PortForward(const std::string& pod, int32_t port, int fd) override;

 private:
  engine::Engine* engine_;
};

}  // namespace berth::server

#endif  // BERTH_SERVER_ENGINE_BACKEND_H_
