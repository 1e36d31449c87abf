// libFuzzer target: CRI requests, as kubelet or anyone who reaches berthd's socket sends them,
// through the real RuntimeService and ImageService handlers. Below them: an engine over the shared
// fakes (runtime/testing/engine_fakes.h: oci::FakeRuntime, fake mounts, a fake pod network, a real
// StateDB), a real image store, a stats collector and a streaming server on loopback, all made
// once per process in a scratch root (a tmpfs at /tmp/berth-cri-fuzz.XXXXXX, gone at exit). Input
// format: server/cri_request_fuzz.h (byte 0 picks the method and the faults, the rest is the
// request; bytes that do not parse are skipped). Half the mutations are made to the request as a
// message (LLVMFuzzerCustomMutator below): byte mutations seldom keep its length prefixes right.
//
// Host paths in the fields kubelet chooses (a pod's log_directory, a mount's host_path, a
// checkpoint's location, a Localhost seccomp profile, a checkpoint archive named as the image) are
// moved below <scratch>/host, as kubelet's own paths lie below its root; what a request adds to
// them (a log_path, names, ids) is what berth must keep inside.
//
// Checked after every call:
// - it returned within kCallLimit (a watchdog aborts otherwise, naming the method);
// - its code is one a handler may answer: never UNKNOWN or DATA_LOSS, and INTERNAL only when the
//   input made a fake fail; an answer parses again (no invalid UTF-8 for kubelet to choke on);
// - nothing was written outside the scratch root. The process runs in a mount namespace of its
//   own where every filesystem is read-only except the scratch root (a tmpfs), /proc and the
//   directories libFuzzer writes to, so any write elsewhere fails with EROFS, and a status or a
//   log line naming EROFS is an escape. The records are checked as well: a container's log file
//   is inside its pod's log directory, bundles and pod directories inside the state dir;
// - descriptors and threads stay bounded.
// Between inputs the engine returns to its baseline: pods and containers an input made are
// removed, the standing pod and container are made again when an input stopped, removed or
// changed them, the image is put back when an input removed it.
//
// BERTH_FUZZ_VERBOSE=1 prints each call and its answer, BERTH_FUZZ_LOG=1 berth's log lines.
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "glog/logging.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/server_context.h"
#include "proto/runtime/v1/api.grpc.pb.h"
#include "runtime/stats/collector.h"
#include "runtime/testing/engine_fakes.h"
#include "server/config.h"
#include "server/cri_request_fuzz.h"
#include "server/cri_request_fuzz_host.h"
#include "server/image_service.h"
#include "server/runtime_service.h"
#include "server/streaming/server.h"
#include "storage/images/image_store.h"
#include "util/fs.h"

namespace berth::server::fuzz {
namespace {

namespace cri = runtime::v1;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// How far descriptors and threads may grow past their count after the first inputs.
constexpr int kFdSlack = 128;
constexpr int kThreadSlack = 32;

// ---------------------------------------------------------------------------------------------
// The world the requests land in.

class World {
 public:
  // `scratch`: an empty directory that holds everything.
  explicit World(std::string scratch)
      : scratch_(std::move(scratch)),
        host_(scratch_ + "/host"),
        env_(scratch_ + "/engine",
             {.cgroup_parent = "/berth-cri-fuzz", .network = true, .adjust = [this](auto* eo) {
                // A CRIU that passes `criu check`: checkpoints reach the fake runtime's.
                eo->criu_path = scratch_ + "/criu";
                eo->hooks_dirs = {};
                eo->cdi_spec_dirs = {scratch_ + "/cdi"};
              }}) {}

  ~World() {
    images_.reset();
    store_.reset();
    runtime_.reset();
    stats_.reset();
    streams_.reset();
    engine_.reset();
  }

