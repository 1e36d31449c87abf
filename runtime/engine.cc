// The engine: sandbox and container lifecycles on conmon + runc, every transition saved first.
#include "runtime/engine.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "glog/logging.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "nlohmann/json.hpp"
#include "runtime/pod_files.h"
#include "runtime/cgroups/paths.h"
#include "runtime/security_adapter.h"
#include "runtime/spec.h"
#include "runtime/state_machine.h"
#include "runtime/userns.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace berth::runtime {
namespace {

namespace cri = ::runtime::v1;
using berth::v1::Container;
using berth::v1::Sandbox;
using json = nlohmann::json;

constexpr char kContainerNames[] = "container";
constexpr char kSandboxNames[] = "sandbox";
// How long to wait for the exit file after SIGKILL before asking runc directly.
constexpr absl::Duration kKillGrace = absl::Seconds(10);

// Exact id first, then a unique prefix, as crictl users type short ids.
template <typename Obj>
std::shared_ptr<Obj> FindByIdOrPrefix(
    const absl::flat_hash_map<std::string, std::shared_ptr<Obj>>& objects, const std::string& key,
    absl::string_view kind, absl::string_view field, absl::Status* error) {
  if (key.empty()) {
    *error = absl::InvalidArgumentError(absl::StrCat(field, " is required"));
    return nullptr;
  }
  if (auto it = objects.find(key); it != objects.end()) return it->second;
  std::shared_ptr<Obj> found;
  int matches = 0;
  for (const auto& [id, obj] : objects) {
    if (absl::StartsWith(id, key)) {
      found = obj;
      ++matches;
    }
  }
  if (matches == 1) return found;
  *error = matches > 1
               ? absl::InvalidArgumentError(absl::StrCat(kind, " id prefix \"", key, "\" is ambiguous"))
               : absl::NotFoundError(absl::StrCat(kind, " \"", key, "\" not found"));
  return nullptr;
}

int64_t NowNs() { return absl::ToUnixNanos(absl::Now()); }

// For saves on paths that cannot fail the caller (recovery, a stop already in progress).
void LogIfFailed(const absl::Status& st, const std::string& id) {
  if (!st.ok()) LOG(ERROR) << "saving container " << id << ": " << st;
}

std::string Deterministic(const google::protobuf::MessageLite& m) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream sos(&out);
    google::protobuf::io::CodedOutputStream cos(&sos);
    cos.SetSerializationDeterministic(true);
    m.SerializeToCodedStream(&cos);
  }
  return out;
}

int SignalNumber(const std::string& name) {
  static const std::map<std::string, int> kSignals = {
      {"SIGTERM", SIGTERM}, {"SIGINT", SIGINT}, {"SIGQUIT", SIGQUIT}, {"SIGKILL", SIGKILL},
      {"SIGHUP", SIGHUP},   {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}, {"SIGWINCH", SIGWINCH},
      {"SIGSTOP", SIGSTOP}, {"SIGPWR", SIGPWR}};
  std::string n = name;
  if (!absl::StartsWith(n, "SIG")) n = absl::StrCat("SIG", n);
  if (auto it = kSignals.find(n); it != kSignals.end()) return it->second;
  int num = 0;
  if (absl::SimpleAtoi(name, &num) && num > 0 && num < 65) return num;
  return SIGTERM;
}

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
  return absl::StrCat("k8s_", m.name(), "_", pod.name(), "_", pod.namespace_(), "_", pod.uid(),
                      "_", m.attempt());
}

Engine::Engine(EngineOptions options, storage::StateDB* db, ImageProvider* images,
               NetworkProvider* network)
    : options_(std::move(options)),
      db_(db),
      images_(images),
      network_(network),
      oci_(oci::OciRuntimeOptions{
          .runtime_path = options_.runtime_path,
          .conmon_path = options_.conmon_path,
          .runc_root = absl::StrCat(options_.state_dir, "/runc"),
          .exits_dir = absl::StrCat(options_.state_dir, "/exits"),
          .attach_dir = absl::StrCat(options_.state_dir, "/attach"),
          .log_size_max_bytes = options_.log_size_max_bytes,
      }) {}

Engine::~Engine() { exit_watcher_.reset(); }

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(EngineOptions options,
                                                       storage::StateDB* db, ImageProvider* images,
                                                       NetworkProvider* network) {
  auto engine = std::make_unique<Engine>(std::move(options), db, images, network);
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
  if (options_.cgroup_driver == "systemd") {
    if (parent.empty()) p = "";
    return cgroups::ContainerCgroupsPath(cgroups::CgroupDriver::kSystemd, p, id);
  }
  return cgroups::ContainerCgroupsPath(cgroups::CgroupDriver::kCgroupfs, p, id);
}

absl::Status Engine::Init() {
  for (const std::string& dir :
       {absl::StrCat(options_.state_dir, "/containers"), absl::StrCat(options_.state_dir, "/sandboxes"),
        absl::StrCat(options_.state_dir, "/exec"),
        oci_.options().runc_root, oci_.options().attach_dir}) {
    if (absl::Status st = MakeDirs(dir, 0711); !st.ok()) return st;
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
      oci_.options().exits_dir, [this](const std::string& id) { OnExit(id); });
  if (!watcher.ok()) return watcher.status();
  exit_watcher_ = std::move(*watcher);
  return Recover();
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
    container_views_[rec.config().id()] = std::move(view);
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
  events_.Publish({c.config().id(), c.config().sandbox_id(), type, NowNs()});
}

void Engine::MarkExited(ContainerObj* c, int exit_code) {
  Container rec = c->rec;
  auto* st = rec.mutable_state();
  st->set_status(berth::v1::CONTAINER_STATUS_STOPPED);
  st->set_exit_code(exit_code);
  st->set_finished_at_ns(NowNs());
  st->set_state_changed_at_ns(st->finished_at_ns());
  st->set_pid(0);
  if (oci::OciRuntime::OomKilled(rec.config().bundle_dir())) {
    st->set_oom_killed(true);
    st->set_reason("OOMKilled");
  } else {
    st->set_reason(exit_code == 0 ? "Completed" : "Error");
  }
  if (absl::Status s = SaveContainer(c, rec); !s.ok()) {
    LOG(ERROR) << "saving exit of container " << rec.config().id() << ": " << s;
  }
  Emit(rec, EventType::kStopped);
}

void Engine::OnExit(const std::string& id) {
  std::shared_ptr<ContainerObj> c;
  {
    absl::MutexLock l(&index_mu_);
    auto it = containers_.find(id);
    if (it == containers_.end()) return;
    c = it->second;
  }
  absl::StatusOr<int> code = oci_.ReadExitCode(id);
  if (!code.ok()) {
    LOG(WARNING) << "exit file of " << id << ": " << code.status();
    return;
  }
  absl::MutexLock l(&c->mu);
  auto s = c->rec.state().status();
  if (s != berth::v1::CONTAINER_STATUS_RUNNING && s != berth::v1::CONTAINER_STATUS_CREATED &&
      s != berth::v1::CONTAINER_STATUS_PAUSED) {
    return;
  }
  VLOG(1) << "container " << id << " exited with " << *code;
  MarkExited(c.get(), *code);
}

