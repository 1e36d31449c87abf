// GetContainerEvents: the engine's lifecycle events as the stream kubelet's evented PLEG reads.
#include "server/grpc_status.h"
#include "server/runtime_service.h"

namespace berth::server {
namespace {

cri::ContainerEventType ToCriEventType(engine::EventType t) {
  switch (t) {
    case engine::EventType::kCreated:
      return cri::CONTAINER_CREATED_EVENT;
    case engine::EventType::kStarted:
      return cri::CONTAINER_STARTED_EVENT;
    case engine::EventType::kStopped:
      return cri::CONTAINER_STOPPED_EVENT;
    case engine::EventType::kDeleted:
      return cri::CONTAINER_DELETED_EVENT;
  }
  return cri::CONTAINER_CREATED_EVENT;
}

}  // namespace

grpc::Status RuntimeServiceImpl::GetContainerEvents(
    grpc::ServerContext* context, const cri::GetEventsRequest*,
    grpc::ServerWriter<cri::ContainerEventResponse>* writer) {
  using Result = engine::EventBus::Subscription::Result;
  std::unique_ptr<engine::EventBus::Subscription> sub = engine_->events().Subscribe();
  while (!context->IsCancelled()) {
    engine::Event e;
    Result r = sub->Next(&e, absl::Milliseconds(500));
    if (r == Result::kTimeout) continue;
    if (r == Result::kOverflowed) {
      // Ending the stream makes kubelet relist; carrying on would hide the lost transitions.
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "this event watcher fell too far behind and events were lost: "
                          "reconnect and relist");
    }
    cri::ContainerEventResponse resp;
    resp.set_container_id(e.container_id);
    resp.set_container_event_type(ToCriEventType(e.type));
    resp.set_created_at(e.at_ns);
    // The pod as of the event, not as of now: kubelet caches it under created_at.
    if (e.sandbox) {
      *resp.mutable_pod_sandbox_status() = ToCriSandboxStatus(*e.sandbox);
      for (const auto& c : e.containers) *resp.add_containers_statuses() = ToCriContainerStatus(*c);
    }
    if (!writer->Write(resp)) break;
  }
  return grpc::Status::OK;
}

}  // namespace berth::server
