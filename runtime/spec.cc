// OCI spec generation: process, mounts, namespaces, resources and confinement for one container.
#include "runtime/spec.h"

#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "glog/logging.h"
#include "runtime/security_adapter.h"
#include "util/fs.h"

namespace berth::engine {
namespace {

using json = nlohmann::json;
namespace cri = runtime::v1;

constexpr const char* kDefaultPath =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

json Mount(const std::string& dst, const std::string& type, const std::string& src,
           std::vector<std::string> options) {
  return json{{"destination", dst}, {"type", type}, {"source", src}, {"options", options}};
}

// The kernel filesystems every container gets.
std::vector<json> BaseMounts(const PodContext& pod, bool privileged, bool infra) {
  std::vector<json> m;
  m.push_back(Mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}));
  m.push_back(
      Mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
  m.push_back(Mount("/dev/pts", "devpts", "devpts",
                    {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}));
  m.push_back(Mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
  m.push_back(
      Mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", privileged ? "rw" : "ro"}));
  m.push_back(Mount("/sys/fs/cgroup", "cgroup", "cgroup",
                    {"nosuid", "noexec", "nodev", "relatime", privileged ? "rw" : "ro"}));
  if (!pod.shm_path.empty() && !infra) {
    m.push_back(Mount("/dev/shm", "bind", pod.shm_path, {"rbind", "rw"}));
  } else {
    m.push_back(Mount("/dev/shm", "tmpfs", "shm",
                      {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}));
  }
  return m;
}

std::string Propagation(cri::MountPropagation p) {
  switch (p) {
    case cri::PROPAGATION_HOST_TO_CONTAINER:
      return "rslave";
    case cri::PROPAGATION_BIDIRECTIONAL:
      return "rshared";
    default:
      return "rprivate";
  }
}

json Namespace(const std::string& type, const std::string& path = "") {
  json ns{{"type", type}};
  if (!path.empty()) ns["path"] = path;
  return ns;
}

std::string InfraNs(const PodContext& pod, const std::string& which) {
  return absl::StrCat("/proc/", pod.infra_pid, "/ns/", which);
}

json BaseSpec(const std::string& rootfs, bool readonly, const std::string& hostname) {
  return json{
      {"ociVersion", "1.0.2"},
      {"root", {{"path", rootfs}, {"readonly", readonly}}},
      {"hostname", hostname},
      {"annotations", json::object()},
      {"linux", {{"namespaces", json::array()}}},
  };
}

absl::Status CheckMountPath(const std::string& field, const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " \"", path, "\" must be an absolute path"));
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") {
      return absl::InvalidArgumentError(absl::StrCat(field, " \"", path, "\" contains \"..\""));
    }
  }
  return absl::OkStatus();
}

json IdMappingsToOci(const std::vector<cri::IDMapping>& mappings) {
  json out = json::array();
  for (const auto& m : mappings) {
    out.push_back(
        {{"containerID", m.container_id()}, {"hostID", m.host_id()}, {"size", m.length()}});
  }
  return out;
}

// Joins the pod's pinned user namespace; everything else the spec asks for then happens inside it.
void AddUserNamespace(const PodContext& pod, json* spec) {
  if (pod.userns_path.empty()) return;
  json& linux = (*spec)["linux"];
  linux["namespaces"].push_back(Namespace("user", pod.userns_path));
  linux["uidMappings"] = IdMappingsToOci(pod.uid_mappings);
  linux["gidMappings"] = IdMappingsToOci(pod.gid_mappings);
}

// What pod- and container-level security contexts have in common.
template <typename SecurityContext>
SecurityRequest BaseSecurityRequest(const SecurityContext& sc, const PodContext& pod) {
  SecurityRequest r;
  r.privileged = sc.privileged();
  r.has_seccomp = sc.has_seccomp();
  r.seccomp = sc.seccomp();
  r.seccomp_profile_path = sc.seccomp_profile_path();
  r.pod_has_own_netns = !pod.host_network;
  r.pod_has_own_ipc = !pod.host_ipc;
  return r;
}

}  // namespace

int ClampOomScoreAdj(int requested, int floor) {
  static std::atomic<bool> logged{false};
  if (requested >= floor) return requested;
  if (!logged.exchange(true)) {
    LOG(WARNING) << "berthd may not lower oom_score_adj below its own (" << floor
                 << ", no CAP_SYS_RESOURCE): container values below it are raised to it";
  }
  return floor;
}