absl::Status Engine::Recover() {
  const absl::Time start = absl::Now();
  // Idmapped volume copies stay attached only while a creation runs: any found are a crash's.
  if (absl::Status st = RemoveStagedMounts(absl::StrCat(options_.state_dir, "/idmap")); !st.ok()) {
    LOG(WARNING) << "removing idmapped mounts left by an interrupted creation: " << st;
  }
  std::vector<Sandbox> sandboxes;
  std::vector<Container> containers;
  absl::Status st = db_->ForEach(storage::Kind::kSandboxes, [&](absl::string_view k, absl::string_view v) {
    Sandbox s;
    if (!s.ParseFromArray(v.data(), v.size())) {
      return absl::DataLossError(absl::StrCat("sandbox record ", k, " does not parse"));
    }
    sandboxes.push_back(std::move(s));
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  st = db_->ForEach(storage::Kind::kContainers, [&](absl::string_view k, absl::string_view v) {
    Container c;
    if (!c.ParseFromArray(v.data(), v.size())) {
      return absl::DataLossError(absl::StrCat("container record ", k, " does not parse"));
    }
    containers.push_back(std::move(c));
    return absl::OkStatus();
  });
  if (!st.ok()) return st;

  for (auto& rec : sandboxes) {
    auto obj = std::make_shared<SandboxObj>();
    {
      absl::MutexLock l(&obj->mu);
      obj->rec = rec;
    }
    absl::MutexLock l(&index_mu_);
    sandboxes_[rec.id()] = obj;
    sandbox_views_[rec.id()] = std::make_shared<const Sandbox>(rec);
  }
  for (auto& rec : containers) {
    auto obj = std::make_shared<ContainerObj>();
    {
      absl::MutexLock l(&obj->mu);
      obj->rec = rec;
    }
    {
      absl::MutexLock l(&index_mu_);
      containers_[rec.config().id()] = obj;
      container_views_[rec.config().id()] = std::make_shared<const Container>(rec);
    }
    absl::MutexLock l(&obj->mu);
    Container cur = obj->rec;
    const std::string& id = cur.config().id();
    auto status = cur.state().status();
    // A container awaiting its restore is unknown to runc by design: nothing to reconcile.
    if ((status == berth::v1::CONTAINER_STATUS_CREATED && !AwaitingRestore(cur)) ||
        status == berth::v1::CONTAINER_STATUS_RUNNING ||
        status == berth::v1::CONTAINER_STATUS_PAUSED) {
      // libpod's syncContainer: the exit file is the truth for a container that ended while
      // berthd was away; runc's view covers the rest.
      absl::StatusOr<int> code = oci_.ReadExitCode(id);
      if (code.ok()) {
        MarkExited(obj.get(), *code);
        ++recovery_.exited_while_down;
      } else {
        absl::StatusOr<oci::RuncState> rs = oci_.State(id);
        if (!rs.ok() || rs->status == "stopped") {
          LOG(WARNING) << "container " << id << " is gone without an exit file; marking it exited";
          MarkExited(obj.get(), 255);
          Container rec2 = obj->rec;
          rec2.mutable_state()->set_reason("Error");
          rec2.mutable_state()->set_message("the container ended while berthd was down and its exit code was lost");
          LogIfFailed(SaveContainer(obj.get(), rec2), id);
          ++recovery_.exited_while_down;
        } else if (rs->status == "paused" && status != berth::v1::CONTAINER_STATUS_PAUSED) {
          cur.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_PAUSED);
          LogIfFailed(SaveContainer(obj.get(), cur), id);
        } else if (rs->status == "running" && status == berth::v1::CONTAINER_STATUS_CREATED) {
          cur.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_RUNNING);
          LogIfFailed(SaveContainer(obj.get(), cur), id);
        }
      }
    }
    ++recovery_.containers;
  }
  // Finish what was interrupted: removals, and creations that never completed.
  for (auto& rec : containers) {
    std::shared_ptr<ContainerObj> obj;
    {
      absl::MutexLock l(&index_mu_);
      obj = containers_[rec.config().id()];
    }
    absl::MutexLock l(&obj->mu);
    auto status = obj->rec.state().status();
    if (status == berth::v1::CONTAINER_STATUS_REMOVING ||
        status == berth::v1::CONTAINER_STATUS_CONFIGURED) {
      LOG(INFO) << "finishing interrupted work on container " << rec.config().id();
      if (absl::Status s = CleanupContainer(obj); !s.ok()) {
        LOG(ERROR) << "cleaning up container " << rec.config().id() << ": " << s;
      } else {
        ++recovery_.cleaned_up;
      }
    }
  }
  for (auto& rec : sandboxes) {
    ++recovery_.sandboxes;
    if (rec.status() == berth::v1::SANDBOX_STATUS_CREATING ||
        rec.status() == berth::v1::SANDBOX_STATUS_REMOVING) {
      LOG(INFO) << "finishing interrupted work on pod " << rec.id();
      if (absl::Status s = RemovePodSandbox(rec.id()); !s.ok()) {
        LOG(ERROR) << "cleaning up pod " << rec.id() << ": " << s;
      } else {
        ++recovery_.cleaned_up;
      }
    }
  }
  // Rebuild the name table from what survived.
  {
    absl::MutexLock nl(&names_mu_);
    absl::MutexLock l(&index_mu_);
    for (const auto& [id, view] : sandbox_views_) {
      auto r = std::make_shared<Reservation>();
      r->id = id;
      r->request = Deterministic(view->config());
      r->done.Notify();
      sandbox_names_[view->name()] = r;
    }
    for (const auto& [id, view] : container_views_) {
      if (view->config().infra()) continue;
      auto r = std::make_shared<Reservation>();
      r->id = id;
      r->request = Deterministic(view->config().cri());
      r->done.Notify();
      container_names_[view->config().name()] = r;
    }
  }
  recovery_.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  LOG(INFO) << "recovered " << recovery_.sandboxes << " pods and " << recovery_.containers
            << " containers (" << recovery_.exited_while_down << " exited while berthd was down, "
            << recovery_.cleaned_up << " cleaned up) in " << recovery_.seconds << "s";
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<Engine::Reservation>> Engine::Reserve(
    absl::flat_hash_map<std::string, std::shared_ptr<Reservation>>* table, const std::string& name,
    const std::string& request, std::string* existing_id) {
  for (;;) {
    std::shared_ptr<Reservation> other;
    {
      absl::MutexLock l(&names_mu_);
      auto it = table->find(name);
      if (it == table->end()) {
        auto r = std::make_shared<Reservation>();
        r->request = request;
        (*table)[name] = r;
        return r;
      }
      other = it->second;
    }
    // Another request holds the name: a retry of the same request waits for it and shares its
    // outcome, as kubelet retries a RunPodSandbox/CreateContainer whose deadline passed.
    if (other->request != request) {
      return absl::AlreadyExistsError(absl::StrCat(
          "name \"", name, "\" is in use by ", other->id.empty() ? "a request in progress" : other->id,
          " with a different configuration"));
    }
    other->done.WaitForNotification();
    if (other->status.ok() && !other->id.empty()) {
      *existing_id = other->id;
      return std::shared_ptr<Reservation>();
    }
    // The first attempt failed and released the name: try again.
  }
}

void Engine::Release(absl::flat_hash_map<std::string, std::shared_ptr<Reservation>>* table,
                     const std::string& name, const std::shared_ptr<Reservation>& r,
                     const absl::StatusOr<std::string>& result) {
  absl::MutexLock l(&names_mu_);
  r->status = result.status();
  if (result.ok()) {
    r->id = *result;
  } else {
    auto it = table->find(name);
    if (it != table->end() && it->second == r) table->erase(it);
  }
  r->done.Notify();
}

// ---------------------------------------------------------------------------------------------
// Sandboxes

absl::StatusOr<std::string> Engine::RunPodSandbox(const cri::PodSandboxConfig& config,
                                                  const std::string& runtime_handler) {
  const auto& md = config.metadata();
  if (!config.has_metadata()) return absl::InvalidArgumentError("config.metadata is required");
  if (md.name().empty()) return absl::InvalidArgumentError("config.metadata.name is required");
  if (md.namespace_().empty()) {
    return absl::InvalidArgumentError("config.metadata.namespace is required");
  }
  if (md.uid().empty()) return absl::InvalidArgumentError("config.metadata.uid is required");
  if (!runtime_handler.empty() && runtime_handler != "runc") {
    return absl::InvalidArgumentError(
        absl::StrCat("runtime_handler \"", runtime_handler, "\" is not configured (berth has runc)"));
  }
  const std::string name = SandboxName(md);
  std::string existing;
  absl::StatusOr<std::shared_ptr<Reservation>> r =
      Reserve(&sandbox_names_, name, Deterministic(config), &existing);
  if (!r.ok()) return r.status();
  if (!*r) return existing;
  absl::StatusOr<std::string> id = DoRunPodSandbox(config, runtime_handler, name);
  Release(&sandbox_names_, name, *r, id);
  return id;
}

absl::StatusOr<std::string> Engine::DoRunPodSandbox(const cri::PodSandboxConfig& config,
                                                    const std::string& runtime_handler,
                                                    const std::string& name) {
  const std::string id = NewId();
  const auto& nso = config.linux().security_context().namespace_options();
  const bool host_network = nso.network() == cri::NODE;
  absl::StatusOr<bool> pod_userns = ValidatePodUserNamespace(nso);
  if (!pod_userns.ok()) return pod_userns.status();
  HostRoot userns_root;
  if (*pod_userns) {
    if (absl::Status st = UserNamespacesUsable(options_.root); !st.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "this node cannot run pods in a user namespace (", kUsernsField, ".mode POD): ",
          st.message()));
    }
    absl::StatusOr<HostRoot> root =
        HostRootOf(nso.userns_options().uids(), nso.userns_options().gids());
    if (!root.ok()) return root.status();
    userns_root = *root;
    if (absl::Status st = CheckReachableFromUserNamespace(InfraRootfs(), userns_root); !st.ok()) {
      return st;
    }
  }

  Sandbox rec;
  rec.set_id(id);
  rec.set_name(name);
  *rec.mutable_config() = config;
  rec.set_runtime_handler(runtime_handler);
  rec.set_created_at_ns(NowNs());
  rec.set_status(berth::v1::SANDBOX_STATUS_CREATING);
  rec.set_dir(SandboxDir(id));
  rec.set_infra_container_id(id);
  rec.set_cgroup_parent(config.linux().cgroup_parent());
  if (*pod_userns) {
    rec.set_userns_path(absl::StrCat(rec.dir(), "/userns"));
    *rec.mutable_uid_mappings() = nso.userns_options().uids();
    *rec.mutable_gid_mappings() = nso.userns_options().gids();
  }

  auto obj = std::make_shared<SandboxObj>();
  absl::MutexLock lock(&obj->mu);
  {
    // Saved first, so a crash from here on is found and cleaned up on restart.
    if (absl::Status st = SaveSandbox(obj.get(), rec); !st.ok()) return st;
    absl::MutexLock l(&index_mu_);
    sandboxes_[id] = obj;
  }
  bool ok = false;
  absl::Cleanup undo = [&] {
    if (ok) return;
    // Everything RemovePodSandbox would release: the failure may come after the infra container
    // exists (CNI ADD runs beside its start).
    Sandbox cur = obj->rec;
    if (absl::Status st = TearDownSandbox(obj.get(), &cur); !st.ok()) {
      LOG(ERROR) << "undoing failed pod " << id << ": " << st;
    }
    std::shared_ptr<ContainerObj> infra;
    {
      absl::MutexLock l(&index_mu_);
      auto it = containers_.find(id);
      if (it != containers_.end()) infra = it->second;
    }
    if (infra) {
      absl::MutexLock cl(&infra->mu);
      if (absl::Status st = CleanupContainer(infra); !st.ok()) {
        LOG(ERROR) << "undoing failed pod " << id << ": infra container: " << st;
      }
    }
    if (network_ != nullptr && !cur.netns_path().empty()) {
      if (absl::Status st = network_->RemoveNetns(cur.netns_path()); !st.ok()) {
        LOG(ERROR) << "undoing failed pod " << id << ": " << st;
      }
    }
    if (absl::Status st = RemoveAll(cur.dir()); !st.ok()) {
      LOG(ERROR) << "undoing failed pod " << id << ": " << st;
    }
    (void)db_->Delete(storage::Kind::kSandboxes, id);
    absl::MutexLock l(&index_mu_);
    sandboxes_.erase(id);
    sandbox_views_.erase(id);
  };

  if (absl::Status st = MakeDirs(rec.dir(), 0711); !st.ok()) return st;
  // The pod's /dev/shm, shared by its containers.
  if (nso.ipc() != cri::NODE) {
    std::string shm = absl::StrCat(rec.dir(), "/shm");
    if (absl::Status st = MakeDirs(shm, 0755); !st.ok()) return st;
    std::string shm_options = "mode=1777,size=65536k";
    // In a user namespace the pod's root owns it, as host root does otherwise.
    if (*pod_userns) {
      absl::StrAppend(&shm_options, ",uid=", userns_root.uid, ",gid=", userns_root.gid);
    }
    if (mount("shm", shm.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              shm_options.c_str()) != 0) {
      return Errno(absl::StrCat("mounting the pod's shm at ", shm));
    }
    rec.set_shm_path(shm);
  }
  // A pod in a user namespace: the namespace, and the netns it must own (to mount sysfs and to be
  // joined after the user namespace), pinned in the pod's directory; recorded before they exist,
  // so a teardown after a crash finds them.
  if (*pod_userns) {
    if (!host_network && network_ != nullptr) rec.set_netns_path(absl::StrCat(rec.dir(), "/netns"));
    if (absl::Status st = SaveSandbox(obj.get(), rec); !st.ok()) return st;
    if (absl::Status st = CreatePodNamespaces(rec.uid_mappings(), rec.gid_mappings(),
                                              rec.userns_path(), rec.netns_path());
        !st.ok()) {
      return st;
    }
  }
  // Network namespace first: CNI and the infra container both need its path.
  if (!host_network && network_ != nullptr && !*pod_userns) {
    absl::StatusOr<std::string> ns = network_->CreateNetns(id);
    if (!ns.ok()) return ns.status();
    rec.set_netns_path(*ns);
  }
  if (absl::Status st = SaveSandbox(obj.get(), rec); !st.ok()) return st;

  // CNI ADD runs while the infra container is created and started: both only need the netns,
  // and together they are most of a pod's start. The pod files need the IPs, so they wait.
  // Joined before anything returns (declared after `undo`, so it runs first), so an undo
  // tears down a finished ADD.
  absl::StatusOr<PodNetworkStatus> net_result = PodNetworkStatus{};
  std::thread cni;
  absl::Cleanup join_cni = [&] {
    if (cni.joinable()) cni.join();
  };
  if (!host_network && network_ != nullptr) {
    PodNetworkSpec net{id, config.metadata().name(), config.metadata().namespace_(),
                       config.metadata().uid(), rec.netns_path(),
                       {config.port_mappings().begin(), config.port_mappings().end()}};
    cni = std::thread([this, net = std::move(net), &net_result] { net_result = network_->SetUp(net); });
  }

  // The infra container: berth's pause in berth's read-only rootfs.
  PodContext pod;
  pod.pod = &rec.config();
  pod.sandbox_id = id;
  pod.sandbox_dir = rec.dir();
  pod.shm_path = rec.shm_path();
  pod.netns_path = rec.netns_path();
  pod.host_network = host_network;
  pod.host_pid = nso.pid() == cri::NODE;
  pod.host_ipc = nso.ipc() == cri::NODE;
  pod.userns_path = rec.userns_path();
  pod.uid_mappings.assign(rec.uid_mappings().begin(), rec.uid_mappings().end());
  pod.gid_mappings.assign(rec.gid_mappings().begin(), rec.gid_mappings().end());
  absl::StatusOr<std::string> cgroups_path = CgroupsPath(rec.cgroup_parent(), id);
  if (!cgroups_path.ok()) return cgroups_path.status();
  SpecOptions so{*cgroups_path, oom_floor_, options_.seccomp_default_when_empty};
  absl::StatusOr<json> spec = BuildInfraSpec(pod, InfraRootfs(), "/pause", so);
  if (!spec.ok()) return spec.status();

  Container infra;
  auto* cc = infra.mutable_config();
  cc->set_id(id);
  cc->set_name(name);
  cc->set_sandbox_id(id);
  cc->set_infra(true);
  cc->set_created_at_ns(rec.created_at_ns());
  cc->set_bundle_dir(BundleDir(id));
  cc->set_rootfs(InfraRootfs());
  cc->set_stop_signal("SIGKILL");
  cc->set_oci_spec(spec->dump());
  cc->mutable_cri()->mutable_metadata()->set_name("POD");
  infra.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_CONFIGURED);
  auto cobj = std::make_shared<ContainerObj>();
  {
    absl::MutexLock cl(&cobj->mu);
    if (absl::Status st = SaveContainer(cobj.get(), infra); !st.ok()) return st;
    {
      absl::MutexLock l(&index_mu_);
      containers_[id] = cobj;
    }
    if (absl::Status st = CreateInRuntime(cobj.get()); !st.ok()) return st;
    if (absl::Status st = oci_.Start(id); !st.ok()) return st;
    Container running = cobj->rec;
    running.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_RUNNING);
    running.mutable_state()->set_started_at_ns(NowNs());
    if (absl::Status st = SaveContainer(cobj.get(), running); !st.ok()) return st;
    Emit(running, EventType::kStarted);
  }
  if (cni.joinable()) {
    cni.join();
    if (!net_result.ok()) return net_result.status();
    for (const auto& ip : net_result->ips) rec.add_ips(ip);
    rec.set_cni_result(net_result->result);
    rec.set_cni_config(net_result->config);
    if (absl::Status st = SaveSandbox(obj.get(), rec); !st.ok()) return st;
  }
  if (absl::Status st = WritePodFiles(rec, host_network); !st.ok()) return st;
  if (*pod_userns) {
    // The pod's files belong to its root, as they belong to root in a pod without one.
    for (const char* f : {"hosts", "resolv.conf", "hostname"}) {
      const std::string path = absl::StrCat(rec.dir(), "/", f);
      if (chown(path.c_str(), userns_root.uid, userns_root.gid) != 0 && errno != ENOENT) {
        return Errno(absl::StrCat("chown ", path));
      }
    }
  }
  rec.set_status(berth::v1::SANDBOX_STATUS_READY);
  if (absl::Status st = SaveSandbox(obj.get(), rec); !st.ok()) return st;
  ok = true;
  return id;
}