  void Start() {
    for (const char* d : {"/host", "/engine", "/cdi", "/cgroup", "/images"}) {
      Must(MakeDirs(scratch_ + d, 0755), d);
    }
    Must(WriteFileAtomic(scratch_ + "/criu", "#!/bin/sh\nexit 0\n", 0755), "criu");
    // The Localhost seccomp profile the corpus names.
    Must(MakeDirs(host_ + "/var/lib/kubelet/seccomp", 0755), "the seccomp profile directory");
    Must(WriteFileAtomic(host_ + "/var/lib/kubelet/seccomp/profile.json",
                         R"({"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read",)"
                         R"("write","exit_group"],"action":"SCMP_ACT_ALLOW"}]})"),
         "the seccomp profile");
    Must(env_.Init(), "the scratch engine");
    absl::StatusOr<std::unique_ptr<engine::Engine>> e = env_.Start();
    Must(e.status(), "starting the engine");
    engine_ = std::move(*e);
    absl::StatusOr<std::unique_ptr<streaming::Server>> s =
        streaming::Server::Start(streaming::ServerOptions{}, &sessions_);
    Must(s.status(), "starting the streaming server");
    streams_ = std::move(*s);
    stats_ = std::make_unique<engine::stats::StatsCollector>(
        engine_.get(), engine::stats::StatsOptions{.refresh_interval = absl::ZeroDuration(),
                                                   .cgroup_root = scratch_ + "/cgroup",
                                                   .mode = cgroups::CgroupMode::kUnified});
    runtime_ =
        std::make_unique<RuntimeServiceImpl>(config_, engine_.get(), streams_.get(), stats_.get());
    OpenImages();
    MakeStanding();
    // A checkpoint of the standing container, for the corpus to restore from (CreateContainer
    // with the image "/checkpoints/standing.tar").
    Must(MakeDirs(host_ + "/checkpoints", 0755), "the checkpoints directory");
    Must(engine_->CheckpointContainer(ctr_, host_ + "/checkpoints/standing.tar"),
         "checkpointing the standing container");
  }

  RuntimeServiceImpl* runtime() { return runtime_.get(); }
  ImageServiceImpl* images() { return images_.get(); }

  void InjectFaults(uint8_t faults) {
    if (faults & kRuntimeFails) {
      // Not kill: a SIGKILL that fails leaves berth waiting its 10 s grace for an exit file that
      // never comes, as it should with a real runc, and every such input would take that long.
      for (const char* call : {"create", "start", "delete", "update", "exec", "checkpoint"}) {
        env_.runtime().FailNext(call, absl::InternalError(absl::StrCat("injected: runc ", call)));
      }
    }
    if (faults & kNetworkFails) env_.network().FailNext(absl::InternalError("injected: CNI"));
  }

  // Rewrites a parsed request: the $POD and $CTR names, and kubelet's host paths (see the top).
  void Rewrite(Message* m) {
    const Reflection* r = m->GetReflection();
    std::vector<const FieldDescriptor*> fields;
    r->ListFields(*m, &fields);
    for (const FieldDescriptor* f : fields) {
      if (f->is_map()) continue;
      if (f->type() == FieldDescriptor::TYPE_MESSAGE) {
        if (!f->is_repeated()) {
          Rewrite(r->MutableMessage(m, f));
        } else {
          for (int i = 0; i < r->FieldSize(*m, f); ++i) Rewrite(r->MutableRepeatedMessage(m, f, i));
        }
      } else if (f->type() == FieldDescriptor::TYPE_STRING) {
        if (!f->is_repeated()) {
          std::string v = r->GetString(*m, f);
          if (RewriteString(f, &v)) r->SetString(m, f, std::move(v));
        } else {
          for (int i = 0; i < r->FieldSize(*m, f); ++i) {
            std::string v = r->GetRepeatedString(*m, f, i);
            if (RewriteString(f, &v)) r->SetRepeatedString(m, f, i, std::move(v));
          }
        }
      }
    }
  }