absl::StatusOr<std::vector<std::string>> ContainerArgs(const cri::ContainerConfig& config,
                                                       const berth::v1::ImageConfig& image) {
  std::vector<std::string> args;
  if (config.command_size() > 0) {
    args.assign(config.command().begin(), config.command().end());
    args.insert(args.end(), config.args().begin(), config.args().end());
  } else {
    args.assign(image.entrypoint().begin(), image.entrypoint().end());
    if (config.args_size() > 0) {
      args.insert(args.end(), config.args().begin(), config.args().end());
    } else {
      args.insert(args.end(), image.cmd().begin(), image.cmd().end());
    }
  }
  if (args.empty()) {
    return absl::InvalidArgumentError(
        "config.command: no command given and the image has no entrypoint or cmd");
  }
  return args;
}

std::vector<std::string> ContainerEnv(const cri::ContainerConfig& config,
                                      const berth::v1::ImageConfig& image,
                                      const std::string& hostname, const std::string& home) {
  std::vector<std::string> order;
  std::map<std::string, std::string> values;
  auto set = [&](const std::string& kv) {
    std::string key = kv.substr(0, kv.find('='));
    if (!values.count(key)) order.push_back(key);
    values[key] = kv;
  };
  set(kDefaultPath);
  set(absl::StrCat("HOSTNAME=", hostname));
  for (const auto& e : image.env()) set(e);
  for (const auto& kv : config.envs()) set(absl::StrCat(kv.key(), "=", kv.value()));
  if (!values.count("HOME")) set(absl::StrCat("HOME=", home));
  std::vector<std::string> out;
  for (const auto& k : order) out.push_back(values[k]);
  return out;
}

absl::StatusOr<json> BuildInfraSpec(const PodContext& pod, const std::string& rootfs,
                                    const std::string& pause_path, const SpecOptions& options) {
  const cri::PodSandboxConfig& cfg = *pod.pod;
  const auto& lx = cfg.linux();
  const auto& sc = lx.security_context();
  if (sc.has_run_as_group() && !sc.has_run_as_user()) {
    return absl::InvalidArgumentError(
        "config.linux.security_context.run_as_group is set without run_as_user");
  }
  json spec = BaseSpec(rootfs, true, pod.host_network ? "" : cfg.hostname());
  if (pod.host_network) spec.erase("hostname");
  json process{{"terminal", false},
               {"cwd", "/"},
               {"args", {pause_path}},
               {"env", {kDefaultPath}},
               {"user",
                {{"uid", sc.has_run_as_user() ? sc.run_as_user().value() : 0},
                 {"gid", sc.has_run_as_group() ? sc.run_as_group().value() : 0}}}};
  process["oomScoreAdj"] = ClampOomScoreAdj(-998, options.oom_score_adj_floor);
  spec["process"] = process;
  spec["mounts"] = BaseMounts(pod, sc.privileged(), true);

  json& ns = spec["linux"]["namespaces"];
  ns.push_back(Namespace("mount"));
  if (!pod.host_network) ns.push_back(Namespace("network", pod.netns_path));
  if (!pod.host_ipc) ns.push_back(Namespace("ipc"));
  ns.push_back(Namespace("uts"));
  if (!pod.host_pid) ns.push_back(Namespace("pid"));
  AddUserNamespace(pod, &spec);
  spec["linux"]["cgroupsPath"] = options.cgroups_path;
  spec["linux"]["resources"] = json{{"devices", {{{"allow", false}, {"access", "rwm"}}}}};
  std::map<std::string, std::string> sysctls(lx.sysctls().begin(), lx.sysctls().end());
  if (!sysctls.empty()) spec["linux"]["sysctl"] = sysctls;

  SecurityRequest sreq = BaseSecurityRequest(sc, pod);
  sreq.seccomp_default_when_empty = options.seccomp_default_when_empty;
  sreq.no_new_privileges = true;
  if (absl::Status st = ApplySecurity(sreq, &spec); !st.ok()) return st;
  spec["annotations"]["io.kubernetes.cri.container-type"] = "sandbox";
  spec["annotations"]["io.kubernetes.cri.sandbox-id"] = pod.sandbox_id;
  for (const auto& [k, v] : cfg.annotations()) spec["annotations"][k] = v;
  return spec;
}

