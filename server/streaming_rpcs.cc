// Exec, Attach and PortForward: validate, then hand back a one-time URL on the streaming server.
#include "server/grpc_status.h"
#include "server/runtime_service.h"

namespace berth::server {
namespace {

// What Exec and Attach share: a stdio choice CRI allows, a streaming server, a running container.
grpc::Status CheckSession(engine::Engine* engine, streaming::Server* server, const std::string& id,
                          bool tty, bool in, bool out, bool err, engine::ContainerView* view) {
  if (id.empty()) return InvalidArgument("container_id is required");
  if (tty && err) return InvalidArgument("tty and stderr cannot both be true");
  if (!in && !out && !err) return InvalidArgument("one of stdin, stdout and stderr must be true");
  if (server == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "the streaming server is not running");
  }
  absl::StatusOr<engine::ContainerView> c = engine->GetContainer(id);
  if (!c.ok()) return ToGrpc(c.status());
  if ((*c)->state().status() != berth::v1::CONTAINER_STATUS_RUNNING) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("container \"", id, "\" is not running"));
  }
  *view = *c;
  return grpc::Status::OK;
}

}  // namespace

grpc::Status RuntimeServiceImpl::Exec(grpc::ServerContext*, const cri::ExecRequest* req,
                                      cri::ExecResponse* resp) {
  if (req->cmd_size() == 0 && !req->container_id().empty())
    return InvalidArgument("cmd is required");
  engine::ContainerView c;
  if (grpc::Status st = CheckSession(engine_, streaming_, req->container_id(), req->tty(),
                                     req->stdin(), req->stdout(), req->stderr(), &c);
      !st.ok()) {
    return st;
  }
  resp->set_url(streaming_->GetExecURL({c->config().id(),
                                        {req->cmd().begin(), req->cmd().end()},
                                        req->tty(),
                                        req->stdin(),
                                        req->stdout(),
                                        req->stderr()}));
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::Attach(grpc::ServerContext*, const cri::AttachRequest* req,
                                        cri::AttachResponse* resp) {
  engine::ContainerView c;
  if (grpc::Status st = CheckSession(engine_, streaming_, req->container_id(), req->tty(),
                                     req->stdin(), req->stdout(), req->stderr(), &c);
      !st.ok()) {
    return st;
  }
  resp->set_url(streaming_->GetAttachURL(
      {c->config().id(), req->tty(), req->stdin(), req->stdout(), req->stderr()}));
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::PortForward(grpc::ServerContext*,
                                             const cri::PortForwardRequest* req,
                                             cri::PortForwardResponse* resp) {
  if (req->pod_sandbox_id().empty()) return InvalidArgument("pod_sandbox_id is required");
  for (int32_t p : req->port()) {
    if (p <= 0 || p > 65535) return InvalidArgument(absl::StrCat("port ", p, " is out of range"));
  }
  if (streaming_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "the streaming server is not running");
  }
  absl::StatusOr<engine::SandboxView> sb = engine_->GetSandbox(req->pod_sandbox_id());
  if (!sb.ok()) return ToGrpc(sb.status());
  resp->set_url(
      streaming_->GetPortForwardURL({(*sb)->id(), {req->port().begin(), req->port().end()}}));
  return grpc::Status::OK;
}

}  // namespace berth::server