  // The checks on the engine's records (see the top).
  void CheckRecords() {
    const std::string state = env_.engine_options().state_dir;
    for (const engine::SandboxView& s : engine_->ListSandboxes()) {
      if (s->dir() != absl::StrCat(state, "/sandboxes/", s->id())) {
        Fail(absl::StrCat("pod ", s->id(), " has its directory at ", s->dir()));
      }
    }
    for (const engine::ContainerView& c : engine_->ListContainers()) {
      const auto& cc = c->config();
      if (cc.bundle_dir() != absl::StrCat(state, "/containers/", cc.id())) {
        Fail(absl::StrCat("container ", cc.id(), " has its bundle at ", cc.bundle_dir()));
      }
      if (cc.log_path().empty()) continue;
      absl::StatusOr<engine::SandboxView> pod = engine_->GetSandbox(cc.sandbox_id());
      if (!pod.ok()) {
        Fail(absl::StrCat("container ", cc.id(), " has no pod: ", pod.status().ToString()));
      }
      std::string dir =
          std::filesystem::path((*pod)->config().log_directory()).lexically_normal().string();
      if (dir.size() > 1 && dir.back() == '/') dir.pop_back();
      const std::string log = std::filesystem::path(cc.log_path()).lexically_normal().string();
      if (log != cc.log_path() || !Inside(log, dir) || log == dir || !Inside(log, host_)) {
        Fail(absl::StrCat("container ", cc.id(), " logs to ", cc.log_path(),
                          ", not inside its pod's log directory ", dir));
      }
    }
  }

  // Back to the baseline (see the top).
  void Restore() {
    env_.runtime().ClearFailures();
    env_.network().ClearFailures();
    for (const engine::ContainerView& c : engine_->ListContainers()) {
      if (c->config().id() == ctr_) continue;
      Must(engine_->RemoveContainer(c->config().id(), /*force=*/true),
           absl::StrCat("back to the baseline: removing container ", c->config().id()));
    }
    for (const engine::SandboxView& s : engine_->ListSandboxes()) {
      if (s->id() == pod_) continue;
      Must(engine_->RemovePodSandbox(s->id()),
           absl::StrCat("back to the baseline: removing pod ", s->id()));
    }
    if (!AtBaseline()) {
      Must(engine_->RemovePodSandbox(pod_), "back to the baseline: removing the standing pod");
      MakeStanding();
    }
    if (!store_->Get(engine::fakes::FakeImages::kImageId).ok()) OpenImages();
  }

  bool HasPod(const std::string& id) const {
    absl::StatusOr<engine::SandboxView> s = engine_->GetSandbox(id);
    return s.ok() && (*s)->id() == id;
  }
  bool HasContainer(const std::string& id) const {
    absl::StatusOr<engine::ContainerView> c = engine_->GetContainer(id);
    return c.ok() && (*c)->config().id() == id;
  }

 private:
  bool AtBaseline() {
    absl::StatusOr<engine::SandboxView> pod = engine_->GetSandbox(pod_);
    absl::StatusOr<engine::ContainerView> ctr = engine_->GetContainer(ctr_);
    return pod.ok() && ctr.ok() && (*pod)->status() == berth::v1::SANDBOX_STATUS_READY &&
           (*pod)->resources().ByteSizeLong() == 0 && (*pod)->overhead().ByteSizeLong() == 0 &&
           (*ctr)->state().status() == berth::v1::CONTAINER_STATUS_RUNNING &&
           (*ctr)->state().resources().ByteSizeLong() == 0;
  }

