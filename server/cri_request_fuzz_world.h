// The world cri_request_fuzz's requests land in: an engine over the shared fakes, a real image
// store, a stats collector and a streaming server, made once per process in a scratch root, and
// the baseline (a standing pod and container, a pulled image) every input returns to. Included
// only by server/cri_request_fuzz.cc.
#ifndef BERTH_SERVER_CRI_REQUEST_FUZZ_WORLD_H_
#define BERTH_SERVER_CRI_REQUEST_FUZZ_WORLD_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "glog/logging.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "proto/runtime/v1/api.grpc.pb.h"
#include "runtime/stats/collector.h"
#include "runtime/testing/engine_fakes.h"
#include "server/config.h"
#include "server/cri_request_fuzz_host.h"
#include "server/image_service.h"
#include "server/runtime_service.h"
#include "server/streaming/server.h"
#include "storage/images/image_store.h"
#include "util/fs.h"

namespace berth::server::fuzz {

namespace cri = runtime::v1;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

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
                                                   .sample_interval = absl::ZeroDuration(),
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

}  // namespace berth::server::fuzz

#endif  // BERTH_SERVER_CRI_REQUEST_FUZZ_WORLD_H_
