// Exec, Attach and PortForward: validate, then hand back a one-time URL on the streaming server.
#include "server/grpc_status.h"
#include "server/runtime_service.h"

namespace berth::server {

grpc::Status RuntimeServiceImpl::Exec(grpc::ServerContext*, const cri::ExecRequest* req,
                                      cri::ExecResponse* resp) {
  if (req->container_id().empty()) return InvalidArgument("container_id is required");
  if (req->cmd_size() == 0) return InvalidArgument("cmd is required");
  if (req->tty() && req->stderr()) return InvalidArgument("tty and stderr cannot both be true");
  if (!req->stdin() && !req->stdout() && !req->stderr()) {
    return InvalidArgument("one of stdin, stdout and stderr must be true");
  }
  if (streaming_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "the streaming server is not running");
  }
  absl::StatusOr<runtime::ContainerView> c = engine_->GetContainer(req->container_id());
  if (!c.ok()) return ToGrpc(c.status());
  if ((*c)->state().status() != berth::v1::CONTAINER_STATUS_RUNNING) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("container \"", req->container_id(), "\" is not running"));
  }
  streaming::Request r;
  r.kind = streaming::Request::kExec;
  r.container_id = (*c)->config().id();
  r.cmd.assign(req->cmd().begin(), req->cmd().end());
  r.tty = req->tty();
  r.stdin = req->stdin();
  r.stdout = req->stdout();
  r.stderr = req->stderr();
  resp->set_url(streaming_->UrlFor(r));
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::Attach(grpc::ServerContext*, const cri::AttachRequest* req,
                                        cri::AttachResponse* resp) {
  if (req->container_id().empty()) return InvalidArgument("container_id is required");
  if (req->tty() && req->stderr()) return InvalidArgument("tty and stderr cannot both be true");
  if (!req->stdin() && !req->stdout() && !req->stderr()) {
    return InvalidArgument("one of stdin, stdout and stderr must be true");
  }
  if (streaming_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "the streaming server is not running");
  }
  absl::StatusOr<runtime::ContainerView> c = engine_->GetContainer(req->container_id());
  if (!c.ok()) return ToGrpc(c.status());
  if ((*c)->state().status() != berth::v1::CONTAINER_STATUS_RUNNING) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("container \"", req->container_id(), "\" is not running"));
  }
  streaming::Request r;
  r.kind = streaming::Request::kAttach;
  r.container_id = (*c)->config().id();
  r.tty = req->tty();
  r.stdin = req->stdin();
  r.stdout = req->stdout();
  r.stderr = req->stderr();
  resp->set_url(streaming_->UrlFor(r));
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::PortForward(grpc::ServerContext*, const cri::PortForwardRequest* req,
                                             cri::PortForwardResponse* resp) {
  if (req->pod_sandbox_id().empty()) return InvalidArgument("pod_sandbox_id is required");
  for (int32_t p : req->port()) {
    if (p <= 0 || p > 65535) return InvalidArgument(absl::StrCat("port ", p, " is out of range"));
  }
  if (streaming_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "the streaming server is not running");
  }
  absl::StatusOr<runtime::SandboxView> sb = engine_->GetSandbox(req->pod_sandbox_id());
  if (!sb.ok()) return ToGrpc(sb.status());
  streaming::Request r;
  r.kind = streaming::Request::kPortForward;
  r.pod_id = (*sb)->id();
  r.ports.assign(req->port().begin(), req->port().end());
  resp->set_url(streaming_->UrlFor(r));
  return grpc::Status::OK;
}

}  // namespace berth::server