std::vector<std::shared_ptr<Engine::ContainerObj>> Engine::ContainersOf(
    const std::string& sandbox_id) const {
  std::vector<std::shared_ptr<ContainerObj>> out;
  absl::MutexLock l(&index_mu_);
  for (const auto& [id, view] : container_views_) {
    if (view->config().sandbox_id() == sandbox_id && !view->config().infra()) {
      auto it = containers_.find(id);
      if (it != containers_.end()) out.push_back(it->second);
    }
  }
  return out;
}

absl::Status Engine::StopPodSandbox(const std::string& id) {
  absl::Status err;
  std::shared_ptr<SandboxObj> s = FindSandboxObj(id, &err);
  if (!s) return absl::IsNotFound(err) ? absl::OkStatus() : err;
  std::string sid;
  {
    absl::MutexLock l(&s->mu);
    sid = s->rec.id();
  }
  // Every app container first, in parallel (each waits for its own exit), then the infra one.
  std::vector<std::shared_ptr<ContainerObj>> ctrs = ContainersOf(sid);
  std::vector<absl::Status> results(ctrs.size());
  {
    std::vector<std::thread> threads;
    for (size_t i = 0; i < ctrs.size(); ++i) {
      threads.emplace_back([&, i] { results[i] = StopContainerObj(ctrs[i], 0); });
    }
    for (auto& t : threads) t.join();
  }
  for (const auto& r : results) {
    if (!r.ok()) return r;
  }
  absl::MutexLock l(&s->mu);
  Sandbox rec = s->rec;
  return TearDownSandbox(s.get(), &rec);
}