  // The pod and container the corpus names $POD and $CTR: a pod network, DNS, a port, a log
  // directory, a container with a log file and a volume.
  void MakeStanding() {
    cri::PodSandboxConfig p;
    p.mutable_metadata()->set_name("standing");
    p.mutable_metadata()->set_namespace_("fuzz");
    p.mutable_metadata()->set_uid("standing-uid");
    p.set_hostname("standing");
    p.set_log_directory(host_ + "/var/log/pods/fuzz_standing_standing-uid");
    p.mutable_dns_config()->add_servers("10.96.0.10");
    p.mutable_dns_config()->add_searches("fuzz.svc.cluster.local");
    p.mutable_dns_config()->add_options("ndots:5");
    auto* port = p.add_port_mappings();
    port->set_container_port(80);
    port->set_host_port(8080);
    (*p.mutable_labels())["app"] = "standing";
    absl::StatusOr<std::string> pod = engine_->RunPodSandbox(p, "");
    Must(pod.status(), "making the standing pod");
    pod_ = *pod;
    cri::ContainerConfig c;
    c.mutable_metadata()->set_name("standing");
    c.mutable_image()->set_image(engine::fakes::FakeImages::kImageName);
    c.add_command("/bin/sleep");
    c.add_args("1000");
    c.set_log_path("standing/0.log");
    auto* m = c.add_mounts();
    m->set_container_path("/data");
    m->set_host_path(host_ + "/var/lib/data");
    (*c.mutable_labels())["app"] = "standing";
    absl::StatusOr<std::string> ctr = engine_->CreateContainer(pod_, c);
    Must(ctr.status(), "making the standing container");
    ctr_ = *ctr;
    Must(engine_->StartContainer(ctr_), "starting the standing container");
  }

  // The image store with busybox in it (as a pull would have left its record and config blob).
  void OpenImages() {
    images_.reset();
    store_.reset();
    const std::string id = engine::fakes::FakeImages::kImageId;
    const std::string root = scratch_ + "/images";
    const std::string config =
        R"({"architecture":"amd64","os":"linux","config":{"User":"1000","Cmd":["/bin/sh"],)"
        R"("Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":[]}})";
    Must(MakeDirs(root + "/blobs/sha256", 0755), "the image store's blobs");
    Must(
        WriteFileAtomic(absl::StrCat(root, "/blobs/sha256/", id.substr(strlen("sha256:"))), config),
        "the image config");
    berth::v1::Image img;
    img.set_id(id);
    img.add_repo_tags("docker.io/library/busybox:latest");
    img.add_repo_digests(
        "docker.io/library/busybox@"
        "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210");
    img.set_size(config.size());
    img.mutable_config()->set_user("1000");
    img.mutable_config()->add_cmd("/bin/sh");
    img.mutable_config()->add_env("PATH=/bin");
    Must(env_.db()->Put(storage::Kind::kImages, id, img), "the image record");
    absl::StatusOr<std::unique_ptr<images::ImageStore>> store =
        images::ImageStore::Open(root, env_.db(), registry::RegistryConfig{});
    Must(store.status(), "opening the image store");
    store_ = std::move(*store);
    images_ = std::make_unique<ImageServiceImpl>(store_.get());
  }

  bool RewriteString(const FieldDescriptor* f, std::string* v) {
    bool changed = false;
    if (absl::StartsWith(*v, "$POD")) {
      *v = absl::StrCat(pod_, v->substr(4));
      changed = true;
    } else if (absl::StartsWith(*v, "$CTR")) {
      *v = absl::StrCat(ctr_, v->substr(4));
      changed = true;
    }
    static const std::set<std::string> kNormalPaths = {
        "runtime.v1.PodSandboxConfig.log_directory",
        "runtime.v1.CheckpointContainerRequest.location",
        "runtime.v1.SecurityProfile.localhost_ref",
        "runtime.v1.ImageSpec.image",  // an absolute path names a checkpoint archive
    };
    static const std::set<std::string> kSeccompNames = {
        "runtime.v1.LinuxContainerSecurityContext.seccomp_profile_path",
        "runtime.v1.LinuxSandboxSecurityContext.seccomp_profile_path",
    };
    const std::string& name = f->full_name();
    constexpr absl::string_view kLocalhost = "localhost/";
    if (kNormalPaths.count(name) > 0 && absl::StartsWith(*v, "/")) {
      // As kubelet means it: "/a/../b" is /b, below the host root like every kubelet path.
      *v = absl::StrCat(host_, std::filesystem::path(*v).lexically_normal().string());
      changed = true;
    } else if (name == "runtime.v1.Mount.host_path" && absl::StartsWith(*v, "/")) {
      // As sent: berth refuses a ".." in it.
      *v = absl::StrCat(host_, *v);
      changed = true;
    } else if (kSeccompNames.count(name) > 0 && absl::StartsWith(*v, kLocalhost) &&
               v->size() > kLocalhost.size() && (*v)[kLocalhost.size()] == '/') {
      *v = absl::StrCat(
          kLocalhost, host_,
          std::filesystem::path(v->substr(kLocalhost.size())).lexically_normal().string());
      changed = true;
    }
    return changed;
  }

