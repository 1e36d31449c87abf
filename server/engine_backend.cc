#include "server/engine_backend.h"

namespace berth::server {

absl::StatusOr<int> EngineBackend::Exec(const std::string& id, const std::vector<std::string>& cmd,
                                        const engine::StreamIO& io) {
  return engine_->Exec(id, cmd, io);
}

absl::Status EngineBackend::Attach(const std::string& id, const engine::StreamIO& io) {
  return engine_->Attach(id, io);
}

absl::Status EngineBackend::PortForward(const std::string& pod, int32_t port, int fd) {
  return engine_->PortForward(pod, port, fd);
}

}  // namespace berth::server