// Stops the infra container and releases the pod's network and shm; the pod becomes NOTREADY.
absl::Status Engine::TearDownSandbox(SandboxObj* s, Sandbox* rec) {
  std::shared_ptr<ContainerObj> infra;
  {
    absl::MutexLock l(&index_mu_);
    auto it = containers_.find(rec->infra_container_id());
    if (it != containers_.end()) infra = it->second;
  }
  // CNI DEL and stopping the infra container are independent (the netns is pinned, not held by
  // the pause process), so they run side by side.
  const bool cni_del = network_ != nullptr && !rec->netns_path().empty() &&
                       (!rec->ips().empty() || !rec->cni_result().empty() ||
                        rec->status() == berth::v1::SANDBOX_STATUS_CREATING);
  absl::Status net_status;
  std::thread cni;
  if (cni_del) {
    PodNetworkSpec net{rec->id(), rec->config().metadata().name(),
                       rec->config().metadata().namespace_(), rec->config().metadata().uid(),
                       rec->netns_path(),
                       {rec->config().port_mappings().begin(), rec->config().port_mappings().end()}};
    cni = std::thread([this, net = std::move(net), &net_status] { net_status = network_->TearDown(net); });
  }
  absl::Status infra_status;
  if (infra) infra_status = StopContainerObj(infra, 0);
  if (cni.joinable()) cni.join();
  if (!infra_status.ok()) return infra_status;
  if (cni_del) {
    if (!net_status.ok()) return net_status;
    rec->clear_ips();
    rec->clear_cni_result();
  }
  if (!rec->shm_path().empty()) {
    if (umount2(rec->shm_path().c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
      return Errno(absl::StrCat("unmounting ", rec->shm_path()));
    }
  }
  // A pod in a user namespace pinned its namespaces in its directory: they go with its network.
  if (!rec->userns_path().empty()) {
    for (const std::string& pin : {rec->netns_path(), rec->userns_path()}) {
      if (pin.empty()) continue;
      if (absl::Status st = RemovePinnedNamespace(pin); !st.ok()) return st;
    }
  }
  if (rec->status() != berth::v1::SANDBOX_STATUS_CREATING &&
      rec->status() != berth::v1::SANDBOX_STATUS_REMOVING) {
    rec->set_status(berth::v1::SANDBOX_STATUS_NOT_READY);
  }
  bool indexed;
  {
    absl::MutexLock l(&index_mu_);
    indexed = sandbox_views_.contains(rec->id());
  }
  if (indexed) return SaveSandbox(s, *rec);
  return absl::OkStatus();
}

absl::Status Engine::RemovePodSandbox(const std::string& id) {
  absl::Status err;
  std::shared_ptr<SandboxObj> s = FindSandboxObj(id, &err);
  if (!s) return absl::IsNotFound(err) ? absl::OkStatus() : err;
  std::string sid;
  {
    absl::MutexLock l(&s->mu);
    sid = s->rec.id();
  }
  for (const auto& c : ContainersOf(sid)) {
    if (absl::Status st = RemoveContainerObj(c, /*force=*/true); !st.ok()) return st;
  }
  absl::MutexLock l(&s->mu);
  Sandbox rec = s->rec;
  rec.set_status(berth::v1::SANDBOX_STATUS_REMOVING);
  if (absl::Status st = SaveSandbox(s.get(), rec); !st.ok()) return st;
  if (absl::Status st = TearDownSandbox(s.get(), &rec); !st.ok()) return st;
  std::shared_ptr<ContainerObj> infra;
  {
    absl::MutexLock il(&index_mu_);
    auto it = containers_.find(rec.infra_container_id());
    if (it != containers_.end()) infra = it->second;
  }
  if (infra) {
    absl::MutexLock cl(&infra->mu);
    if (absl::Status st = CleanupContainer(infra); !st.ok()) return st;
  }
  if (network_ != nullptr && !rec.netns_path().empty()) {
    if (absl::Status st = network_->RemoveNetns(rec.netns_path()); !st.ok()) return st;
  }
  if (absl::Status st = RemoveAll(rec.dir()); !st.ok()) return st;
  storage::Batch b;
  b.Delete(storage::Kind::kSandboxes, sid);
  if (absl::Status st = db_->Commit(std::move(b)); !st.ok()) return st;
  {
    absl::MutexLock il(&index_mu_);
    sandboxes_.erase(sid);
    sandbox_views_.erase(sid);
  }
  absl::MutexLock nl(&names_mu_);
  auto it = sandbox_names_.find(rec.name());
  if (it != sandbox_names_.end() && it->second->id == sid) sandbox_names_.erase(it);
  return absl::OkStatus();
}

absl::Status Engine::UpdateSandboxResources(const std::string& id,
                                            const cri::LinuxContainerResources& resources,
                                            const cri::LinuxContainerResources& overhead) {
  absl::Status err;
  std::shared_ptr<SandboxObj> s = FindSandboxObj(id, &err);
  if (!s) return err;
  absl::MutexLock l(&s->mu);
  Sandbox rec = s->rec;
  if (rec.status() != berth::v1::SANDBOX_STATUS_READY) {
    return absl::FailedPreconditionError(absl::StrCat("pod sandbox \"", id, "\" is not ready"));
  }
  *rec.mutable_resources() = resources;
  *rec.mutable_overhead() = overhead;
  return SaveSandbox(s.get(), rec);
}

absl::StatusOr<SandboxView> Engine::GetSandbox(const std::string& id_or_prefix) const {
  absl::Status err;
  absl::MutexLock l(&index_mu_);
  SandboxView v = FindByIdOrPrefix(sandbox_views_, id_or_prefix, "pod sandbox", "pod_sandbox_id", &err);
  if (!v) return err;
  return v;
}

std::vector<SandboxView> Engine::ListSandboxes() const {
  absl::MutexLock l(&index_mu_);
  std::vector<SandboxView> out;
  out.reserve(sandbox_views_.size());
  for (const auto& [id, v] : sandbox_views_) out.push_back(v);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Containers

absl::StatusOr<std::string> Engine::CreateContainer(const std::string& sandbox_id,
                                                    const cri::ContainerConfig& config) {
  if (!config.has_metadata() || config.metadata().name().empty()) {
    return absl::InvalidArgumentError("config.metadata.name is required");
  }
  if (config.image().image().empty()) return absl::InvalidArgumentError("config.image.image is required");
  absl::StatusOr<SandboxView> sb = GetSandbox(sandbox_id);
  if (!sb.ok()) return sb.status();
  // CRI-O's restore: the image names a checkpoint archive, checked before anything is made.
  std::optional<CheckpointArchive> restore;
  if (IsCheckpointArchiveRef(config.image().image())) {
    absl::StatusOr<CheckpointArchive> archive = ReadCheckpointArchive(config.image().image());
    if (!archive.ok()) return archive.status();
    if (absl::Status st = CriuUsable(options_.criu_path); !st.ok()) return st;
    restore = std::move(*archive);
  }
  const std::string name = ContainerName(config.metadata(), (*sb)->config().metadata());
  std::string existing;
  absl::StatusOr<std::shared_ptr<Reservation>> r =
      Reserve(&container_names_, name, Deterministic(config), &existing);
  if (!r.ok()) return r.status();
  if (!*r) return existing;
  absl::StatusOr<std::string> id =
      restore ? DoCreateContainer((*sb)->id(),
                                  MergeRestoreConfig(restore->container.config().cri(), config),
                                  name, &*restore)
              : DoCreateContainer((*sb)->id(), config, name);
  Release(&container_names_, name, *r, id);
  return id;
}

absl::StatusOr<std::string> Engine::DoCreateContainer(const std::string& sandbox_id,
                                                      const cri::ContainerConfig& config,
                                                      const std::string& name,
                                                      const CheckpointArchive* restore) {
  absl::Status err;
  std::shared_ptr<SandboxObj> sobj = FindSandboxObj(sandbox_id, &err);
  if (!sobj) return err;
  Sandbox sandbox;
  {
    absl::MutexLock l(&sobj->mu);
    sandbox = sobj->rec;
  }
  if (absl::Status st = ValidateContainerUserNamespace(
          config.linux().security_context().namespace_options(),
          sandbox.config().linux().security_context().namespace_options());
      !st.ok()) {
    return st;
  }
  if (sandbox.status() != berth::v1::SANDBOX_STATUS_READY) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod sandbox \"", sandbox_id, "\" is not ready"));
  }
  pid_t infra_pid = 0;
  {
    absl::MutexLock l(&index_mu_);
    auto it = container_views_.find(sandbox.infra_container_id());
    if (it != container_views_.end() &&
        it->second->state().status() == berth::v1::CONTAINER_STATUS_RUNNING) {
      infra_pid = it->second->state().pid();
    }
  }
  if (infra_pid == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the infra container of pod sandbox \"", sandbox_id, "\" is not running"));
  }
  if (images_ == nullptr) return absl::FailedPreconditionError("berth has no image store");
  // A restore needs the very image the checkpoint ran on, whatever its tag names now.
  absl::StatusOr<berth::v1::Image> image = images_->ResolveImage(
      restore ? restore->container.config().image_id() : config.image().image());
  if (!image.ok()) {
    if (absl::IsNotFound(image.status())) {
      return absl::NotFoundError(absl::StrCat("image \"", config.image().image(),
                                              "\" is not present: pull it first"));
    }
    return image.status();
  }

  const std::string id = NewId();
  Container rec;
  auto* cc = rec.mutable_config();
  cc->set_id(id);
  cc->set_name(name);
  cc->set_sandbox_id(sandbox_id);
  *cc->mutable_cri() = config;
  cc->set_image_id(image->id());
  cc->set_image_ref(image->repo_digests_size() > 0 ? image->repo_digests(0) : image->id());
  cc->set_image_name(config.image().image());
  cc->set_created_at_ns(NowNs());
  cc->set_bundle_dir(BundleDir(id));
  cc->set_rootfs(absl::StrCat(BundleDir(id), "/rootfs"));
  cc->set_overlay_rootfs(true);
  cc->set_stop_signal(image->config().stop_signal().empty() ? "SIGTERM" : image->config().stop_signal());
  if (!sandbox.config().log_directory().empty() && !config.log_path().empty()) {
    cc->set_log_path(absl::StrCat(sandbox.config().log_directory(), "/", config.log_path()));
  }
  if (restore != nullptr) {
    auto* from = cc->mutable_restore();
    from->set_archive(restore->path);
    from->set_checkpoint_dir(absl::StrCat(cc->bundle_dir(), "/restore/", kCheckpointImagesDir));
    from->set_source_id(restore->container.config().id());
    from->set_checkpointed_at_ns(restore->checkpointed_at_ns);
  }
  rec.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_CONFIGURED);

  auto obj = std::make_shared<ContainerObj>();
  absl::MutexLock lock(&obj->mu);
  // Saved before anything is made, so a crash leaves a record that recovery cleans up.
  {
    // Not fsynced: a Configured record only guides cleanup after a berthd crash; after a power
    // loss its mounts and bundle are gone with the tmpfs anyway.
    storage::Batch b;
    b.Put(storage::Kind::kContainers, id, rec);
    if (absl::Status st = db_->Commit(std::move(b), storage::StateDB::Durability::kProcessCrash);
        !st.ok()) {
      return st;
    }
    obj->rec = rec;
    absl::MutexLock l(&index_mu_);
    containers_[id] = obj;
  }
  bool ok = false;
  absl::Cleanup undo = [&] {
    if (ok) return;
    if (absl::Status st = CleanupContainer(obj); !st.ok()) {
      LOG(ERROR) << "undoing failed container " << id << ": " << st;
    }
  };

  if (absl::Status st = MakeDirs(cc->bundle_dir(), 0700); !st.ok()) return st;
  if (absl::Status st = MakeDirs(cc->rootfs(), 0755); !st.ok()) return st;
  if (restore != nullptr) {
    if (!sandbox.userns_path().empty()) {
      // Its files and CRIU images carry the host IDs of the checkpointed container's namespace.
      return absl::FailedPreconditionError(absl::StrCat(
          "pod sandbox \"", sandbox_id,
          "\" has its own user namespace: berth restores checkpoints only into pods without one"));
    }
    // The CRIU images, and the checkpointed writable layer into the new one before it is mounted.
    const std::string unpacked = absl::StrCat(cc->bundle_dir(), "/restore");
    if (absl::Status st = MakeDirs(unpacked, 0700); !st.ok()) return st;
    if (absl::Status st = UnpackCheckpointArchive(*restore, unpacked); !st.ok()) return st;
    absl::StatusOr<std::string> upper = images_->WritableLayerDir(id);
    if (!upper.ok()) return upper.status();
    if (absl::Status st = UnpackRootfsDiff(*restore, unpacked, *upper); !st.ok()) return st;
  }
  // A pod in a user namespace: runc reaches the rootfs by path from inside the namespace, and the
  // image's files must show as owned by the namespace's IDs.
  UniqueFd userns_fd;
  RootfsIdmap idmap;
  if (!sandbox.userns_path().empty()) {
    absl::StatusOr<HostRoot> root = HostRootOf(sandbox.uid_mappings(), sandbox.gid_mappings());
    if (!root.ok()) return root.status();
    // The bundle stays private (0700): its owner becomes the pod's root, not everyone.
    if (chown(cc->bundle_dir().c_str(), root->uid, root->gid) != 0) {
      return Errno(absl::StrCat("chown ", cc->bundle_dir()));
    }
    if (absl::Status st = CheckReachableFromUserNamespace(cc->rootfs(), *root); !st.ok()) return st;
    absl::StatusOr<UniqueFd> fd = OpenUserNamespace(sandbox.userns_path());
    if (!fd.ok()) return fd.status();
    userns_fd = std::move(*fd);
    idmap = RootfsIdmap{userns_fd.get(), root->uid, root->gid};
  }
  if (absl::Status st = images_->MountRootfs(id, image->id(), cc->rootfs(),
                                             userns_fd.valid() ? &idmap : nullptr);
      !st.ok()) {
    return st;
  }
  if (!cc->log_path().empty()) {
    std::string dir = cc->log_path().substr(0, cc->log_path().rfind('/'));
    if (absl::Status st = MakeDirs(dir, 0755); !st.ok()) return st;
  }

  PodContext pod;
  pod.pod = &sandbox.config();
  pod.sandbox_id = sandbox_id;
  pod.sandbox_dir = sandbox.dir();
  pod.shm_path = sandbox.shm_path();
  pod.netns_path = sandbox.netns_path();
  pod.infra_pid = infra_pid;
  const auto& nso = sandbox.config().linux().security_context().namespace_options();
  pod.host_network = nso.network() == cri::NODE;
  pod.host_ipc = nso.ipc() == cri::NODE;
  pod.host_pid = nso.pid() == cri::NODE;
  pod.userns_path = sandbox.userns_path();
  pod.uid_mappings.assign(sandbox.uid_mappings().begin(), sandbox.uid_mappings().end());
  pod.gid_mappings.assign(sandbox.gid_mappings().begin(), sandbox.gid_mappings().end());
  absl::StatusOr<std::string> cgroups_path = CgroupsPath(sandbox.cgroup_parent(), id);
  if (!cgroups_path.ok()) return cgroups_path.status();
  SpecOptions so{*cgroups_path, oom_floor_, options_.seccomp_default_when_empty};
  cri::ContainerConfig effective = config;
  auto* cnso = effective.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  if (pod.host_pid) cnso->set_pid(cri::NODE);
  if (cnso->pid() == cri::TARGET) {
    absl::StatusOr<ContainerView> target = GetContainer(cnso->target_id());
    if (!target.ok() || (*target)->state().status() != berth::v1::CONTAINER_STATUS_RUNNING) {
      return absl::NotFoundError(absl::StrCat(
          "linux.security_context.namespace_options.target_id \"", cnso->target_id(),
          "\" is not a running container"));
    }
    pod.infra_pid = (*target)->state().pid();  // join the target's PID namespace
    cnso->set_pid(cri::POD);
  }
  absl::StatusOr<json> spec = BuildContainerSpec(pod, effective, image->config(), id, cc->rootfs(), so);
  if (!spec.ok()) return spec.status();
  if (cnso->pid() == cri::POD && pod.infra_pid != infra_pid) {
    // Network/IPC/UTS still come from the pod's infra container.
    for (auto& ns : (*spec)["linux"]["namespaces"]) {
      std::string type = ns["type"];
      if (type == "ipc" || type == "uts" || (type == "network" && pod.netns_path.empty())) {
        std::string which = type == "network" ? "net" : type;
        ns["path"] = absl::StrCat("/proc/", infra_pid, "/ns/", which);
      }
    }
  }
  if (absl::Status st = ApplyHooks(hooks_, &*spec); !st.ok()) return st;
  // Volumes with ID mappings are bound from idmapped copies, attached only until runc create has
  // made its own mounts of them (this object detaches them when the creation is done).
  absl::StatusOr<StagedMounts> staged_mounts = StageIdmappedMounts(
      effective, sandbox.userns_path(), sandbox.uid_mappings(), sandbox.gid_mappings(),
      absl::StrCat(options_.state_dir, "/idmap/", id), &*spec);
  if (!staged_mounts.ok()) return staged_mounts.status();
  cc->set_oci_spec(spec->dump());
  if (absl::Status st = SaveContainer(obj.get(), rec, /*durable=*/false); !st.ok()) return st;
  if (restore != nullptr) {
    // runc learns of it only at StartContainer, which restores it: Created without a process.
    rec.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_CREATED);
    rec.mutable_state()->set_state_changed_at_ns(NowNs());
    if (absl::Status st = SaveContainer(obj.get(), rec); !st.ok()) return st;
    Emit(rec, EventType::kCreated);
  } else if (absl::Status st = CreateInRuntime(obj.get()); !st.ok()) {
    return st;
  }
  ok = true;
  return id;
}