  const std::string scratch_;
  const std::string host_;  // kubelet's host paths go below this
  engine::fakes::ScratchEngine env_;
  std::unique_ptr<engine::Engine> engine_;
  NoSessions sessions_;
  std::unique_ptr<streaming::Server> streams_;
  std::unique_ptr<engine::stats::StatsCollector> stats_;
  Config config_;
  std::unique_ptr<RuntimeServiceImpl> runtime_;
  std::unique_ptr<images::ImageStore> store_;
  std::unique_ptr<ImageServiceImpl> images_;
  std::string pod_, ctr_;
};

// ---------------------------------------------------------------------------------------------
// One call.

struct Process {
  std::string scratch;
  int parent_fd = -1;  // the scratch root's parent as the host sees it, for the cleanup
  bool confined = false;
  bool verbose = false;  // BERTH_FUZZ_VERBOSE=1: each call and its answer on stderr
  std::unique_ptr<EscapeSink> sink;
  std::unique_ptr<Watchdog> watchdog;
  std::unique_ptr<World> world;
  uint64_t inputs = 0;
  int fds = -1, threads = -1;  // after the first inputs
};

Process* process = nullptr;

void Cleanup() {
  if (process == nullptr) return;
  process->world.reset();
  process->watchdog.reset();
  if (process->sink) google::RemoveLogSink(process->sink.get());
  if (process->confined) {
    umount2(process->scratch.c_str(), MNT_DETACH);
    unlinkat(process->parent_fd, std::filesystem::path(process->scratch).filename().c_str(),
             AT_REMOVEDIR);
  } else {
    RemoveAll(process->scratch).IgnoreError();
  }
}

void CheckMethodTable();

void Setup(int argc, char** argv) {
  process = new Process;
  process->verbose = getenv("BERTH_FUZZ_VERBOSE") != nullptr;
  CheckMethodTable();
  const std::vector<std::string> writable = FuzzerOutputDirs(argc, argv);
  std::string tmpl = "/tmp/berth-cri-fuzz.XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) Fail(absl::StrCat("mkdtemp: ", strerror(errno)));
  process->scratch = tmpl;
  process->parent_fd = open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC);
  process->confined = Confine(process->scratch, writable);
  if (process->confined) {
    // The detector must hold: beside the scratch root nothing can be made.
    const std::string probe = process->scratch + ".probe";
    const int fd = open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      close(fd);
      unlink(probe.c_str());
      Fail("a file beside the scratch root could be made: the read-only view does not hold");
    }
    if (errno != EROFS) Fail(absl::StrCat("making ", probe, ": ", strerror(errno), ", not EROFS"));
  } else {
    fprintf(stderr,
            "cri_request_fuzz: no mount namespace of its own here (%s): writes outside %s are "
            "not made read-only, only the records are checked\n",
            strerror(errno), process->scratch.c_str());
  }
  // berth's log lines go to the sink only (BERTH_FUZZ_LOG=1: to stderr as well).
  google::InitGoogleLogging("cri_request_fuzz");
  FLAGS_logtostderr = false;
  FLAGS_minloglevel = google::GLOG_WARNING;
  FLAGS_stderrthreshold =
      getenv("BERTH_FUZZ_LOG") != nullptr ? google::GLOG_INFO : google::GLOG_FATAL;
  for (int sev = google::GLOG_INFO; sev < google::NUM_SEVERITIES; ++sev) {
    google::SetLogDestination(sev, "");  // no log files
  }
  process->sink = std::make_unique<EscapeSink>();
  google::AddLogSink(process->sink.get());
  google::protobuf::SetLogHandler(nullptr);  // requests that do not parse are not news
  process->watchdog = std::make_unique<Watchdog>();
  process->world = std::make_unique<World>(process->scratch);
  process->world->Start();
  // Registered last, so it runs before the destructors of what starting the world made (RocksDB's
  // statics among them): the world must go first.
  atexit(Cleanup);
}

