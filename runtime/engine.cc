// The engine core: construction, saving records and publishing views, exits, lookups.
#include "runtime/engine.h"

#include "runtime/engine_internal.h"

namespace berth::engine {
namespace {

int ReadOwnOomScoreAdj() {
  absl::StatusOr<std::string> s = ReadFile("/proc/self/oom_score_adj");
  int v = 0;
  if (s.ok()) (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(*s), &v);
  return v;
}

bool HasCapSysResource() {
  absl::StatusOr<std::string> s = ReadFile("/proc/self/status");
  if (!s.ok()) return false;
  size_t pos = s->find("CapEff:");
  if (pos == std::string::npos) return false;
  uint64_t caps = strtoull(s->c_str() + pos + 7, nullptr, 16);
  return caps & (1ull << 24);
}

}  // namespace

std::string SandboxName(const cri::PodSandboxMetadata& m) {
  return absl::StrCat("k8s_POD_", m.name(), "_", m.namespace_(), "_", m.uid(), "_", m.attempt());
}

std::string ContainerName(const cri::ContainerMetadata& m, const cri::PodSandboxMetadata& pod) {
  return absl::StrCat("k8s_", m.name(), "_", pod.name(), "_", pod.namespace_(), "_", pod.uid(), "_",
                      m.attempt());
}

Engine::Engine(Key, EngineOptions options, storage::StateDB* db, ImageProvider* images,
               NetworkProvider* network, EngineParts parts)
    : options_(std::move(options)),
      db_(db),
      images_(images),
      network_(network),
      oci_(std::move(parts.oci)),
      host_(std::move(parts.host)),
      criu_(options_.criu_path),
      cdi_(options_.cdi_spec_dirs) {
  // Every handler shares the exit, attach and exec directories (one exit watcher sees them all);
  // each keeps its own state root.
  auto runtime_options = [this](const std::string& path, const std::string& root) {
    return oci::OciRuntimeOptions{
        .runtime_path = path,
        .conmon_path = options_.conmon_path,
        .runc_root = root,
        .exits_dir = absl::StrCat(options_.state_dir, "/exits"),
        .attach_dir = absl::StrCat(options_.state_dir, "/attach"),
        .exec_dir = absl::StrCat(options_.state_dir, "/exec"),
        .log_size_max_bytes = options_.log_size_max_bytes,
        .systemd_cgroup = options_.cgroup_driver == cgroups::CgroupDriver::kSystemd,
        .read_state_in_process = options_.read_state_in_process,
    };
  };
  if (!oci_) {
    oci_ = std::make_shared<oci::OciRuntime>(
        runtime_options(options_.runtime_path, absl::StrCat(options_.state_dir, "/runc")));
  }
  for (const auto& [name, path] : options_.runtime_handlers) {
    std::shared_ptr<oci::Runtime>& rt = handlers_[name];
    auto given = parts.handlers.find(name);
    if (given != parts.handlers.end() && given->second != nullptr) {
      rt = given->second;
    } else {
      rt = std::make_shared<oci::OciRuntime>(
          runtime_options(path, absl::StrCat(options_.state_dir, "/runtimes/", name)));
    }
  }
  if (!host_) host_ = std::make_unique<HostOps>();
}

std::vector<std::string> Engine::RuntimeHandlerNames() const {
  std::vector<std::string> names = {"runc", ""};
  for (const auto& [name, rt] : handlers_) names.push_back(name);
  return names;
}

std::shared_ptr<oci::Runtime> Engine::RuntimeOf(const berth::v1::ContainerConfig& cc) const {
  const std::string& handler = cc.runtime_handler();
  if (handler.empty() || handler == "runc") return oci_;
  auto it = handlers_.find(handler);
  if (it != handlers_.end()) return it->second;
  // A handler taken out of the configuration since the container was made: its calls fail
  // naming it. One per name, made when first asked and kept for the engine's life.
  absl::MutexLock l(&unconfigured_mu_);
  std::shared_ptr<oci::Runtime>& missing = unconfigured_[handler];
  if (missing == nullptr) {
    missing = std::make_shared<oci::UnconfiguredRuntime>(oci_->options(), handler);
  }
  return missing;
}

Engine::~Engine() { StopFaultHandling(); }

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(EngineOptions options, storage::StateDB* db,
                                                       ImageProvider* images,
                                                       NetworkProvider* network,
                                                       EngineParts parts) {
  auto engine =
      std::make_unique<Engine>(Key{}, std::move(options), db, images, network, std::move(parts));
  if (absl::Status st = engine->Init(); !st.ok()) return st;
  return engine;
}

std::string Engine::BundleDir(const std::string& id) const {
  return absl::StrCat(options_.state_dir, "/containers/", id);
}
std::string Engine::SandboxDir(const std::string& id) const {
  return absl::StrCat(options_.state_dir, "/sandboxes/", id);
}
std::string Engine::InfraRootfs() const { return absl::StrCat(options_.root, "/infra-rootfs"); }

absl::StatusOr<std::string> Engine::CgroupsPath(const std::string& parent,
                                                const std::string& id) const {
  std::string p = parent.empty() ? options_.default_cgroup_parent : parent;
  // systemd: an empty parent is the driver's own default slice.
  if (options_.cgroup_driver == cgroups::CgroupDriver::kSystemd && parent.empty()) p = "";
  return cgroups::ContainerCgroupsPath(options_.cgroup_driver, p, id);
}

absl::Status Engine::Init() {
  for (const std::string& dir : {absl::StrCat(options_.state_dir, "/containers"),
                                 absl::StrCat(options_.state_dir, "/sandboxes"),
                                 oci_->options().runc_root, oci_->options().attach_dir}) {
    if (absl::Status st = MakeDirs(dir, 0711); !st.ok()) return st;
  }
  for (const auto& [name, rt] : handlers_) {
    if (absl::Status st = MakeDirs(rt->options().runc_root, 0711); !st.ok()) return st;
  }
  // Exec scratch and checkpoint staging: root's alone, whatever an older berthd left.
  if (absl::Status st = MakeDirs(oci_->options().exec_dir, 0700); !st.ok()) return st;
  if (chmod(oci_->options().exec_dir.c_str(), 0700) != 0) {
    return Errno(absl::StrCat("chmod ", oci_->options().exec_dir));
  }
  // berth's own infra rootfs: just the pause binary and the mount points runc needs, read-only
  // in every pod, so starting a pod never pulls an image.
  const std::string rootfs = InfraRootfs();
  for (const char* d : {"", "/proc", "/dev", "/sys", "/etc", "/tmp"}) {
    if (absl::Status st = MakeDirs(rootfs + d, 0755); !st.ok()) return st;
  }
  absl::StatusOr<std::string> pause = ReadFile(options_.pause_binary);
  if (!pause.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the pause binary ", options_.pause_binary, " cannot be read: ", pause.status().message()));
  }
  absl::StatusOr<std::string> current = ReadFile(rootfs + "/pause");
  if (!current.ok() || *current != *pause) {
    if (absl::Status st = WriteFileAtomic(rootfs + "/pause", *pause, 0755); !st.ok()) return st;
  }
  if (!HasCapSysResource()) oom_floor_ = ReadOwnOomScoreAdj();
  hooks_ = LoadHooks(options_.hooks_dirs);
  if (!hooks_.empty()) LOG(INFO) << "loaded " << hooks_.size() << " OCI hooks";

  exit_watcher_.reset();
  absl::StatusOr<std::unique_ptr<oci::ExitWatcher>> watcher = oci::ExitWatcher::Start(
      oci_->options().exits_dir, [this](const std::string& id) { OnExit(id); },
      [this](const std::string& id) { OnMonitorExit(id); });
  if (!watcher.ok()) return watcher.status();
  exit_watcher_ = std::move(*watcher);
  if (absl::Status st = CheckBootAtStart(); !st.ok()) return st;
  if (absl::Status st = Recover(); !st.ok()) return st;
  return FinishStart();
}

absl::Status Engine::Transition(ContainerObj* c, Operation op, Container next,
                                TransitionOptions options) {
  const berth::v1::ContainerStatus from = c->rec.state().status();
  if (absl::Status st = EnsureState(c->rec, op); !st.ok()) return st;
  if (next.state().status() != from) {
    return absl::InternalError(absl::StrCat("container \"", next.config().id(),
                                            "\": a status was set outside Transition"));
  }
  const berth::v1::ContainerStatus to = Target(from, op);
  if (to != from) {
    next.mutable_state()->set_status(to);
    next.mutable_state()->set_state_changed_at_ns(NowNs());
  }
  if (absl::Status st = SaveContainer(c, next, options.durable); !st.ok()) return st;
  CrashPoint("container", OperationName(op));
  if (!options.emit) return absl::OkStatus();
  switch (op) {
    case Operation::kCreate:
      Emit(next, EventType::kCreated);
      break;
    case Operation::kStart:
      Emit(next, EventType::kStarted);
      break;
    case Operation::kExit:
      Emit(next, EventType::kStopped);
      break;
    default:
      break;  // CRI has no event for the others; DELETED goes out once the record is gone
  }
  return absl::OkStatus();
}

absl::Status Engine::Transition(SandboxObj* s, PodOperation op, Sandbox next) {
  const berth::v1::SandboxStatus from = s->rec.status();
  if (absl::Status st = EnsureState(s->rec, op); !st.ok()) return st;
  if (next.status() != from) {
    return absl::InternalError(
        absl::StrCat("pod sandbox \"", next.id(), "\": a status was set outside Transition"));
  }
  next.set_status(Target(from, op));
  return AfterStep(SaveSandbox(s, next), "pod", OperationName(op));
}

absl::Status Engine::Update(ContainerObj* c, Container next, bool durable) {
  if (next.state().status() != c->rec.state().status()) {
    return absl::InternalError(absl::StrCat("container \"", next.config().id(),
                                            "\": a status was set outside Transition"));
  }
  return SaveContainer(c, next, durable);
}

absl::Status Engine::Update(SandboxObj* s, Sandbox next) {
  if (next.status() != s->rec.status()) {
    return absl::InternalError(
        absl::StrCat("pod sandbox \"", next.id(), "\": a status was set outside Transition"));
  }
  return SaveSandbox(s, next);
}

absl::Status Engine::SaveContainer(ContainerObj* c, const Container& rec, bool durable) {
  if (absl::Status st = db_->Put(storage::Kind::kContainers, rec.config().id(), rec,
                                 durable ? storage::StateDB::Durability::kDefault
                                         : storage::StateDB::Durability::kProcessCrash);
      !st.ok()) {
    return st;
  }
  c->rec = rec;
  auto view = std::make_shared<const Container>(rec);
  {
    absl::MutexLock l(&index_mu_);
    PublishLocked(std::move(view));
  }
  c->changed.SignalAll();
  return absl::OkStatus();
}

absl::Status Engine::SaveSandbox(SandboxObj* s, const Sandbox& rec) {
  if (absl::Status st = db_->Put(storage::Kind::kSandboxes, rec.id(), rec); !st.ok()) return st;
  s->rec = rec;
  auto view = std::make_shared<const Sandbox>(rec);
  absl::MutexLock l(&index_mu_);
  sandbox_views_[rec.id()] = std::move(view);
  return absl::OkStatus();
}

void Engine::Emit(const Container& c, EventType type) {
  Event e;
  e.container_id = c.config().id();
  e.sandbox_id = c.config().sandbox_id();
  e.type = type;
  e.at_ns = NowNs();
  {
    // Views are published before the event, so this is the pod as of this very transition.
    absl::MutexLock l(&index_mu_);
    if (auto it = sandbox_views_.find(e.sandbox_id); it != sandbox_views_.end())
      e.sandbox = it->second;
    e.containers = AppContainerViewsLocked(e.sandbox_id);
  }
  events_.Publish(std::move(e));
}

void Engine::PublishLocked(ContainerView view) {
  const auto& cc = view->config();
  if (!cc.infra()) pod_containers_[cc.sandbox_id()].insert(cc.id());
  container_views_[cc.id()] = std::move(view);
}

void Engine::ForgetLocked(const berth::v1::ContainerConfig& cc) {
  containers_.erase(cc.id());
  container_views_.erase(cc.id());
  if (auto it = pod_containers_.find(cc.sandbox_id()); it != pod_containers_.end()) {
    it->second.erase(cc.id());
    if (it->second.empty()) pod_containers_.erase(it);
  }
}

std::vector<ContainerView> Engine::AppContainerViewsLocked(const std::string& sandbox_id) const {
  std::vector<ContainerView> out;
  auto ids = pod_containers_.find(sandbox_id);
  if (ids == pod_containers_.end()) return out;
  out.reserve(ids->second.size());
  for (const std::string& id : ids->second) {
    auto it = container_views_.find(id);
    // A Configured container is a CreateContainer still running: kubelet has no id for it yet.
    if (it != container_views_.end() &&
        it->second->state().status() != berth::v1::CONTAINER_STATUS_CONFIGURED) {
      out.push_back(it->second);
    }
  }
  // Newest first, as kubelet sorts what it lists itself: with evented PLEG it takes these lists
  // (PodSandboxStatus, events) as they come, and the first container of a name is its latest.
  std::sort(out.begin(), out.end(), [](const ContainerView& a, const ContainerView& b) {
    if (a->config().created_at_ns() != b->config().created_at_ns()) {
      return a->config().created_at_ns() > b->config().created_at_ns();
    }
    return a->config().id() < b->config().id();
  });
  return out;
}

std::vector<ContainerView> Engine::ListContainersOf(const std::string& sandbox_id) const {
  absl::MutexLock l(&index_mu_);
  return AppContainerViewsLocked(sandbox_id);
}

void Engine::MarkExited(ContainerObj* c, int exit_code, bool emit, const std::string& reason,
                        const std::string& message) {
  Container rec = c->rec;
  auto* st = rec.mutable_state();
  st->set_exit_code(exit_code);
  st->set_finished_at_ns(NowNs());
  st->set_pid(0);
  if (RuntimeOf(rec.config())->OomKilled(rec.config().bundle_dir()) ||
      CgroupCountedOomKill(rec.config())) {
    st->set_oom_killed(true);
    st->set_reason("OOMKilled");
  } else if (!reason.empty()) {
    st->set_reason(reason);
  } else {
    st->set_reason(exit_code == 0 ? "Completed" : "Error");
  }
  if (!message.empty()) st->set_message(message);
  if (absl::Status s = Transition(c, Operation::kExit, std::move(rec), {.emit = emit}); !s.ok()) {
    LOG(ERROR) << "saving the exit of container " << c->rec.config().id() << ": " << s;
  }
}

void Engine::OnExit(const std::string& id) {
  std::shared_ptr<ContainerObj> c;
  {
    absl::MutexLock l(&index_mu_);
    auto it = containers_.find(id);
    if (it == containers_.end()) return;
    c = it->second;
  }
  absl::StatusOr<int> code = oci_->ReadExitCode(id);
  if (!code.ok()) {
    LOG(WARNING) << "exit file of " << id << ": " << code.status();
    return;
  }
  Container exited;
  {
    absl::MutexLock l(&c->mu);
    if (!Allowed(c->rec.state().status(), Operation::kExit)) return;  // already recorded
    VLOG(1) << "container " << id << " exited with " << *code;
    const bool infra = c->rec.config().infra();
    MarkExited(c.get(), *code, /*emit=*/!infra);
    if (!infra) return;
    exited = c->rec;
  }
  InfraExited(exited);
}

void Engine::InfraExited(const Container& infra) {
  std::shared_ptr<SandboxObj> s;
  {
    absl::MutexLock l(&index_mu_);
    auto it = sandboxes_.find(infra.config().sandbox_id());
    if (it != sandboxes_.end()) s = it->second;
  }
  if (s) {
    // The pod's namespaces died with its infra container (libpod: the infra container is every
    // container's dependency). A READY pod would make kubelet retry CreateContainer forever;
    // NOTREADY makes it recreate the pod. A stop or removal in progress sets its own state.
    absl::MutexLock l(&s->mu);
    if (s->rec.status() == berth::v1::SANDBOX_STATUS_READY) {
      LOG(WARNING) << "the infra container of pod " << s->rec.id() << " (" << s->rec.name()
                   << ") exited with code " << infra.state().exit_code() << ": the pod is NOTREADY";
      if (absl::Status st = Transition(s.get(), PodOperation::kStop, s->rec); !st.ok()) {
        LOG(ERROR) << "saving pod " << s->rec.id() << " as NOTREADY: " << st;
      }
    }
  }
  // After the pod's new state, so the event shows the pod as kubelet must now see it.
  Emit(infra, EventType::kStopped);
}

std::vector<std::shared_ptr<Engine::ContainerObj>> Engine::ContainersOf(
    const std::string& sandbox_id) const {
  std::vector<std::shared_ptr<ContainerObj>> out;
  absl::MutexLock l(&index_mu_);
  auto ids = pod_containers_.find(sandbox_id);
  if (ids == pod_containers_.end()) return out;
  for (const std::string& id : ids->second) {
    if (auto it = containers_.find(id); it != containers_.end()) out.push_back(it->second);
  }
  return out;
}

absl::StatusOr<ContainerView> Engine::GetContainer(const std::string& id_or_prefix) const {
  absl::Status err;
  absl::MutexLock l(&index_mu_);
  ContainerView v =
      FindByIdOrPrefix(container_views_, id_or_prefix, "container", "container_id", &err);
  if (!v) return err;
  return v;
}

std::vector<ContainerView> Engine::ListContainers() const {
  absl::MutexLock l(&index_mu_);
  std::vector<ContainerView> out;
  out.reserve(container_views_.size());
  for (const auto& [id, v] : container_views_) {
    if (!v->config().infra()) out.push_back(v);
  }
  return out;
}

std::shared_ptr<Engine::ContainerObj> Engine::FindContainerObj(const std::string& key,
                                                               absl::Status* error) const {
  absl::MutexLock l(&index_mu_);
  return FindByIdOrPrefix(containers_, key, "container", "container_id", error);
}

std::shared_ptr<Engine::SandboxObj> Engine::FindSandboxObj(const std::string& key,
                                                           absl::Status* error) const {
  absl::MutexLock l(&index_mu_);
  return FindByIdOrPrefix(sandboxes_, key, "pod sandbox", "pod_sandbox_id", error);
}

int Engine::CountContainers(berth::v1::ContainerStatus status) const {
  absl::MutexLock l(&index_mu_);
  int n = 0;
  for (const auto& [id, v] : container_views_)
    n += !v->config().infra() && v->state().status() == status;
  return n;
}

int Engine::CountSandboxes(berth::v1::SandboxStatus status) const {
  absl::MutexLock l(&index_mu_);
  int n = 0;
  for (const auto& [id, v] : sandbox_views_) n += v->status() == status;
  return n;
}

absl::Status Engine::NetworkReady() const {
  if (network_ == nullptr) return absl::FailedPreconditionError("pod networking is not configured");
  return network_->Ready();
}

}  // namespace berth::engine