namespace {

// Writes the bundle's config.json and describes the container for conmon.
absl::StatusOr<oci::CreateRequest> PrepareBundle(const berth::v1::ContainerConfig& cc) {
  if (absl::Status st = WriteFileAtomic(absl::StrCat(cc.bundle_dir(), "/config.json"), cc.oci_spec(), 0600);
      !st.ok()) {
    return st;
  }
  oci::CreateRequest req;
  req.id = cc.id();
  req.name = cc.name();
  req.bundle = cc.bundle_dir();
  req.log_path = cc.log_path();
  req.terminal = cc.cri().tty();
  req.open_stdin = cc.cri().stdin();
  req.stdin_once = cc.cri().stdin_once();
  return req;
}

}  // namespace

absl::Status Engine::CreateInRuntime(ContainerObj* c) {
  Container rec = c->rec;
  const auto& cc = rec.config();
  if (absl::Status st = EnsureState(rec, Operation::kCreate); !st.ok()) return st;
  if (absl::Status st = MakeDirs(cc.bundle_dir(), 0700); !st.ok()) return st;
  absl::StatusOr<oci::CreateRequest> req = PrepareBundle(cc);
  if (!req.ok()) return req.status();
  absl::StatusOr<oci::CreateResult> res = oci_.Create(*req);
  if (!res.ok()) return res.status();
  rec.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_CREATED);
  rec.mutable_state()->set_pid(res->pid);
  rec.mutable_state()->set_conmon_pid(res->conmon_pid);
  rec.mutable_state()->set_state_changed_at_ns(NowNs());
  if (absl::Status st = SaveContainer(c, rec); !st.ok()) return st;
  Emit(rec, EventType::kCreated);
  return absl::OkStatus();
}