void CheckEscapes(const char* method, const std::string& message) {
  if (absl::StrContains(message, Erofs())) {
    Fail(absl::StrCat(method, " wrote outside the scratch root: ", message));
  }
  std::string logged = process->sink->Take();
  if (!logged.empty()) {
    Fail(absl::StrCat("berth wrote outside the scratch root (during or after ", method,
                      "): ", logged));
  }
}

void CheckStatus(const char* method, const grpc::Status& st, bool faults) {
  const int code = st.error_code();
  if (code < grpc::StatusCode::OK || code > grpc::StatusCode::UNAUTHENTICATED) {
    Fail(absl::StrCat(method, " answered code ", code));
  }
  CheckEscapes(method, st.error_message());
  if (code == grpc::StatusCode::UNKNOWN || code == grpc::StatusCode::DATA_LOSS ||
      (code == grpc::StatusCode::INTERNAL && !faults)) {
    Fail(absl::StrCat(method, " answered ", code, ": ", st.error_message()));
  }
}

// Parses the request, rewrites it, calls the handler and checks what it answered; bytes that are
// no such request are skipped.
template <typename Req, typename Resp, typename Svc>
void Call(const char* method, Svc* svc,
          grpc::Status (Svc::*handler)(grpc::ServerContext*, const Req*, Resp*),
          const uint8_t* data, size_t size, uint8_t faults) {
  Req req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return;
  World& w = *process->world;
  w.Rewrite(&req);
  w.InjectFaults(faults);
  Resp resp;
  grpc::Status st;
  {
    grpc::ServerContext ctx;
    process->watchdog->Arm(method);
    st = (svc->*handler)(&ctx, &req, &resp);
    process->watchdog->Disarm();
  }
  if (process->verbose) {
    fprintf(stderr, "%s%s: %d %s\n", method, faults != kNoFault ? " (faults)" : "", st.error_code(),
            st.error_message().substr(0, 300).c_str());
  }
  CheckStatus(method, st, faults != kNoFault);
  if (st.ok()) {
    // What kubelet receives must parse on its side: proto3 strings must be UTF-8.
    Resp again;
    if (!again.ParseFromString(resp.SerializeAsString())) {
      Fail(absl::StrCat(method, " answered a message that does not parse: ",
                        resp.ShortDebugString().substr(0, 2000)));
    }
  }
  // What a creation answers names what it made.
  if constexpr (std::is_same_v<Resp, cri::RunPodSandboxResponse>) {
    if (st.ok() && !w.HasPod(resp.pod_sandbox_id())) {
      Fail(absl::StrCat(method, " answered pod ", resp.pod_sandbox_id(), ", which is not there"));
    }
  }
  if constexpr (std::is_same_v<Resp, cri::CreateContainerResponse>) {
    if (st.ok() && !w.HasContainer(resp.container_id())) {
      Fail(absl::StrCat(method, " answered container ", resp.container_id(),
                        ", which is not there"));
    }
  }
  w.CheckRecords();
}

template <typename H>
struct HandlerOf;
template <typename Svc, typename Req, typename Resp>
struct HandlerOf<grpc::Status (Svc::*)(grpc::ServerContext*, const Req*, Resp*)> {
  using Service = Svc;
  using Request = Req;
};

struct Method {
  CriFuzzMethod id;
  const char* name;
  const Message* request;  // the request type's default instance, for the mutator
  void (*call)(const char* name, const uint8_t* data, size_t size, uint8_t faults);
};