absl::StatusOr<json> BuildContainerSpec(const PodContext& pod, const cri::ContainerConfig& config,
                                        const berth::v1::ImageConfig& image,
                                        const std::string& container_id, const std::string& rootfs,
                                        const SpecOptions& options) {
  const auto& lx = config.linux();
  const auto& sc = lx.security_context();
  const std::string hostname = pod.host_network ? "" : pod.pod->hostname();

  absl::StatusOr<std::vector<std::string>> args = ContainerArgs(config, image);
  if (!args.ok()) return args.status();

  if (sc.has_run_as_group() && !sc.has_run_as_user() && sc.run_as_username().empty()) {
    return absl::InvalidArgumentError(
        "linux.security_context.run_as_group is set without run_as_user or run_as_username");
  }
  UserRequest ureq;
  ureq.image_user = image.user();
  if (sc.has_run_as_user()) {
    ureq.has_uid = true;
    ureq.uid = sc.run_as_user().value();
  }
  ureq.username = sc.run_as_username();
  if (sc.has_run_as_group()) {
    ureq.has_gid = true;
    ureq.gid = sc.run_as_group().value();
  }
  ureq.supplemental_groups.assign(sc.supplemental_groups().begin(), sc.supplemental_groups().end());
  ureq.strict_supplemental_groups = sc.supplemental_groups_policy() == cri::Strict;
  absl::StatusOr<ResolvedUser> user = ResolveUser(rootfs, ureq);
  if (!user.ok()) return user.status();

  json spec = BaseSpec(rootfs, sc.readonly_rootfs(), hostname);
  if (pod.host_network) {
    char buf[256] = {0};
    gethostname(buf, sizeof(buf) - 1);
    spec["hostname"] = buf;
  }
  std::string cwd = config.working_dir().empty()
                        ? (image.working_dir().empty() ? "/" : image.working_dir())
                        : config.working_dir();
  json process{
      {"terminal", config.tty()},
      {"cwd", cwd},
      {"args", *args},
      {"env", ContainerEnv(config, image, spec.value("hostname", ""), user->home)},
      {"user", {{"uid", user->uid}, {"gid", user->gid}}},
  };
  if (!user->additional_gids.empty()) process["user"]["additionalGids"] = user->additional_gids;
  int oom = lx.has_resources() ? static_cast<int>(lx.resources().oom_score_adj()) : 0;
  process["oomScoreAdj"] = ClampOomScoreAdj(oom, options.oom_score_adj_floor);
  spec["process"] = process;

  // Mounts: kernel filesystems, then the pod's files, then the request's (which win).
  std::vector<json> mounts = BaseMounts(pod, sc.privileged(), false);
  std::set<std::string> requested;
  for (const auto& m : config.mounts()) requested.insert(m.container_path());
  // One mount per path, as Kubernetes allows one volume mount per mountPath: a second would hide
  // the first, and the staged copies of idmapped and recursive read-only mounts find their spec
  // entry by path.
  std::set<std::string> points;
  for (int i = 0; i < config.mounts_size(); ++i) {
    std::string point =
        std::filesystem::path(config.mounts(i).container_path()).lexically_normal().string();
    while (point.size() > 1 && point.back() == '/') point.pop_back();
    if (!points.insert(point).second) {
      return absl::InvalidArgumentError(absl::StrCat("mounts[", i, "].container_path \"",
                                                     config.mounts(i).container_path(),
                                                     "\": another mount is at that path"));
    }
  }
  for (const auto& [file, dst] :
       std::vector<std::pair<std::string, std::string>>{{"hosts", "/etc/hosts"},
                                                        {"resolv.conf", "/etc/resolv.conf"},
                                                        {"hostname", "/etc/hostname"}}) {
    std::string src = absl::StrCat(pod.sandbox_dir, "/", file);
    if (requested.count(dst) || !PathExists(src)) continue;
    mounts.push_back(
        Mount(dst, "bind", src, {"rbind", "rprivate", sc.readonly_rootfs() ? "ro" : "rw"}));
  }
  for (const auto& m : config.mounts()) {
    if (absl::Status st = CheckMountPath("mounts.container_path", m.container_path()); !st.ok()) {
      return st;
    }
    if (absl::Status st = CheckMountPath("mounts.host_path", m.host_path()); !st.ok()) return st;
    struct stat st;
    if (stat(m.host_path().c_str(), &st) != 0) {
      // As containerd does: a missing host path becomes a directory.
      if (absl::Status s = MakeDirs(m.host_path()); !s.ok()) return s;
    }
    std::vector<std::string> opts = {"rbind", Propagation(m.propagation()),
                                     m.readonly() ? "ro" : "rw"};
    for (const auto& o : m.mount_options()) opts.push_back(o);
    mounts.push_back(Mount(m.container_path(), "bind", m.host_path(), opts));
  }
  spec["mounts"] = mounts;
  for (const auto& m : config.mounts()) {
    if (m.propagation() != cri::PROPAGATION_PRIVATE) {
      spec["linux"]["rootfsPropagation"] =
          m.propagation() == cri::PROPAGATION_BIDIRECTIONAL ? "rshared" : "rslave";
    }
  }

  // Namespaces: the pod's network, IPC and UTS; PID per the request.
  json& ns = spec["linux"]["namespaces"];
  ns.push_back(Namespace("mount"));
  const auto& nso = sc.namespace_options();
  if (!pod.host_network) {
    ns.push_back(
        Namespace("network", pod.netns_path.empty() ? InfraNs(pod, "net") : pod.netns_path));
  }
  if (!pod.host_ipc) ns.push_back(Namespace("ipc", InfraNs(pod, "ipc")));
  ns.push_back(Namespace("uts", InfraNs(pod, "uts")));
  if (nso.pid() == cri::NODE) {
    // host PID namespace: no entry
  } else if (nso.pid() == cri::POD) {
    ns.push_back(Namespace("pid", InfraNs(pod, "pid")));
  } else if (nso.pid() == cri::TARGET) {
    // The engine turns TARGET into the target container's namespace before building the spec.
    return absl::InvalidArgumentError(
        "linux.security_context.namespace_options.target_id must name a running container");
  } else {
    ns.push_back(Namespace("pid"));
  }
  AddUserNamespace(pod, &spec);

  spec["linux"]["cgroupsPath"] = options.cgroups_path;
  json resources = ResourcesToOci(lx.resources());
  resources["devices"] = json::array({{{"allow", false}, {"access", "rwm"}}});
  spec["linux"]["resources"] = resources;
  std::map<std::string, std::string> sysctls(pod.pod->linux().sysctls().begin(),
                                             pod.pod->linux().sysctls().end());
  if (!sysctls.empty()) spec["linux"]["sysctl"] = sysctls;

  SecurityRequest sreq = BaseSecurityRequest(sc, pod);
  sreq.seccomp_default_when_empty = options.seccomp_default_when_empty;
  sreq.add_capabilities.assign(sc.capabilities().add_capabilities().begin(),
                               sc.capabilities().add_capabilities().end());
  sreq.drop_capabilities.assign(sc.capabilities().drop_capabilities().begin(),
                                sc.capabilities().drop_capabilities().end());
  sreq.add_ambient.assign(sc.capabilities().add_ambient_capabilities().begin(),
                          sc.capabilities().add_ambient_capabilities().end());
  sreq.no_new_privileges = sc.no_new_privs();
  sreq.masked_paths.assign(sc.masked_paths().begin(), sc.masked_paths().end());
  sreq.readonly_paths.assign(sc.readonly_paths().begin(), sc.readonly_paths().end());
  sreq.explicit_masked_paths = sc.masked_paths_size() > 0;
  sreq.explicit_readonly_paths = sc.readonly_paths_size() > 0;
  for (const auto& d : config.devices()) {
    sreq.devices.push_back({d.host_path(), d.container_path(), d.permissions()});
  }
  if (absl::Status st = ApplySecurity(sreq, &spec); !st.ok()) return st;

  auto& ann = spec["annotations"];
  for (const auto& [k, v] : config.annotations()) ann[k] = v;
  ann["io.kubernetes.cri.container-type"] = "container";
  ann["io.kubernetes.cri.container-name"] = config.metadata().name();
  ann["io.kubernetes.cri.sandbox-id"] = pod.sandbox_id;
  ann["io.kubernetes.cri.image-name"] = config.image().image();
  return spec;
}

json ExecProcess(const json& container_spec, const std::vector<std::string>& cmd, bool tty) {
  json p = container_spec.value("process", json::object());
  p["args"] = cmd;
  p["terminal"] = tty;
  p.erase("oomScoreAdj");
  return p;
}

}  // namespace berth::engine