absl::Status Engine::RestoreInRuntime(ContainerObj* c) {
  Container rec = c->rec;
  const auto& cc = rec.config();
  absl::StatusOr<std::string> criu = UsableCriu(options_.criu_path);
  if (!criu.ok()) return criu.status();
  absl::StatusOr<oci::CreateRequest> req = PrepareBundle(cc);
  if (!req.ok()) return req.status();
  req->restore_image_path = cc.restore().checkpoint_dir();
  req->criu_path = *criu;
  absl::StatusOr<oci::CreateResult> res = oci_.Create(*req);
  if (!res.ok()) {
    std::string criu_errors = CriuLogErrors(absl::StrCat(cc.bundle_dir(), "/restore.log"));
    if (criu_errors.empty()) return res.status();
    return absl::InternalError(absl::StrCat(res.status().message(), " (CRIU: ", criu_errors, ")"));
  }
  // The memory pages are in the process now; on the state tmpfs they would only take room.
  if (absl::Status st = RemoveAll(cc.restore().checkpoint_dir()); !st.ok()) {
    LOG(WARNING) << "removing the CRIU images of restored container " << cc.id() << ": " << st;
  }
  auto* s = rec.mutable_state();
  s->set_status(berth::v1::CONTAINER_STATUS_RUNNING);
  s->set_pid(res->pid);
  s->set_conmon_pid(res->conmon_pid);
  s->set_started_at_ns(NowNs());
  s->set_state_changed_at_ns(s->started_at_ns());
  if (absl::Status st = SaveContainer(c, rec); !st.ok()) return st;
  Emit(rec, EventType::kStarted);
  return absl::OkStatus();
}

