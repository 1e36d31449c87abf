// Writes the seed corpus of //server:cri_request_fuzz: a valid request for each method it fuzzes
// (naming the standing pod and container as $POD and $CTR), with variants for the paths berth
// must keep inside (log paths, mounts, checkpoints, a restore) and with injected faults.
//   bazel run //server:cri_request_fuzz_seeds -- $PWD/server/testdata/cri_request_fuzz
// Inputs the fuzzer found (crashes fixed since) live beside them, named regression-*.
#include <cstdio>
#include <fstream>
#include <string>

#include "google/protobuf/message.h"
#include "proto/runtime/v1/api.pb.h"
#include "server/cri_request_fuzz.h"

namespace {

namespace cri = runtime::v1;
namespace fz = berth::server::fuzz;

std::string dir;
int written = 0;

void Seed(const std::string& name, fz::CriFuzzMethod method, const google::protobuf::Message& req,
          uint8_t faults = fz::kNoFault) {
  std::string bytes(1, static_cast<char>(fz::CriFuzzHeader(method, faults)));
  req.AppendToString(&bytes);
  std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out) {
    fprintf(stderr, "writing %s/%s failed\n", dir.c_str(), name.c_str());
    exit(1);
  }
  ++written;
}

cri::PodSandboxConfig Pod(const std::string& name) {
  cri::PodSandboxConfig p;
  p.mutable_metadata()->set_name(name);
  p.mutable_metadata()->set_namespace_("fuzz");
  p.mutable_metadata()->set_uid(name + "-uid");
  p.mutable_metadata()->set_attempt(1);
  p.set_hostname(name);
  p.set_log_directory("/var/log/pods/fuzz_" + name + "_" + name + "-uid");
  p.mutable_dns_config()->add_servers("10.96.0.10");
  p.mutable_dns_config()->add_searches("fuzz.svc.cluster.local");
  p.mutable_dns_config()->add_options("ndots:5");
  auto* port = p.add_port_mappings();
  port->set_protocol(cri::TCP);
  port->set_container_port(8080);
  port->set_host_port(18080);
  port->set_host_ip("127.0.0.1");
  (*p.mutable_labels())["app"] = name;
  (*p.mutable_annotations())["kubernetes.io/config.source"] = "api";
  auto* lx = p.mutable_linux();
  (*lx->mutable_sysctls())["net.core.somaxconn"] = "1024";
  auto* sc = lx->mutable_security_context();
  sc->mutable_namespace_options()->set_network(cri::POD);
  sc->mutable_namespace_options()->set_pid(cri::CONTAINER);
  sc->mutable_namespace_options()->set_ipc(cri::POD);
  sc->mutable_seccomp()->set_profile_type(cri::SecurityProfile::RuntimeDefault);
  return p;
}

cri::ContainerConfig Container(const std::string& name) {
  cri::ContainerConfig c;
  c.mutable_metadata()->set_name(name);
  c.mutable_image()->set_image("busybox");
  c.add_command("/bin/sh");
  c.add_args("-c");
  c.add_args("sleep 1000");
  c.set_working_dir("/work");
  auto* env = c.add_envs();
  env->set_key("HOME");
  env->set_value("/root");
  auto* m = c.add_mounts();
  m->set_container_path("/cache");
  m->set_host_path("/var/lib/kubelet/pods/fuzz/volumes/cache");
  m->set_readonly(true);
  auto* d = c.add_devices();
  d->set_container_path("/dev/fuzz-null");
  d->set_host_path("/dev/null");
  d->set_permissions("rwm");
  (*c.mutable_labels())["app"] = name;
  (*c.mutable_annotations())["io.kubernetes.container.restartCount"] = "0";
  c.set_log_path(name + "/0.log");
  c.set_stdin(true);
  auto* lx = c.mutable_linux();
  auto* r = lx->mutable_resources();
  r->set_cpu_shares(512);
  r->set_cpu_quota(50000);
  r->set_cpu_period(100000);
  r->set_memory_limit_in_bytes(256 << 20);
  r->set_oom_score_adj(500);
  auto* sc = lx->mutable_security_context();
  sc->mutable_capabilities()->add_add_capabilities("NET_ADMIN");
  sc->mutable_capabilities()->add_drop_capabilities("MKNOD");
  sc->mutable_run_as_user()->set_value(1000);
  sc->set_no_new_privs(true);
  sc->mutable_seccomp()->set_profile_type(cri::SecurityProfile::RuntimeDefault);
  return c;
}

