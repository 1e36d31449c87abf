// berth records → CRI messages, shared by the list, status and event paths.
#include "runtime/signals.h"
#include "server/runtime_service.h"

namespace berth::server {

cri::ContainerState ToCriState(berth::v1::ContainerStatus s) {
  switch (s) {
    case berth::v1::CONTAINER_STATUS_CONFIGURED:
    case berth::v1::CONTAINER_STATUS_CREATED:
      return cri::CONTAINER_CREATED;
    case berth::v1::CONTAINER_STATUS_RUNNING:
    case berth::v1::CONTAINER_STATUS_PAUSED:
      return cri::CONTAINER_RUNNING;
    case berth::v1::CONTAINER_STATUS_STOPPED:
    case berth::v1::CONTAINER_STATUS_EXITED:
    case berth::v1::CONTAINER_STATUS_REMOVING:
      return cri::CONTAINER_EXITED;
    default:
      return cri::CONTAINER_UNKNOWN;
  }
}

static cri::PodSandboxState SandboxState(const berth::v1::Sandbox& s) {
  return s.status() == berth::v1::SANDBOX_STATUS_READY ? cri::SANDBOX_READY : cri::SANDBOX_NOTREADY;
}

cri::PodSandbox ToCriSandbox(const berth::v1::Sandbox& s) {
  cri::PodSandbox out;
  out.set_id(s.id());
  *out.mutable_metadata() = s.config().metadata();
  out.set_state(SandboxState(s));
  out.set_created_at(s.created_at_ns());
  *out.mutable_labels() = s.config().labels();
  *out.mutable_annotations() = s.config().annotations();
  out.set_runtime_handler(s.runtime_handler());
  return out;
}

cri::PodSandboxStatus ToCriSandboxStatus(const berth::v1::Sandbox& s) {
  cri::PodSandboxStatus out;
  out.set_id(s.id());
  *out.mutable_metadata() = s.config().metadata();
  out.set_state(SandboxState(s));
  out.set_created_at(s.created_at_ns());
  if (s.ips_size() > 0) {
    out.mutable_network()->set_ip(s.ips(0));
    for (int i = 1; i < s.ips_size(); ++i)
      out.mutable_network()->add_additional_ips()->set_ip(s.ips(i));
  }
  const auto& nso = s.config().linux().security_context().namespace_options();
  *out.mutable_linux()->mutable_namespaces()->mutable_options() = nso;
  *out.mutable_labels() = s.config().labels();
  *out.mutable_annotations() = s.config().annotations();
  out.set_runtime_handler(s.runtime_handler());
  return out;
}

cri::Container ToCriContainer(const berth::v1::Container& c) {
  const auto& cc = c.config();
  cri::Container out;
  out.set_id(cc.id());
  out.set_pod_sandbox_id(cc.sandbox_id());
  *out.mutable_metadata() = cc.cri().metadata();
  *out.mutable_image() = cc.cri().image();
  out.set_image_ref(cc.image_ref());
  out.set_image_id(cc.image_id());
  out.set_state(ToCriState(c.state().status()));
  out.set_created_at(cc.created_at_ns());
  *out.mutable_labels() = cc.cri().labels();
  *out.mutable_annotations() = cc.cri().annotations();
  return out;
}

cri::ContainerStatus ToCriContainerStatus(const berth::v1::Container& c) {
  const auto& cc = c.config();
  const auto& st = c.state();
  cri::ContainerStatus out;
  out.set_id(cc.id());
  *out.mutable_metadata() = cc.cri().metadata();
  out.set_state(ToCriState(st.status()));
  out.set_created_at(cc.created_at_ns());
  out.set_started_at(st.started_at_ns());
  out.set_finished_at(st.finished_at_ns());
  out.set_exit_code(st.exit_code());
  *out.mutable_image() = cc.cri().image();
  out.set_image_ref(cc.image_ref());
  out.set_image_id(cc.image_id());
  if (out.state() == cri::CONTAINER_EXITED) {
    out.set_reason(st.reason());
    out.set_message(st.message());
  }
  *out.mutable_labels() = cc.cri().labels();
  *out.mutable_annotations() = cc.cri().annotations();
  *out.mutable_mounts() = cc.cri().mounts();
  out.set_log_path(cc.log_path());
  if (cc.has_user()) *out.mutable_user()->mutable_linux() = cc.user();
  // KEP-4960: the signal StopContainer sends, whichever of request, image or default chose it.
  if (absl::StatusOr<int> sig = engine::ParseSignal(cc.stop_signal()); sig.ok()) {
    out.set_stop_signal(engine::ToCriSignal(*sig));
  }
  if (st.has_resources()) {
    *out.mutable_resources()->mutable_linux() = st.resources();
  } else if (cc.cri().linux().has_resources()) {
    *out.mutable_resources()->mutable_linux() = cc.cri().linux().resources();
  }
  return out;
}

}  // namespace berth::server
