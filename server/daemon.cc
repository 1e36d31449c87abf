// berthd's assembly and lifecycle: StateDB → engine → gRPC services → socket → signals.
#include "server/daemon.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/magic.h>

#include <time.h>

#include <filesystem>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "glog/logging.h"
#include "grpcpp/grpcpp.h"
#include "network/cni_manager.h"
#include "runtime/adapters/cni_network.h"
#include "runtime/adapters/image_store_adapter.h"
#include "server/call_log.h"
#include "server/engine_backend.h"
#include "server/image_service.h"
#include "server/metrics/http_server.h"
#include "server/metrics/registry.h"
#include "server/metrics/rpc_interceptor.h"
#include "server/streaming/server.h"
#include "storage/images/image_store.h"
#include "runtime/cgroups/mode.h"
#include "runtime/criu.h"
#include "runtime/oci/runc_state.h"
#include "runtime/engine.h"
#include "runtime/userns.h"
#include "runtime/stats/collector.h"
#include "server/runtime_service.h"
#include "server/sd_notify.h"
#include "server/socket.h"
#include "storage/state_db.h"
#include "util/fs.h"
#include "util/memory.h"
#include "util/subprocess.h"

namespace berth::server {
namespace {

constexpr int kMaxMessageBytes = 256 << 20;  // thousands of containers in one List never hit it
constexpr absl::Duration kShutdownGrace = absl::Seconds(10);

std::string SelfDir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  std::string exe(buf, n);
  return exe.substr(0, exe.rfind('/'));
}

// How long each step of start-up took, logged once when the socket answers: where a slow
// restart's time goes (at 1,000 containers, recovery is only part of it).
class StartupPhases {
 public:
  void Mark(absl::string_view step) {
    absl::Time now = absl::Now();
    absl::StrAppend(&steps_, steps_.empty() ? "" : ", ", step, " ",
                    absl::ToDoubleMilliseconds(now - last_), " ms");
    last_ = now;
  }
  std::string Summary() const {
    return absl::StrCat(absl::ToDoubleMilliseconds(absl::Now() - start_), " ms (", steps_,
                        "); the process started ", MsSinceExec(), " ms ago");
  }

 private:
  // From the kernel's start time of this process (/proc/self/stat, in clock ticks since boot):
  // loading the binary and its libraries, flags and config, to the nearest tick.
  static int64_t MsSinceExec() {
    char state = 0;
    uint64_t ticks = 0;
    if (!oci::ReadProcStat(getpid(), &state, &ticks)) return -1;
    struct timespec now;
    clock_gettime(CLOCK_BOOTTIME, &now);
    return (now.tv_sec * 1000 + now.tv_nsec / 1'000'000) -
           static_cast<int64_t>(ticks * 1000 / sysconf(_SC_CLK_TCK));
  }