// The table entry of one handler.
template <auto H>
Method M(CriFuzzMethod id, const char* name) {
  using T = HandlerOf<decltype(H)>;
  return {id, name, &T::Request::default_instance(),
          [](const char* name, const uint8_t* data, size_t size, uint8_t faults) {
            World& w = *process->world;
            if constexpr (std::is_same_v<typename T::Service, RuntimeServiceImpl>) {
              Call(name, w.runtime(), H, data, size, faults);
            } else {
              Call(name, w.images(), H, data, size, faults);
            }
          }};
}

using R = RuntimeServiceImpl;
using I = ImageServiceImpl;

// In CriFuzzMethod's order (checked at start).
const std::vector<Method>& Methods() {
  static const std::vector<Method>* methods = new std::vector<Method>{
      M<&R::Version>(kVersion, "Version"),
      M<&R::Status>(kStatus, "Status"),
      M<&R::UpdateRuntimeConfig>(kUpdateRuntimeConfig, "UpdateRuntimeConfig"),
      M<&R::RuntimeConfig>(kRuntimeConfig, "RuntimeConfig"),
      M<&R::RunPodSandbox>(kRunPodSandbox, "RunPodSandbox"),
      M<&R::StopPodSandbox>(kStopPodSandbox, "StopPodSandbox"),
      M<&R::RemovePodSandbox>(kRemovePodSandbox, "RemovePodSandbox"),
      M<&R::PodSandboxStatus>(kPodSandboxStatus, "PodSandboxStatus"),
      M<&R::ListPodSandbox>(kListPodSandbox, "ListPodSandbox"),
      M<&R::UpdatePodSandboxResources>(kUpdatePodSandboxResources, "UpdatePodSandboxResources"),
      M<&R::CreateContainer>(kCreateContainer, "CreateContainer"),
      M<&R::StartContainer>(kStartContainer, "StartContainer"),
      M<&R::StopContainer>(kStopContainer, "StopContainer"),
      M<&R::RemoveContainer>(kRemoveContainer, "RemoveContainer"),
      M<&R::ListContainers>(kListContainers, "ListContainers"),
      M<&R::ContainerStatus>(kContainerStatus, "ContainerStatus"),
      M<&R::UpdateContainerResources>(kUpdateContainerResources, "UpdateContainerResources"),
      M<&R::ReopenContainerLog>(kReopenContainerLog, "ReopenContainerLog"),
      M<&R::ExecSync>(kExecSync, "ExecSync"),
      M<&R::Exec>(kExec, "Exec"),
      M<&R::Attach>(kAttach, "Attach"),
      M<&R::PortForward>(kPortForward, "PortForward"),
      M<&R::ContainerStats>(kContainerStats, "ContainerStats"),
      M<&R::ListContainerStats>(kListContainerStats, "ListContainerStats"),
      M<&R::PodSandboxStats>(kPodSandboxStats, "PodSandboxStats"),
      M<&R::ListPodSandboxStats>(kListPodSandboxStats, "ListPodSandboxStats"),
      M<&R::ListMetricDescriptors>(kListMetricDescriptors, "ListMetricDescriptors"),
      M<&R::ListPodSandboxMetrics>(kListPodSandboxMetrics, "ListPodSandboxMetrics"),
      M<&R::CheckpointContainer>(kCheckpointContainer, "CheckpointContainer"),
      M<&I::ListImages>(kListImages, "ListImages"),
      M<&I::ImageStatus>(kImageStatus, "ImageStatus"),
      M<&I::RemoveImage>(kRemoveImage, "RemoveImage"),
      M<&I::ImageFsInfo>(kImageFsInfo, "ImageFsInfo"),
  };
  return *methods;
}

void CheckMethodTable() {
  const std::vector<Method>& methods = Methods();
  if (methods.size() != kMethodCount) Fail("the method table misses a CriFuzzMethod");
  for (size_t i = 0; i < methods.size(); ++i) {
    if (methods[i].id != i) Fail(absl::StrCat(methods[i].name, " is out of CriFuzzMethod's order"));
  }
}

