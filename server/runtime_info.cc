// Version, Status, UpdateRuntimeConfig and RuntimeConfig.
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"
#include "server/grpc_status.h"
#include "server/runtime_service.h"
#include "util/mount.h"
#include "server/version.h"
#include "runtime/security/seccomp.h"
#include "runtime/userns.h"
#include "util/fs.h"

namespace berth::server {
namespace {

// What this host offers for the CRI's LSM and seccomp fields; pods that ask for nothing never
// fail on what is missing here.
nlohmann::json HostSecurityJson() {
  std::string lsms = ReadFile("/sys/kernel/security/lsm").value_or("");
  bool apparmor = lsms.find("apparmor") != std::string::npos &&
                  ReadFile("/sys/module/apparmor/parameters/enabled").value_or("N")[0] == 'Y';
  bool selinux = PathExists("/sys/fs/selinux/enforce");
  return {
      {"apparmor",
       apparmor ? "enabled" : "not available on this host: AppArmor fields are ignored"},
      {"selinux", selinux ? "enabled" : "not available on this host: SELinux options are ignored"},
      {"seccomp", security::SeccompSupport().ToJson()}};
}

}  // namespace

RuntimeServiceImpl::RuntimeServiceImpl(const Config& config, engine::Engine* engine,
                                       streaming::Server* streaming,
                                       engine::stats::StatsCollector* stats)
    : config_(config), engine_(engine), streaming_(streaming), stats_(stats) {
  // Probed at start, so the first Status answers at once: kubelet only sends pods with
  // hostUsers: false to handlers that say so.
  if (engine_ != nullptr) {
    engine_->UserNamespacesUsable().IgnoreError();  // the engine logs the answer
    engine_->RecursiveReadOnlyMounts();
  }
}

grpc::Status RuntimeServiceImpl::Version(grpc::ServerContext*, const cri::VersionRequest*,
                                         cri::VersionResponse* resp) {
  resp->set_version("0.1.0");
  resp->set_runtime_name("berth");
  resp->set_runtime_version(kBerthVersion);
  resp->set_runtime_api_version("v1");
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::Status(grpc::ServerContext*, const cri::StatusRequest* req,
                                        cri::StatusResponse* resp) {
  auto* runtime_ready = resp->mutable_status()->add_conditions();
  runtime_ready->set_type("RuntimeReady");
  runtime_ready->set_status(engine_ != nullptr);
  if (engine_ == nullptr) {
    runtime_ready->set_reason("EngineNotStarted");
    runtime_ready->set_message("the container engine is not running");
  }
  auto* network_ready = resp->mutable_status()->add_conditions();
  network_ready->set_type("NetworkReady");
  absl::Status net = engine_ ? engine_->NetworkReady()
                             : absl::FailedPreconditionError("the container engine is not running");
  network_ready->set_status(net.ok());
  if (!net.ok()) {
    network_ready->set_reason("NetworkPluginNotReady");
    network_ready->set_message(std::string(net.message()));
  }
  const bool userns = engine_ != nullptr && engine_->UserNamespacesUsable().ok();
  const bool rro = engine_ != nullptr && engine_->RecursiveReadOnlyMounts();
  const std::vector<std::string> names =
      engine_ != nullptr ? engine_->RuntimeHandlerNames() : std::vector<std::string>{"runc", ""};
  for (const std::string& name : names) {
    auto* handler = resp->add_runtime_handlers();
    handler->set_name(name);
    handler->mutable_features()->set_user_namespaces(userns);
    handler->mutable_features()->set_recursive_read_only_mounts(rro);
  }
  // Merge and Strict both change what berth hands runc (runtime/user.cc), and ContainerStatus.user
  // reports the result.
  resp->mutable_features()->set_supplemental_groups_policy(true);
  if (req->verbose()) {
    nlohmann::json info = ConfigToJson(config_);
    resp->mutable_info()->insert({"config", info.dump()});
    resp->mutable_info()->insert({"security", HostSecurityJson().dump()});
    if (engine_) {
      auto r = engine_->recovery();
      resp->mutable_info()->insert(
          {"recovery", nlohmann::json{{"pods", r.sandboxes},
                                      {"containers", r.containers},
                                      {"exited_while_down", r.exited_while_down},
                                      {"cleaned_up", r.cleaned_up},
                                      {"quarantined", r.quarantined},
                                      {"seconds", r.seconds}}
                           .dump()});
    }
  }
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::UpdateRuntimeConfig(grpc::ServerContext*,
                                                     const cri::UpdateRuntimeConfigRequest* req,
                                                     cri::UpdateRuntimeConfigResponse*) {
  // kubelet sends the node's pod CIDR here; berth's CNI config owns address assignment, so it is
  // recorded in the log only.
  if (req->has_runtime_config() && !req->runtime_config().network_config().pod_cidr().empty()) {
    LOG(INFO) << "kubelet reports pod CIDR " << req->runtime_config().network_config().pod_cidr();
  }
  return grpc::Status::OK;
}

grpc::Status RuntimeServiceImpl::RuntimeConfig(grpc::ServerContext*,
                                               const cri::RuntimeConfigRequest*,
                                               cri::RuntimeConfigResponse* resp) {
  resp->mutable_linux()->set_cgroup_driver(
      config_.runtime.cgroup_driver == cgroups::CgroupDriver::kSystemd ? cri::SYSTEMD
                                                                       : cri::CGROUPFS);
  return grpc::Status::OK;
}

}  // namespace berth::server