absl::Status Engine::StartContainer(const std::string& id) {
  absl::Status err;
  std::shared_ptr<ContainerObj> c = FindContainerObj(id, &err);
  if (!c) return err;
  absl::MutexLock l(&c->mu);
  Container rec = c->rec;
  if (absl::Status st = EnsureState(rec, Operation::kStart); !st.ok()) return st;
  const bool restore = AwaitingRestore(rec);
  if (absl::Status st = restore ? RestoreInRuntime(c.get()) : oci_.Start(rec.config().id());
      !st.ok()) {
    // A start that failed leaves an unusable container: record why.
    rec.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_STOPPED);
    rec.mutable_state()->set_exit_code(128);
    rec.mutable_state()->set_reason("StartError");
    rec.mutable_state()->set_message(std::string(st.message()));
    rec.mutable_state()->set_finished_at_ns(NowNs());
    if (absl::Status save = SaveContainer(c.get(), rec); !save.ok()) {
      LOG(ERROR) << "recording the failed start of " << rec.config().id() << ": " << save;
    }
    return st;
  }
  if (restore) return absl::OkStatus();  // RestoreInRuntime saved it Running
  rec.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_RUNNING);
  rec.mutable_state()->set_started_at_ns(NowNs());
  rec.mutable_state()->set_state_changed_at_ns(rec.state().started_at_ns());
  if (absl::Status st = SaveContainer(c.get(), rec); !st.ok()) return st;
  Emit(rec, EventType::kStarted);
  // An exit seen meanwhile waits in OnExit for this lock and is applied to the Running record.
  return absl::OkStatus();
}

absl::Status Engine::StopContainer(const std::string& id, int64_t timeout_seconds) {
  absl::Status err;
  std::shared_ptr<ContainerObj> c = FindContainerObj(id, &err);
  if (!c) return err;
  return StopContainerObj(c, timeout_seconds);
}

absl::Status Engine::StopContainerObj(const std::shared_ptr<ContainerObj>& c,
                                      int64_t timeout_seconds) {
  std::string id, signal_name;
  {
    absl::MutexLock l(&c->mu);
    auto s = c->rec.state().status();
    if (s != berth::v1::CONTAINER_STATUS_RUNNING && s != berth::v1::CONTAINER_STATUS_PAUSED &&
        s != berth::v1::CONTAINER_STATUS_CREATED) {
      return absl::OkStatus();  // already stopped: stopping is idempotent
    }
    id = c->rec.config().id();
    signal_name = c->rec.config().stop_signal();
    if (AwaitingRestore(c->rec)) {
      // Nothing runs before the restore: no process to signal, no exit file to wait for.
      MarkExited(c.get(), 137);
      return absl::OkStatus();
    }
    if (s == berth::v1::CONTAINER_STATUS_PAUSED) {
      // A paused process cannot act on a signal: let it run so it can.
      if (absl::Status st = oci_.Resume(id); !st.ok()) return st;
      Container rec = c->rec;
      rec.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_RUNNING);
      LogIfFailed(SaveContainer(c.get(), rec), id);
    }
  }
  auto exited = [&c]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu) {
    auto s = c->rec.state().status();
    return s != berth::v1::CONTAINER_STATUS_RUNNING && s != berth::v1::CONTAINER_STATUS_CREATED &&
           s != berth::v1::CONTAINER_STATUS_PAUSED;
  };
  if (timeout_seconds > 0) {
    if (absl::Status st = oci_.Kill(id, SignalNumber(signal_name)); !st.ok() && !absl::IsNotFound(st)) {
      return st;
    }
    absl::MutexLock l(&c->mu);
    const absl::Time deadline = absl::Now() + absl::Seconds(timeout_seconds);
    while (!exited() && !c->changed.WaitWithDeadline(&c->mu, deadline)) {
    }
    if (exited()) return absl::OkStatus();
  }
  if (absl::Status st = oci_.Kill(id, SIGKILL, /*all=*/true); !st.ok() && !absl::IsNotFound(st)) {
    LOG(WARNING) << "killing " << id << ": " << st;
  }
  absl::MutexLock l(&c->mu);
  const absl::Time deadline = absl::Now() + kKillGrace;
  while (!exited() && !c->changed.WaitWithDeadline(&c->mu, deadline)) {
  }
  if (exited()) return absl::OkStatus();
  // No exit file arrived (conmon gone?): believe runc, then the exit file, then give up loudly.
  absl::StatusOr<int> code = oci_.ReadExitCode(id);
  absl::StatusOr<oci::RuncState> rs = oci_.State(id);
  if (code.ok() || !rs.ok() || rs->status == "stopped") {
    MarkExited(c.get(), code.ok() ? *code : 137);
    return absl::OkStatus();
  }
  return absl::DeadlineExceededError(
      absl::StrCat("container \"", id, "\" did not exit after SIGKILL"));
}

absl::Status Engine::RemoveContainer(const std::string& id, bool force) {
  absl::Status err;
  std::shared_ptr<ContainerObj> c = FindContainerObj(id, &err);
  if (!c) return absl::IsNotFound(err) ? absl::OkStatus() : err;
  {
    absl::MutexLock l(&c->mu);
    if (c->rec.config().infra()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "container \"", id, "\" is the infra container of its pod: remove the pod instead"));
    }
  }
  return RemoveContainerObj(c, force);
}

absl::Status Engine::RemoveContainerObj(const std::shared_ptr<ContainerObj>& c, bool force) {
  {
    absl::MutexLock l(&c->mu);
    auto s = c->rec.state().status();
    bool live = s == berth::v1::CONTAINER_STATUS_RUNNING || s == berth::v1::CONTAINER_STATUS_PAUSED;
    if (live && !force) {
      return absl::FailedPreconditionError(absl::StrCat(
          "container \"", c->rec.config().id(), "\" is running: stop it before removing it"));
    }
  }
  if (absl::Status st = StopContainerObj(c, 0); !st.ok()) return st;
  absl::MutexLock l(&c->mu);
  Container rec = c->rec;
  if (rec.state().status() != berth::v1::CONTAINER_STATUS_REMOVING) {
    rec.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_REMOVING);
    if (absl::Status st = SaveContainer(c.get(), rec); !st.ok()) return st;
  }
  return CleanupContainer(c);
}

