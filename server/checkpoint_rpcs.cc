// CheckpointContainer: a CRIU checkpoint of a running container into an archive. Restoring one is
// CreateContainer with the archive's path as the image (container_rpcs.cc), as with CRI-O.
#include "server/grpc_status.h"
#include "server/runtime_service.h"

namespace berth::server {

grpc::Status RuntimeServiceImpl::CheckpointContainer(grpc::ServerContext*,
                                                     const cri::CheckpointContainerRequest* req,
                                                     cri::CheckpointContainerResponse*) {
  if (req->container_id().empty()) return InvalidArgument("container_id is required");
  // The engine says what a location must be (an absolute path) and what a timeout may be.
  if (req->location().empty()) return InvalidArgument("location is required");
  return ToGrpc(engine_->CheckpointContainer(req->container_id(), req->location(), req->timeout()));
}

}  // namespace berth::server
