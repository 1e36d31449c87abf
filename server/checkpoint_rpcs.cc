// CheckpointContainer: a CRIU checkpoint of a running container into an archive.
#include "server/grpc_status.h"
#include "server/runtime_service.h"

namespace berth::server {

grpc::Status RuntimeServiceImpl::CheckpointContainer(grpc::ServerContext*,
                                                     const cri::CheckpointContainerRequest* req,
                                                     cri::CheckpointContainerResponse*) {
  if (req->container_id().empty()) return InvalidArgument("container_id is required");
  if (req->location().empty() || req->location()[0] != '/') {
    return InvalidArgument("location must be an absolute path for the checkpoint archive");
  }
  return ToGrpc(engine_->CheckpointContainer(req->container_id(), req->location()));
}

}  // namespace berth::server