  absl::Time start_ = absl::Now();
  absl::Time last_ = start_;
  std::string steps_;
};

// Gauges read at scrape time from the engine's in-memory index (no disk, no runc).
void DeclareEngineGauges(metrics::Registry* r, engine::Engine* engine, images::ImageStore* store) {
  r->DeclareGauge("berth_containers", "Containers by state.", {"state"}, [engine] {
    // Stopped (runc still knows it) and Exited (it does not) are both CRI's exited.
    const auto count = [engine](berth::v1::ContainerStatus s) {
      return static_cast<double>(engine->CountContainers(s));
    };
    return std::vector<std::pair<metrics::LabelValues, double>>{
        {{"created"}, count(berth::v1::CONTAINER_STATUS_CREATED)},
        {{"running"}, count(berth::v1::CONTAINER_STATUS_RUNNING)},
        {{"paused"}, count(berth::v1::CONTAINER_STATUS_PAUSED)},
        {{"exited"},
         count(berth::v1::CONTAINER_STATUS_STOPPED) + count(berth::v1::CONTAINER_STATUS_EXITED)}};
  });
  r->DeclareGauge("berth_pods", "Pod sandboxes by state.", {"state"}, [engine] {
    return std::vector<std::pair<metrics::LabelValues, double>>{
        {{"ready"}, static_cast<double>(engine->CountSandboxes(berth::v1::SANDBOX_STATUS_READY))},
        {{"notready"},
         static_cast<double>(engine->CountSandboxes(berth::v1::SANDBOX_STATUS_NOT_READY))}};
  });
  r->DeclareGauge("berth_recovery", "What the last start recovered.", {"figure"}, [engine] {
    engine::RecoveryReport rep = engine->recovery();
    return std::vector<std::pair<metrics::LabelValues, double>>{
        {{"pods"}, static_cast<double>(rep.sandboxes)},
        {{"containers"}, static_cast<double>(rep.containers)},
        {{"exited_while_down"}, static_cast<double>(rep.exited_while_down)},
        {{"cleaned_up"}, static_cast<double>(rep.cleaned_up)},
        {{"quarantined"}, static_cast<double>(rep.quarantined.size())},
        {{"seconds"}, rep.seconds}};
  });
  r->DeclareGauge("berth_image_blobs_downloaded", "Blobs fetched from registries since start.", {},
                  [store] {
                    return std::vector<std::pair<metrics::LabelValues, double>>{
                        {{}, static_cast<double>(store->blobs_downloaded())}};
                  });
  r->DeclareGauge("berth_images", "Images in the store.", {}, [store] {
    return std::vector<std::pair<metrics::LabelValues, double>>{
        {{}, static_cast<double>(store->List().size())}};
  });
  r->DeclareGauge("berth_container_events", "Lifecycle events published, and current watchers.",
                  {"kind"}, [engine] {
                    return std::vector<std::pair<metrics::LabelValues, double>>{
                        {{"published"}, static_cast<double>(engine->events().published())},
                        {{"watchers"}, static_cast<double>(engine->events().subscribers())}};
                  });
}

}  // namespace

