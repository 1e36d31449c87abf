// Fakes of what the engine drives below it, for the engine tests and fuzz targets that run without
// root: host mounts (FakeHost), the image store (FakeImages) and pod networking (FakeNetwork); and
// ScratchEngine, which builds an Engine over a scratch directory from them, oci::FakeRuntime and a
// real StateDB (RocksDB), restartable over the same state as berthd is.
#ifndef BERTH_RUNTIME_TESTING_ENGINE_FAKES_H_
#define BERTH_RUNTIME_TESTING_ENGINE_FAKES_H_

#include <functional>
#include <memory>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "runtime/engine.h"
#include "runtime/host_ops.h"
#include "runtime/oci/fake_runtime.h"
#include "runtime/providers.h"
#include "storage/state_db.h"

namespace berth::engine::fakes {

// Mounts recorded, not made.
class FakeHost final : public HostOps {
 public:
  absl::Status MountTmpfs(const std::string& target, const std::string& options) override;
  absl::Status Unmount(const std::string& target) override;
  size_t mounted() const;

 private:
  mutable absl::Mutex mu_;
  std::set<std::string> mounted_ ABSL_GUARDED_BY(mu_);
};

// One image, "busybox" (kImageId, by which it is found too); a rootfs is a directory. With a
// layers_dir, a container's writable layer is layers_dir/<id> (checkpoints archive it, restores
// fill it); without one the provider has no writable layers.
class FakeImages final : public ImageProvider {
 public:
  static constexpr char kImageName[] = "busybox";
  static constexpr char kImageId[] =
      "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

  explicit FakeImages(std::string layers_dir = "") : layers_dir_(std::move(layers_dir)) {}

  absl::StatusOr<berth::v1::Image> ResolveImage(const std::string& ref) override;
  using ImageProvider::MountRootfs;
  absl::Status MountRootfs(const std::string& container_id, const std::string& image_id,
                           const std::string& target, const RootfsIdmap* idmap) override;
  // A directory standing in for the image's files: data/model ("weights"), etc/, and the links
  // up -> ../../../.. and root -> /etc, which must not lead out of it.
  absl::Status MountImageVolume(const std::string& container_id, int index,
                                const std::string& image_id, const std::string& target) override;
  absl::Status UnmountRootfs(const std::string& container_id) override;
  absl::Status RemoveContainerStorage(const std::string& container_id) override;
  absl::StatusOr<std::string> WritableLayerDir(const std::string& container_id) override;
  // Rootfs mounts made and not yet undone.
  int mounted() const;
  // Image volumes mounted and not yet undone.
  int volumes() const;

 private:
  const std::string layers_dir_;
  mutable absl::Mutex mu_;
  int mounted_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> unmounted_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> volumes_ ABSL_GUARDED_BY(mu_);  // by container
};

// Hands out one IP per pod and remembers which pods hold one, as host-local IPAM does on disk. A
// network namespace is a file in `dir`.
class FakeNetwork final : public NetworkProvider {
 public:
  explicit FakeNetwork(std::string dir) : dir_(std::move(dir)) {}
  std::string NetnsPath(const std::string& sandbox_id) const override {
    return dir_ + "/" + sandbox_id;
  }
  absl::StatusOr<std::string> CreateNetns(const std::string& sandbox_id) override;
  absl::Status RemoveNetns(const std::string& path) override;
  absl::StatusOr<PodNetworkStatus> SetUp(const PodNetworkSpec& spec) override;
  absl::Status TearDown(const PodNetworkSpec& spec) override;
  absl::Status Ready() override { return absl::OkStatus(); }

  // The next SetUp and the next TearDown each fail with `error` (a broken CNI plugin); until
  // ClearFailures.
  void FailNext(absl::Status error);
  void ClearFailures();
  size_t reserved() const;
  int teardowns() const;

 private:
  const std::string dir_;
  mutable absl::Mutex mu_;
  std::set<std::string> reserved_ ABSL_GUARDED_BY(mu_);
  int teardowns_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status fail_setup_ ABSL_GUARDED_BY(mu_);
  absl::Status fail_teardown_ ABSL_GUARDED_BY(mu_);
};

// An engine over the fakes in a scratch directory `dir`: dir/pause (a stand-in pause binary),
// dir/root, dir/run (the state dir), dir/state (the StateDB), dir/netns, dir/layers. What a
// berthd restart keeps lives here, so Start() may be called again once the last engine is gone:
// the StateDB, runc's state (one FakeRuntime for the scratch dir's life) and the network.
class ScratchEngine {
 public:
  struct Options {
    std::string cgroup_parent = "/berth-engine-test";
    bool network = false;  // pods get FakeNetwork; otherwise the engine has no pod networking
    // Changes to the engine's options before each start (hooks or CDI dirs, a criu_path, ...).
    std::function<void(EngineOptions*)> adjust;
    // RuntimeClass handlers configured beside the default, each run by a FakeRuntime of its own.
    std::vector<std::string> handlers;
  };
  explicit ScratchEngine(std::string dir) : ScratchEngine(std::move(dir), Options{}) {}
  ScratchEngine(std::string dir, Options options);

  // Makes the layout and opens the StateDB; once, before the first Start.
  absl::Status Init();
  // A new engine over the same StateDB and runtime state: berthd (re)started. The caller owns it
  // and must destroy it before the next Start and before this object.
  absl::StatusOr<std::unique_ptr<Engine>> Start();

  EngineOptions engine_options() const;
  const std::string& dir() const { return dir_; }
  storage::StateDB* db() { return db_.get(); }
  oci::FakeRuntime& runtime() { return *runtime_; }
  // The runtime of Options::handlers' `name`.
  oci::FakeRuntime& handler_runtime(const std::string& name) { return *handler_runtimes_.at(name); }
  FakeImages& images() { return images_; }
  FakeNetwork& network() { return network_; }
  // The host operations of the engine started last.
  FakeHost* host() { return host_; }

 private:
  const std::string dir_;
  const Options options_;
  std::unique_ptr<storage::StateDB> db_;
  std::shared_ptr<oci::FakeRuntime> runtime_;
  std::map<std::string, std::shared_ptr<oci::FakeRuntime>> handler_runtimes_;
  FakeImages images_;
  FakeNetwork network_;
  FakeHost* host_ = nullptr;
};

}  // namespace berth::engine::fakes

#endif  // BERTH_RUNTIME_TESTING_ENGINE_FAKES_H_
