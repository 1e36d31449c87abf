// The engine fakes and ScratchEngine.
#include "runtime/testing/engine_fakes.h"

#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "util/fs.h"

namespace berth::engine::fakes {

absl::Status FakeHost::MountTmpfs(const std::string& target, const std::string& options) {
  absl::MutexLock l(&mu_);
  mounted_.insert(target);
  return absl::OkStatus();
}

absl::Status FakeHost::Unmount(const std::string& target) {
  absl::MutexLock l(&mu_);
  mounted_.erase(target);
  return absl::OkStatus();
}

size_t FakeHost::mounted() const {
  absl::MutexLock l(&mu_);
  return mounted_.size();
}

absl::StatusOr<berth::v1::Image> FakeImages::ResolveImage(const std::string& ref) {
  // By name, or by full id as a restore names the image its checkpoint ran on.
  if (ref != kImageName && ref != kImageId) return absl::NotFoundError(absl::StrCat("image ", ref));
  berth::v1::Image image;
  image.set_id(kImageId);
  image.mutable_config()->add_cmd("/bin/sh");
  image.mutable_config()->add_env("PATH=/bin");
  return image;
}

absl::Status FakeImages::MountRootfs(const std::string& container_id, const std::string& image_id,
                                     const std::string& target, const RootfsIdmap* idmap) {
  {
    absl::MutexLock l(&mu_);
    ++mounted_;
  }
  return MakeDirs(target, 0755);
}

absl::Status FakeImages::MountImageVolume(const std::string& container_id, int index,
                                          const std::string& image_id, const std::string& target) {
  if (image_id != kImageId) return absl::NotFoundError(absl::StrCat("image ", image_id));
  if (absl::Status st = MakeDirs(target + "/data", 0755); !st.ok()) return st;
  if (absl::Status st = MakeDirs(target + "/etc", 0755); !st.ok()) return st;
  if (absl::Status st = WriteFileAtomic(target + "/data/model", "weights"); !st.ok()) return st;
  for (const auto& [name, to] : {std::pair<const char*, const char*>{"up", "../../../.."},
                                 std::pair<const char*, const char*>{"root", "/etc"}}) {
    const std::string link = absl::StrCat(target, "/", name);
    unlink(link.c_str());
    if (symlink(to, link.c_str()) != 0) return absl::InternalError("symlink " + link);
  }
  absl::MutexLock l(&mu_);
  ++volumes_[container_id];
  return absl::OkStatus();
}

absl::Status FakeImages::UnmountRootfs(const std::string& container_id) {
  absl::MutexLock l(&mu_);
  if (unmounted_.insert(container_id).second) --mounted_;
  volumes_.erase(container_id);
  return absl::OkStatus();
}

int FakeImages::volumes() const {
  absl::MutexLock l(&mu_);
  int n = 0;
  for (const auto& [id, count] : volumes_) n += count;
  return n;
}

absl::Status FakeImages::RemoveContainerStorage(const std::string& container_id) {
  if (layers_dir_.empty()) return absl::OkStatus();
  return RemoveAll(absl::StrCat(layers_dir_, "/", container_id));
}

absl::StatusOr<std::string> FakeImages::WritableLayerDir(const std::string& container_id) {
  if (layers_dir_.empty()) return ImageProvider::WritableLayerDir(container_id);
  const std::string dir = absl::StrCat(layers_dir_, "/", container_id);
  if (absl::Status st = MakeDirs(dir, 0755); !st.ok()) return st;
  return dir;
}

int FakeImages::mounted() const {
  absl::MutexLock l(&mu_);
  return mounted_;
}

absl::StatusOr<std::string> FakeNetwork::CreateNetns(const std::string& sandbox_id) {
  const std::string path = NetnsPath(sandbox_id);
  if (absl::Status st = WriteFileAtomic(path, ""); !st.ok()) return st;
  return path;
}

absl::Status FakeNetwork::RemoveNetns(const std::string& path) {
  unlink(path.c_str());
  return absl::OkStatus();
}

absl::StatusOr<PodNetworkStatus> FakeNetwork::SetUp(const PodNetworkSpec& spec) {
  absl::MutexLock l(&mu_);
  if (!fail_setup_.ok()) return std::exchange(fail_setup_, absl::OkStatus());
  reserved_.insert(spec.sandbox_id);
  return PodNetworkStatus{.ips = {"10.9.0.2"}, .result = "{\"cached\":true}", .config = "fake"};
}

absl::Status FakeNetwork::TearDown(const PodNetworkSpec& spec) {
  absl::MutexLock l(&mu_);
  if (!fail_teardown_.ok()) return std::exchange(fail_teardown_, absl::OkStatus());
  reserved_.erase(spec.sandbox_id);
  ++teardowns_;
  return absl::OkStatus();
}

void FakeNetwork::FailNext(absl::Status error) {
  absl::MutexLock l(&mu_);
  fail_setup_ = error;
  fail_teardown_ = std::move(error);
}

void FakeNetwork::ClearFailures() {
  absl::MutexLock l(&mu_);
  fail_setup_ = absl::OkStatus();
  fail_teardown_ = absl::OkStatus();
}

size_t FakeNetwork::reserved() const {
  absl::MutexLock l(&mu_);
  return reserved_.size();
}

int FakeNetwork::teardowns() const {
  absl::MutexLock l(&mu_);
  return teardowns_;
}

ScratchEngine::ScratchEngine(std::string dir, Options options)
    : dir_(std::move(dir)),
      options_(std::move(options)),
      images_(dir_ + "/layers"),
      network_(dir_ + "/netns") {}

EngineOptions ScratchEngine::engine_options() const {
  EngineOptions eo;
  eo.root = dir_ + "/root";
  eo.state_dir = dir_ + "/run";
  eo.pause_binary = dir_ + "/pause";
  eo.default_cgroup_parent = options_.cgroup_parent;
  // Nothing from the host's configuration: no CDI specs unless a test names its own dirs.
  eo.cdi_spec_dirs = {};
  for (const std::string& name : options_.handlers) eo.runtime_handlers[name] = "/fake/" + name;
  if (options_.adjust) options_.adjust(&eo);
  return eo;
}

absl::Status ScratchEngine::Init() {
  if (absl::Status st = WriteFileAtomic(dir_ + "/pause", "#!pause\n", 0755); !st.ok()) return st;
  for (const char* d : {"/netns", "/layers"}) {
    if (absl::Status st = MakeDirs(dir_ + d); !st.ok()) return st;
  }
  absl::StatusOr<std::unique_ptr<storage::StateDB>> db = storage::StateDB::Open(dir_ + "/state");
  if (!db.ok()) return db.status();
  db_ = std::move(*db);
  const EngineOptions eo = engine_options();
  oci::OciRuntimeOptions oo{.runc_root = eo.state_dir + "/runc",
                            .exits_dir = eo.state_dir + "/exits",
                            .attach_dir = eo.state_dir + "/attach",
                            .exec_dir = eo.state_dir + "/exec"};
  runtime_ = std::make_shared<oci::FakeRuntime>(oo);
  for (const std::string& name : options_.handlers) {
    oci::OciRuntimeOptions ho = oo;
    ho.runc_root = eo.state_dir + "/runtimes/" + name;
    handler_runtimes_[name] = std::make_shared<oci::FakeRuntime>(ho);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Engine>> ScratchEngine::Start() {
  if (db_ == nullptr) return absl::FailedPreconditionError("ScratchEngine::Init was not called");
  // A reboot may have emptied the state dir; conmon's exits directory is there before berthd.
  if (absl::Status st = MakeDirs(runtime_->options().exits_dir, 0700); !st.ok()) return st;
  EngineParts parts;
  parts.oci = runtime_;  // runc's state outlives berthd: the same fake across restarts
  for (const auto& [name, rt] : handler_runtimes_) parts.handlers[name] = rt;
  auto host = std::make_unique<FakeHost>();
  FakeHost* host_ptr = host.get();
  parts.host = std::move(host);
  absl::StatusOr<std::unique_ptr<Engine>> e =
      Engine::Create(engine_options(), db_.get(), &images_, options_.network ? &network_ : nullptr,
                     std::move(parts));
  if (!e.ok()) return e.status();
  host_ = host_ptr;
  return e;
}

}  // namespace berth::engine::fakes