void Write() {
  Seed("version", fz::kVersion, [] {
    cri::VersionRequest r;
    r.set_version("v1");
    return r;
  }());
  Seed("status_verbose", fz::kStatus, [] {
    cri::StatusRequest r;
    r.set_verbose(true);
    return r;
  }());
  Seed("update_runtime_config", fz::kUpdateRuntimeConfig, [] {
    cri::UpdateRuntimeConfigRequest r;
    r.mutable_runtime_config()->mutable_network_config()->set_pod_cidr("10.244.0.0/24");
    return r;
  }());
  Seed("runtime_config", fz::kRuntimeConfig, cri::RuntimeConfigRequest());

  cri::RunPodSandboxRequest run;
  *run.mutable_config() = Pod("p");
  run.set_runtime_handler("runc");
  Seed("run_pod_sandbox", fz::kRunPodSandbox, run);
  Seed("run_pod_sandbox_runtime_fails", fz::kRunPodSandbox, run, fz::kRuntimeFails);
  Seed("run_pod_sandbox_network_fails", fz::kRunPodSandbox, run, fz::kNetworkFails);
  {
    cri::RunPodSandboxRequest host = run;
    host.mutable_config()
        ->mutable_linux()
        ->mutable_security_context()
        ->mutable_namespace_options()
        ->set_network(cri::NODE);
    Seed("run_pod_sandbox_host_network", fz::kRunPodSandbox, host);
    cri::RunPodSandboxRequest userns = run;
    auto* u = userns.mutable_config()
                  ->mutable_linux()
                  ->mutable_security_context()
                  ->mutable_namespace_options()
                  ->mutable_userns_options();
    u->set_mode(cri::POD);
    for (auto* ids : {u->add_uids(), u->add_gids()}) {
      ids->set_host_id(100000);
      ids->set_container_id(0);
      ids->set_length(65536);
    }
    Seed("run_pod_sandbox_userns", fz::kRunPodSandbox, userns);
    cri::RunPodSandboxRequest dotdot = run;
    dotdot.mutable_config()->set_log_directory("/var/log/pods/../../../etc");
    Seed("run_pod_sandbox_log_directory_dotdot", fz::kRunPodSandbox, dotdot);
  }

  for (auto [name, method] : {std::pair{"stop_pod_sandbox", fz::kStopPodSandbox},
                              std::pair{"remove_pod_sandbox", fz::kRemovePodSandbox}}) {
    cri::StopPodSandboxRequest r;  // both are { pod_sandbox_id = 1 }
    r.set_pod_sandbox_id("$POD");
    Seed(name, method, r);
  }
  Seed("pod_sandbox_status_verbose", fz::kPodSandboxStatus, [] {
    cri::PodSandboxStatusRequest r;
    r.set_pod_sandbox_id("$POD");
    r.set_verbose(true);
    return r;
  }());
  Seed("list_pod_sandbox_filtered", fz::kListPodSandbox, [] {
    cri::ListPodSandboxRequest r;
    r.mutable_filter()->set_id("$POD");
    r.mutable_filter()->mutable_state()->set_state(cri::SANDBOX_READY);
    (*r.mutable_filter()->mutable_label_selector())["app"] = "standing";
    return r;
  }());
  Seed("update_pod_sandbox_resources", fz::kUpdatePodSandboxResources, [] {
    cri::UpdatePodSandboxResourcesRequest r;
    r.set_pod_sandbox_id("$POD");
    r.mutable_overhead()->set_memory_limit_in_bytes(64 << 20);
    r.mutable_resources()->set_cpu_shares(1024);
    return r;
  }());

  cri::CreateContainerRequest create;
  create.set_pod_sandbox_id("$POD");
  *create.mutable_config() = Container("c");
  *create.mutable_sandbox_config() = Pod("standing");
  Seed("create_container", fz::kCreateContainer, create);
  Seed("create_container_runtime_fails", fz::kCreateContainer, create, fz::kRuntimeFails);
  {
    cri::CreateContainerRequest escape = create;
    escape.mutable_config()->set_log_path("../../../../../etc/berth-escape.log");
    Seed("create_container_log_path_escape", fz::kCreateContainer, escape);
    escape.mutable_config()->set_log_path("c/../../escape.log");
    Seed("create_container_log_path_dotdot", fz::kCreateContainer, escape);
    // Were accepted as the log directory itself (conmon cannot open it: INTERNAL).
    escape.mutable_config()->set_log_path(".");
    Seed("create_container_log_path_dot", fz::kCreateContainer, escape);
    escape.mutable_config()->set_log_path("c/..");
    Seed("create_container_log_path_back_to_dot", fz::kCreateContainer, escape);
    cri::CreateContainerRequest mount = create;
    mount.mutable_config()->mutable_mounts(0)->set_host_path("/var/lib/../../../etc/berth");
    Seed("create_container_mount_dotdot", fz::kCreateContainer, mount);
    // Was INTERNAL: the staged read-only copy of the first took both spec entries.
    mount.mutable_config()->mutable_mounts(0)->set_host_path("/var/lib/data");
    mount.mutable_config()->mutable_mounts(0)->set_recursive_read_only(true);
    *mount.mutable_config()->add_mounts() = mount.config().mounts(0);
    Seed("create_container_two_mounts_at_one_path", fz::kCreateContainer, mount);
    cri::CreateContainerRequest seccomp = create;
    auto* profile =
        seccomp.mutable_config()->mutable_linux()->mutable_security_context()->mutable_seccomp();
    profile->set_profile_type(cri::SecurityProfile::Localhost);
    profile->set_localhost_ref("/var/lib/kubelet/seccomp/profile.json");
    Seed("create_container_seccomp_localhost", fz::kCreateContainer, seccomp);
    cri::CreateContainerRequest target = create;
    target.mutable_config()
        ->mutable_linux()
        ->mutable_security_context()
        ->mutable_namespace_options()
        ->set_pid(cri::TARGET);
    target.mutable_config()
        ->mutable_linux()
        ->mutable_security_context()
        ->mutable_namespace_options()
        ->set_target_id("$CTR");
    Seed("create_container_pid_target", fz::kCreateContainer, target);
    // CRI-O's restore: the image names the archive the fuzz target made of the standing container.
    cri::CreateContainerRequest restore;
    restore.set_pod_sandbox_id("$POD");
    restore.mutable_config()->mutable_metadata()->set_name("restored");
    restore.mutable_config()->mutable_image()->set_image("/checkpoints/standing.tar");
    auto* m = restore.mutable_config()->add_mounts();
    m->set_container_path("/data");
    m->set_host_path("/var/lib/data");
    Seed("create_container_restore", fz::kCreateContainer, restore);
  }

  for (auto [name, method] : {std::pair{"start_container", fz::kStartContainer},
                              std::pair{"reopen_container_log", fz::kReopenContainerLog},
                              std::pair{"container_stats", fz::kContainerStats}}) {
    cri::StartContainerRequest r;  // each is { container_id = 1 }
    r.set_container_id("$CTR");
    Seed(name, method, r);
  }
  Seed("stop_container", fz::kStopContainer, [] {
    cri::StopContainerRequest r;
    r.set_container_id("$CTR");
    r.set_timeout(5);
    return r;
  }());
  Seed("remove_container", fz::kRemoveContainer, [] {
    cri::RemoveContainerRequest r;
    r.set_container_id("$CTR");
    return r;
  }());
  Seed("list_containers_filtered", fz::kListContainers, [] {
    cri::ListContainersRequest r;
    r.mutable_filter()->set_pod_sandbox_id("$POD");
    r.mutable_filter()->mutable_state()->set_state(cri::CONTAINER_RUNNING);
    (*r.mutable_filter()->mutable_label_selector())["app"] = "standing";
    return r;
  }());
  Seed("container_status_verbose", fz::kContainerStatus, [] {
    cri::ContainerStatusRequest r;
    r.set_container_id("$CTR");
    r.set_verbose(true);
    return r;
  }());
  cri::UpdateContainerResourcesRequest update;
  update.set_container_id("$CTR");
  update.mutable_linux()->set_cpu_quota(20000);
  update.mutable_linux()->set_cpu_period(100000);
  update.mutable_linux()->set_memory_limit_in_bytes(128 << 20);
  update.mutable_linux()->set_cpuset_cpus("0");
  (*update.mutable_linux()->mutable_unified())["memory.high"] = "100000000";
  auto* huge = update.mutable_linux()->add_hugepage_limits();
  huge->set_page_size("2MB");
  huge->set_limit(0);
  Seed("update_container_resources", fz::kUpdateContainerResources, update);
  Seed("update_container_resources_runtime_fails", fz::kUpdateContainerResources, update,
       fz::kRuntimeFails);

  cri::ExecSyncRequest exec_sync;
  exec_sync.set_container_id("$CTR");
  exec_sync.add_cmd("/bin/echo");
  exec_sync.add_cmd("ready");
  exec_sync.set_timeout(1);
  Seed("exec_sync", fz::kExecSync, exec_sync);
  Seed("exec_sync_runtime_fails", fz::kExecSync, exec_sync, fz::kRuntimeFails);
  Seed("exec", fz::kExec, [] {
    cri::ExecRequest r;
    r.set_container_id("$CTR");
    r.add_cmd("/bin/sh");
    r.set_tty(true);
    r.set_stdin(true);
    r.set_stdout(true);
    return r;
  }());
  Seed("attach", fz::kAttach, [] {
    cri::AttachRequest r;
    r.set_container_id("$CTR");
    r.set_stdin(true);
    r.set_stdout(true);
    r.set_stderr(true);
    return r;
  }());
  Seed("port_forward", fz::kPortForward, [] {
    cri::PortForwardRequest r;
    r.set_pod_sandbox_id("$POD");
    r.add_port(8080);
    r.add_port(80);
    return r;
  }());

  Seed("list_container_stats", fz::kListContainerStats, [] {
    cri::ListContainerStatsRequest r;
    r.mutable_filter()->set_pod_sandbox_id("$POD");
    return r;
  }());
  Seed("pod_sandbox_stats", fz::kPodSandboxStats, [] {
    cri::PodSandboxStatsRequest r;
    r.set_pod_sandbox_id("$POD");
    return r;
  }());
  Seed("list_pod_sandbox_stats", fz::kListPodSandboxStats, [] {
    cri::ListPodSandboxStatsRequest r;
    r.mutable_filter()->set_id("$POD");
    return r;
  }());
  Seed("list_metric_descriptors", fz::kListMetricDescriptors, cri::ListMetricDescriptorsRequest());
  Seed("list_pod_sandbox_metrics", fz::kListPodSandboxMetrics, cri::ListPodSandboxMetricsRequest());

  cri::CheckpointContainerRequest checkpoint;
  checkpoint.set_container_id("$CTR");
  checkpoint.set_location("/checkpoints/checkpoint-standing.tar");
  checkpoint.set_timeout(10);
  Seed("checkpoint_container", fz::kCheckpointContainer, checkpoint);
  Seed("checkpoint_container_runtime_fails", fz::kCheckpointContainer, checkpoint,
       fz::kRuntimeFails);
  // Was INTERNAL after the whole dump ("creating ...tmp-...: No such file or directory").
  checkpoint.set_location("/var/lib/kubelet/checkpoints/checkpoint-standing.tar");
  Seed("checkpoint_container_no_directory", fz::kCheckpointContainer, checkpoint);
  checkpoint.set_location("/checkpoints");
  Seed("checkpoint_container_to_a_directory", fz::kCheckpointContainer, checkpoint);
  checkpoint.set_location("/checkpoints/" + std::string(250, 'x'));
  Seed("checkpoint_container_long_name", fz::kCheckpointContainer, checkpoint);
  checkpoint.set_location("/checkpoints/../../../../tmp/escape.tar");
  Seed("checkpoint_container_dotdot", fz::kCheckpointContainer, checkpoint);

  Seed("list_images_id_prefix", fz::kListImages, [] {
    cri::ListImagesRequest r;
    r.mutable_filter()->mutable_image()->set_image("sha256:0123456789ab");
    return r;
  }());
  Seed("image_status_verbose", fz::kImageStatus, [] {
    cri::ImageStatusRequest r;
    r.mutable_image()->set_image("busybox");
    r.set_verbose(true);
    return r;
  }());
  Seed("remove_image", fz::kRemoveImage, [] {
    cri::RemoveImageRequest r;
    r.mutable_image()->set_image("docker.io/library/busybox:latest");
    return r;
  }());
  Seed("image_fs_info", fz::kImageFsInfo, cri::ImageFsInfoRequest());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s <corpus directory>\n", argv[0]);
    return 2;
  }
  dir = argv[1];
  Write();
  printf("wrote %d seeds to %s\n", written, dir.c_str());
  return 0;
}