// Descriptors and threads, measured once the first inputs have opened what stays open.
void CheckBounds() {
  if (process->inputs % 256 != 0) return;
  const int fds = CountEntries("/proc/self/fd");
  const int threads = CountEntries("/proc/self/task");
  if (process->fds < 0) {
    process->fds = fds;
    process->threads = threads;
    return;
  }
  if (fds > process->fds + kFdSlack) {
    Fail(absl::StrCat(fds, " descriptors open, ", process->fds, " after the first inputs"));
  }
  if (threads > process->threads + kThreadSlack) {
    Fail(absl::StrCat(threads, " threads, ", process->threads, " after the first inputs"));
  }
}

// libFuzzer flags this target runs best with, unless its command line sets them (libFuzzer reads
// argv after LLVMFuzzerInitialize). Every input runs much of the engine, and of the baseline's
// restoration, over a large instrumented binary; measured over 20 s from the seeds:
// - -entropic=0: the entropic schedule's per-feature frequency update took 60% of the time
//   (26 executions/s with it, 402 without);
// - -detect_leaks=0: nearly every input leaves more allocations than frees (the engine's state,
//   RocksDB's memtable, caches), so libFuzzer ran each one twice and scanned the heap with LSan
//   (402 executions/s with it, 1427 without). Leaks are still looked for at exit, after the world
//   is destroyed, and growth is bounded by -rss_limit_mb.
void AddFuzzerFlags(int* argc, char*** argv) {
  static std::vector<char*> args;
  args.assign(*argv, *argv + *argc);
  for (const char* flag : {"-entropic=0", "-detect_leaks=0"}) {
    const absl::string_view name(flag, strchr(flag, '=') - flag + 1);
    bool set = false;
    for (int i = 1; i < *argc; ++i) set = set || absl::StartsWith((*argv)[i], name);
    if (!set) args.push_back(const_cast<char*>(flag));
  }
  *argc = static_cast<int>(args.size());
  args.push_back(nullptr);
  *argv = args.data();
}

}  // namespace
}  // namespace berth::server::fuzz

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  namespace f = berth::server::fuzz;
  if (f::process == nullptr) f::Setup(argc ? *argc : 0, argv ? *argv : nullptr);
  if (argc != nullptr && argv != nullptr) f::AddFuzzerFlags(argc, argv);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace f = berth::server::fuzz;
  if (f::process == nullptr) f::Setup(0, nullptr);
  if (size == 0) return 0;
  const uint8_t method = data[0] & 0x3f;
  const uint8_t faults = data[0] >> 6;
  if (method < f::kMethodCount) {
    const f::Method& m = f::Methods()[method];
    m.call(m.name, data + 1, size - 1, faults);
  }
  f::process->watchdog->Arm("restoring the baseline");
  f::process->world->Restore();
  f::process->watchdog->Disarm();
  f::CheckEscapes("restoring the baseline", "");
  ++f::process->inputs;
  f::CheckBounds();
  return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  namespace f = berth::server::fuzz;
  std::minstd_rand rng(seed);
  if (size == 0 || rng() % 2 == 0) return LLVMFuzzerMutate(data, size, max_size);
  const uint8_t method = data[0] & 0x3f;
  if (method >= f::kMethodCount || rng() % 16 == 0) {
    data[0] = static_cast<uint8_t>((data[0] & 0xc0) | rng() % f::kMethodCount);
    return size;
  }
  if (rng() % 16 == 0) {
    data[0] = static_cast<uint8_t>(method | (rng() % 4) << 6);
    return size;
  }
  std::unique_ptr<google::protobuf::Message> req(f::Methods()[method].request->New());
  std::string out;
  if (!req->ParseFromArray(data + 1, static_cast<int>(size - 1)) ||
      !f::MutateRequest(req.get(), rng) || !req->SerializeToString(&out) ||
      out.size() + 1 > max_size) {
    return LLVMFuzzerMutate(data, size, max_size);
  }
  memcpy(data + 1, out.data(), out.size());
  return out.size() + 1;
}