absl::Status Engine::CleanupContainer(const std::shared_ptr<ContainerObj>& c) {
  const Container rec = c->rec;
  const auto& cc = rec.config();
  if (absl::Status st = oci_.Delete(cc.id(), /*force=*/true); !st.ok()) return st;
  if (cc.overlay_rootfs() && images_ != nullptr) {
    if (absl::Status st = images_->UnmountRootfs(cc.id()); !st.ok()) return st;
    if (absl::Status st = images_->RemoveContainerStorage(cc.id()); !st.ok()) return st;
  }
  if (absl::Status st = RemoveAll(cc.bundle_dir()); !st.ok()) return st;
  unlink(oci_.ExitFile(cc.id()).c_str());
  if (absl::Status st = db_->Delete(storage::Kind::kContainers, cc.id()); !st.ok()) return st;
  {
    absl::MutexLock l(&index_mu_);
    containers_.erase(cc.id());
    container_views_.erase(cc.id());
  }
  Container gone = rec;
  gone.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_REMOVING);
  c->rec = gone;
  c->changed.SignalAll();
  if (rec.state().status() != berth::v1::CONTAINER_STATUS_CONFIGURED) Emit(rec, EventType::kDeleted);
  if (!cc.infra()) {
    absl::MutexLock nl(&names_mu_);
    auto it = container_names_.find(cc.name());
    if (it != container_names_.end() && it->second->id == cc.id()) container_names_.erase(it);
  }
  return absl::OkStatus();
}

absl::StatusOr<ContainerView> Engine::GetContainer(const std::string& id_or_prefix) const {
  absl::Status err;
  absl::MutexLock l(&index_mu_);
  ContainerView v = FindByIdOrPrefix(container_views_, id_or_prefix, "container", "container_id", &err);
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

absl::StatusOr<ExecSyncResult> Engine::ExecSync(const std::string& id,
                                                const std::vector<std::string>& cmd,
                                                int64_t timeout_seconds) {
  if (cmd.empty()) return absl::InvalidArgumentError("cmd is required");
  absl::StatusOr<ContainerView> c = GetContainer(id);
  if (!c.ok()) return c.status();
  if ((*c)->state().status() != berth::v1::CONTAINER_STATUS_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat("container \"", id, "\" is not running"));
  }
  json spec = json::parse((*c)->config().oci_spec(), nullptr, false);
  if (spec.is_discarded()) return absl::DataLossError("stored OCI spec does not parse");
  json process = ExecProcess(spec, cmd, false);
  absl::StatusOr<oci::ExecResult> r =
      oci_.ExecSync((*c)->config().id(), process.dump(),
                    timeout_seconds > 0 ? absl::Seconds(timeout_seconds) : absl::ZeroDuration(),
                    options_.exec_sync_max_output);
  if (!r.ok()) return r.status();
  ExecSyncResult out;
  out.exit_code = r->exit_code;
  out.stdout_data = std::move(r->stdout_data);
  out.stderr_data = std::move(r->stderr_data);
  out.timed_out = r->timed_out;
  return out;
}

absl::Status Engine::UpdateContainerResources(const std::string& id,
                                              const cri::LinuxContainerResources& resources) {
  absl::Status err;
  std::shared_ptr<ContainerObj> c = FindContainerObj(id, &err);
  if (!c) return err;
  absl::MutexLock l(&c->mu);
  Container rec = c->rec;
  auto s = rec.state().status();
  if (s == berth::v1::CONTAINER_STATUS_RUNNING || s == berth::v1::CONTAINER_STATUS_CREATED ||
      s == berth::v1::CONTAINER_STATUS_PAUSED) {
    if (absl::Status st = oci_.Update(rec.config().id(), ResourcesToOci(resources).dump()); !st.ok()) {
      return st;
    }
  } else {
    return absl::FailedPreconditionError(
        absl::StrCat("container \"", id, "\" is not running: its resources cannot change"));
  }
  *rec.mutable_state()->mutable_resources() = resources;
  return SaveContainer(c.get(), rec);
}

absl::Status Engine::ReopenContainerLog(const std::string& id) {
  absl::StatusOr<ContainerView> c = GetContainer(id);
  if (!c.ok()) return c.status();
  if ((*c)->state().status() != berth::v1::CONTAINER_STATUS_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat("container \"", id, "\" is not running"));
  }
  // conmon's control message 2 reopens its log files; kubelet expects the new file to exist
  // when this call returns, so wait (bounded) for conmon to act.
  if (absl::Status st = oci::OciRuntime::WriteControl((*c)->config().bundle_dir(), "2 0 0\n");
      !st.ok()) {
    return st;
  }
  const std::string& log = (*c)->config().log_path();
  if (log.empty()) return absl::OkStatus();
  if (absl::Status st = WaitForPath(log, 5000); !st.ok()) {
    if (absl::IsDeadlineExceeded(st)) {
      return absl::DeadlineExceededError(absl::StrCat("conmon did not reopen ", log));
    }
    return st;
  }
  return absl::OkStatus();
}

absl::Status Engine::CheckpointContainer(const std::string& id, const std::string& location,
                                         int64_t timeout_seconds) {
  if (location.empty() || location[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("location \"", location, "\" is not an absolute path"));
  }
  absl::StatusOr<ContainerView> c = GetContainer(id);
  if (!c.ok()) return c.status();
  if ((*c)->state().status() != berth::v1::CONTAINER_STATUS_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat("container \"", id, "\" is not running"));
  }
  absl::StatusOr<std::string> criu = UsableCriu(options_.criu_path);
  if (!criu.ok()) return criu.status();
  const std::string cid = (*c)->config().id();
  const std::string dir = absl::StrCat(options_.state_dir, "/exec/checkpoint-", NewId().substr(0, 12));
  const std::string images = absl::StrCat(dir, "/", kCheckpointImagesDir);
  if (absl::Status st = MakeDirs(images, 0700); !st.ok()) return st;
  struct DirCleanup {
    std::string d;
    ~DirCleanup() { RemoveAll(d).IgnoreError(); }
  } cleanup{dir};
  const int64_t at = NowNs();
  if (absl::Status st = oci_.Checkpoint({.id = cid,
                                            .criu_path = *criu,
                                            .image_path = images,
                                            .timeout = absl::Seconds(timeout_seconds)});
      !st.ok()) {
    std::string criu_errors = CriuLogErrors(images + "/dump.log");
    if (criu_errors.empty()) return st;
    return absl::InternalError(absl::StrCat(st.message(), " (CRIU: ", criu_errors, ")"));
  }
  // The writable layer goes along: the restored processes expect the files they left behind.
  // The container keeps running meanwhile (as with CRI-O), so late writes may be missed.
  if ((*c)->config().overlay_rootfs() && images_ != nullptr) {
    absl::StatusOr<std::string> upper = images_->WritableLayerDir(cid);
    if (!upper.ok()) return upper.status();
    if (absl::Status st = WriteRootfsDiff(*upper, absl::StrCat(dir, "/", kCheckpointRootfsDiff));
        !st.ok()) {
      return st;
    }
  }
  if (absl::Status st = WriteCheckpointMetadata(**c, at, dir); !st.ok()) return st;
  return WriteCheckpointArchive(dir, location);
}

int Engine::CountContainers(berth::v1::ContainerStatus status) const {
  absl::MutexLock l(&index_mu_);
  int n = 0;
  for (const auto& [id, v] : container_views_) n += !v->config().infra() && v->state().status() == status;
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

}  // namespace berth::runtime