absl::StatusOr<std::string> FindPauseBinary(const Config& config) {
  if (!config.runtime.pause_binary.empty()) {
    if (access(config.runtime.pause_binary.c_str(), X_OK) != 0) {
      return absl::NotFoundError(absl::StrCat("runtime.pause_binary \"",
                                              config.runtime.pause_binary, "\" is not executable"));
    }
    return config.runtime.pause_binary;
  }
  const std::string dir = SelfDir();
  for (const std::string& candidate :
       {absl::StrCat(dir, "/berth-pause"), absl::StrCat(dir, "/../runtime/pause/berth-pause")}) {
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  absl::StatusOr<std::string> on_path = FindProgram("berth-pause");
  if (on_path.ok()) return on_path;
  return absl::NotFoundError(
      "berth-pause not found next to berthd or on PATH (set runtime.pause_binary)");
}

absl::Status RunDaemon(const Config& config) {
  // Signals are taken by one thread with sigwait; every other thread has them blocked.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // Not a subreaper (the flag survives the exec of a launcher that set it): conmon double-forks
  // so that it, and the container under it, re-parent to init, never to berthd. Containers
  // outlive berthd restarts; berthd reaps only its own children (runc, CNI plugins, hooks).
  prctl(PR_SET_CHILD_SUBREAPER, 0);

  absl::StatusOr<std::string> socket_path = SocketPath(config.listen);
  if (!socket_path.ok()) return socket_path.status();
  for (const std::string& dir : {config.root, config.state_dir}) {
    if (absl::Status st = MakeDirs(dir, 0711); !st.ok()) return st;
  }
  if (absl::Status st = PrepareSocketPath(*socket_path); !st.ok()) return st;
  StartupPhases phases;

  absl::StatusOr<std::unique_ptr<storage::StateDB>> db =
      storage::StateDB::Open(absl::StrCat(config.root, "/state"),
                             storage::StateDBOptions{.sync_writes = config.runtime.sync_writes});
  if (!db.ok()) return db.status();
  phases.Mark("state db");

  absl::StatusOr<std::string> pause = FindPauseBinary(config);
  if (!pause.ok()) return pause.status();
  absl::StatusOr<std::string> runc = FindProgram(config.runtime.runtime_path);
  if (!runc.ok())
    return absl::FailedPreconditionError(
        absl::StrCat("runtime.runtime_path: ", runc.status().message()));
  absl::StatusOr<std::string> conmon = FindProgram(config.runtime.conmon_path);
  if (!conmon.ok())
    return absl::FailedPreconditionError(
        absl::StrCat("runtime.conmon_path: ", conmon.status().message()));

  engine::EngineOptions eo;
  for (const auto& [name, h] : config.runtime.handlers) {
    absl::StatusOr<std::string> path = FindProgram(h.runtime_path);
    if (!path.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("runtime.handlers.", name, ".runtime_path: ", path.status().message()));
    }
    eo.runtime_handlers[name] = *path;
  }
  eo.root = config.root;
  eo.state_dir = config.state_dir;
  eo.runtime_path = *runc;
  eo.conmon_path = *conmon;
  eo.criu_path = config.runtime.criu_path;  // optional: looked up when a checkpoint needs it
  eo.pause_binary = *pause;
  eo.cgroup_driver = config.runtime.cgroup_driver;
  eo.default_cgroup_parent = config.runtime.default_cgroup_parent;
  eo.exec_sync_max_output = config.runtime.exec_sync_max_output_bytes;
  eo.log_size_max_bytes = config.runtime.log_size_max_bytes;
  eo.seccomp_default_when_empty = config.runtime.seccomp_default_when_empty;
  eo.read_state_in_process = config.runtime.read_state_in_process;
  eo.hooks_dirs = config.runtime.hooks_dirs;
  eo.cdi_spec_dirs = config.runtime.cdi_spec_dirs;
  registry::RegistryConfig registry_config;
  registry_config.max_parallel_downloads = config.images.max_parallel_downloads;
  registry_config.stall_timeout = absl::Seconds(config.images.stall_timeout_seconds);
  registry_config.max_manifest_bytes = config.images.max_manifest_bytes;
  for (const auto& [host, h] : config.images.registries) {
    registry_config.hosts[host] = registry::RegistryHost{h.mirrors, h.insecure};
  }
  absl::StatusOr<std::unique_ptr<images::ImageStore>> image_store =
      images::ImageStore::Open(absl::StrCat(config.root, "/images"), db->get(), registry_config,
                               config.images.pull, config.images.containers_dir);
  if (!image_store.ok()) return image_store.status();
  phases.Mark("image store");
  engine::ImageStoreAdapter image_provider(image_store->get());

  network::CniOptions cni_options;
  cni_options.conf_dir = config.network.cni_conf_dir;
  cni_options.bin_dirs = config.network.cni_bin_dirs;
  cni_options.cache_dir = absl::StrCat(config.root, "/cni-cache");
  cni_options.plugin_timeout = absl::Seconds(config.network.plugin_timeout_seconds);
  absl::StatusOr<std::unique_ptr<network::CniManager>> cni =
      network::CniManager::Create(cni_options);
  if (!cni.ok()) return cni.status();
  phases.Mark("cni");
  metrics::Registry registry;
  registry.DeclareHistogram("berth_cni_duration_seconds", "Time a CNI ADD or DEL took.",
                            {"operation"}, {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30});
  engine::CniNetwork pod_network(absl::StrCat(config.state_dir, "/netns"), std::move(*cni),
                                 [&registry](const std::string& op, double secs) {
                                   registry.Observe("berth_cni_duration_seconds", {op}, secs);
                                 });

  absl::StatusOr<std::unique_ptr<engine::Engine>> engine =
      engine::Engine::Create(eo, db->get(), &image_provider, &pod_network);
  if (!engine.ok()) return engine.status();
  phases.Mark("engine and recovery");

  // Exec, attach and port-forward sessions run on the engine through the streaming server.
  EngineBackend backend(engine->get());
  absl::StatusOr<std::unique_ptr<streaming::Server>> stream_server = streaming::Server::Start(
      streaming::ServerOptions{.address = config.streaming.address, .port = config.streaming.port},
      &backend);
  if (!stream_server.ok()) return stream_server.status();
  LOG(INFO) << "streaming server on " << (*stream_server)->base_url();
  phases.Mark("streaming server");

  images::ImageStore* store = image_store->get();
  engine::stats::StatsCollector stats(
      engine->get(),
      engine::stats::StatsOptions{
          .upper_dir_of =
              [store](const std::string& id) { return store->WritableLayerDir(id).value_or(""); },
          .layer_mountpoint = store->ContainersRoot(),
          .sample_interval = absl::Seconds(config.metrics.stats_sample_seconds),
      });

  phases.Mark("stats collector");
  RuntimeServiceImpl runtime_service(config, engine->get(), stream_server->get(), &stats);
  ImageServiceImpl image_service(image_store->get(),
                                 absl::Seconds(config.metrics.stats_sample_seconds));

  DeclareEngineGauges(&registry, engine->get(), image_store->get());
  std::unique_ptr<metrics::HttpServer> metrics_server;
  if (!config.metrics.address.empty()) {
    absl::StatusOr<std::unique_ptr<metrics::HttpServer>> m =
        metrics::HttpServer::Start(config.metrics.address, &registry);
    if (!m.ok()) return m.status();
    metrics_server = std::move(*m);
    LOG(INFO) << "metrics on http://"
              << config.metrics.address.substr(0, config.metrics.address.rfind(':')) << ":"
              << metrics_server->port() << "/metrics";
  }

  phases.Mark("services and metrics");
  grpc::ServerBuilder builder;
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(metrics::RpcMetricsInterceptorFactory(&registry));
  interceptors.push_back(CallLogInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  builder.AddListeningPort(absl::StrCat("unix:", *socket_path), grpc::InsecureServerCredentials());
  builder.RegisterService(&runtime_service);
  builder.RegisterService(&image_service);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  // The socket is created 0660: only root and the socket's group may talk to the runtime.
  mode_t old_umask = umask(0117);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  umask(old_umask);
  if (!server) return absl::UnavailableError(absl::StrCat("cannot serve on ", config.listen));
  chmod(socket_path->c_str(), 0660);
  phases.Mark("grpc server");
  LOG(INFO) << "berthd serving CRI v1 on " << config.listen;
  LOG(INFO) << "start-up took " << phases.Summary();
  NotifyReady();  // systemd Type=notify: the socket answers from here on

  // The start-up pages (relocations, static initialisers, recovery) are not needed again.
  ReleaseStartupFilePages();
  std::thread signals([&] {
    // The signal thread doubles as the heap trimmer: it wakes every 2 s to give memory freed
    // by a burst of calls back to the kernel (no extra thread, which would cost its own TLS).
    HeapTrimmer trimmer;
    const struct timespec period = {2, 0};
    int sig;
    while ((sig = sigtimedwait(&stop_signals, nullptr, &period)) < 0) trimmer.MaybeTrim();
    LOG(INFO) << "received signal " << sig << ": shutting down";
    NotifyStopping();
    server->Shutdown(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(absl::ToInt64Milliseconds(kShutdownGrace)));
  });
  server->Wait();
  signals.join();
  unlink(socket_path->c_str());
  LOG(INFO) << "berthd stopped";
  return absl::OkStatus();
}

bool CheckHost(const Config& config) {
  bool ok = true;
  auto report = [&](bool good, const std::string& what, const std::string& fix) {
    std::cout << (good ? "ok      " : "MISSING ") << what;
    if (!good) {
      std::cout << " — " << fix;
      ok = false;
    }
    std::cout << "\n";
  };
  absl::StatusOr<std::string> runc = FindProgram(config.runtime.runtime_path);
  report(runc.ok(), absl::StrCat("OCI runtime: ", runc.ok() ? *runc : config.runtime.runtime_path),
         "apt-get install runc");
  for (const auto& [name, h] : config.runtime.handlers) {
    absl::StatusOr<std::string> path = FindProgram(h.runtime_path);
    report(path.ok(),
           absl::StrCat("OCI runtime of handler ", name, ": ", path.ok() ? *path : h.runtime_path),
           absl::StrCat("install it or fix runtime.handlers.", name, ".runtime_path"));
  }
  absl::StatusOr<std::string> conmon = FindProgram(config.runtime.conmon_path);
  report(conmon.ok(), absl::StrCat("conmon: ", conmon.ok() ? *conmon : config.runtime.conmon_path),
         "apt-get install conmon");
  absl::StatusOr<std::string> pause = FindPauseBinary(config);
  report(pause.ok(), absl::StrCat("pause binary: ", pause.ok() ? *pause : "berth-pause"),
         "install berth-pause next to berthd or set runtime.pause_binary");
  bool plugins = false;
  for (const auto& dir : config.network.cni_bin_dirs) {
    plugins = plugins || access(absl::StrCat(dir, "/bridge").c_str(), X_OK) == 0;
  }
  report(plugins, "CNI plugins (bridge) in network.cni_bin_dirs",
         "apt-get install containernetworking-plugins");
  bool conf = false;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(config.network.cni_conf_dir, ec)) {
    std::string n = e.path().filename();
    conf = conf || n.ends_with(".conflist") || n.ends_with(".conf") || n.ends_with(".json");
  }
  report(conf, absl::StrCat("CNI config in ", config.network.cni_conf_dir),
         "install deploy/cni/10-berth.conflist there");
  struct statfs fs;
  std::string cgroup = "none";
  if (statfs("/sys/fs/cgroup", &fs) == 0) {
    cgroup = fs.f_type == CGROUP2_SUPER_MAGIC ? "v2 (unified)"
             : fs.f_type == TMPFS_MAGIC       ? "v1"
                                              : "unknown";
  }
  report(cgroup != "none" && cgroup != "unknown", absl::StrCat("cgroups: ", cgroup),
         "mount cgroups at /sys/fs/cgroup");
  // A kernel that has overlay as a module loads it on the first overlay mount (the module's
  // fs-overlay alias), as a freshly booted Debian host does: that counts as present.
  std::string filesystems = ReadFile("/proc/filesystems").value_or("");
  struct utsname uts;
  std::string aliases;
  if (uname(&uts) == 0) {
    aliases = ReadFile(absl::StrCat("/lib/modules/", uts.release, "/modules.alias")).value_or("");
  }
  report(filesystems.find("\toverlay\n") != std::string::npos ||
             aliases.find("alias fs-overlay overlay\n") != std::string::npos,
         "overlayfs", "modprobe overlay");
  std::string status = ReadFile("/proc/self/status").value_or("");
  report(status.find("Seccomp:") != std::string::npos, "seccomp filters in the kernel",
         "a kernel built with CONFIG_SECCOMP_FILTER");

  // Optional features: pods run without them, but the calls that need them are refused.
  auto optional = [](bool good, const std::string& what, const std::string& why) {
    std::cout << (good ? "ok      " : "off     ") << what;
    if (!good) std::cout << " — " << why;
    std::cout << "\n";
  };
  absl::StatusOr<std::string> criu = engine::CriuProbe(config.runtime.criu_path).Find();
  optional(
      criu.ok(),
      absl::StrCat("checkpoint/restore (CRIU: ", criu.ok() ? *criu : config.runtime.criu_path, ")"),
      absl::StrCat(criu.status().message(),
                   "; CheckpointContainer and restores answer FAILED_PRECONDITION"));
  if (std::filesystem::is_directory(config.root, ec)) {
    absl::Status userns = engine::ProbeUserNamespaces(config.root);
    optional(userns.ok(), "pods in user namespaces (hostUsers: false)",
             absl::StrCat(userns.message(), "; such pods are refused"));
  } else {
    std::cout << "off     pods in user namespaces — not probed: " << config.root
              << " does not exist yet (berthd creates it)\n";
  }
  absl::StatusOr<cgroups::CgroupMode> mode = cgroups::DetectCgroupMode();
  if (mode.ok()) {
    std::vector<std::string> sizes = cgroups::HugetlbPageSizes(*mode);
    optional(!sizes.empty(),
             sizes.empty() ? "hugetlb limits"
                           : absl::StrCat("hugetlb limits (", absl::StrJoin(sizes, ", "), ")"),
             "no hugetlb controller; kubelet's hugepage limits are left out");
    optional(cgroups::SwapControllerAvailable(*mode), "swap limits",
             "no swap accounting (swapaccount=1 on cgroup v1); swap limits are left out");
  }
  return ok;
}

}  // namespace berth::server
