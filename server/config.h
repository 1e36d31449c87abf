// berthd's configuration: embedded defaults, the TOML file, then command-line flags, in that order.
#ifndef BERTH_SERVER_CONFIG_H_
#define BERTH_SERVER_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "storage/images/pull_limits.h"
#include "runtime/cgroups/paths.h"

namespace berth {

struct RegistryHostConfig {
  std::vector<std::string> mirrors;  // tried in order, then the registry itself
  bool insecure = false;             // plain HTTP or unverified TLS allowed
};

struct Config {
  // Where the CRI socket listens: unix:///path.
  std::string listen = "unix:///run/berth/berth.sock";
  // Persistent state: the StateDB, images, container storage.
  std::string root = "/var/lib/berth";
  // Volatile state (tmpfs): exit files, bundles, netns, attach sockets.
  std::string state_dir = "/run/berth";
  std::string log_level = "info";

  struct Runtime {
    std::string runtime_path = "runc";
    std::string conmon_path = "conmon";
    // CRIU for CheckpointContainer and restores (runc --criu); a name looked up on PATH, or a path.
    std::string criu_path = "criu";
    // berth's own static pause binary; empty means "berth-pause" next to berthd, then on PATH.
    std::string pause_binary;
    cgroups::CgroupDriver cgroup_driver = cgroups::CgroupDriver::kCgroupfs;
    std::string default_cgroup_parent = "/berth";
    int64_t exec_sync_max_output_bytes = 16 << 20;
    int64_t log_size_max_bytes = -1;  // conmon's --log-size-max; -1 leaves logs to kubelet
    bool sync_writes = true;          // fsync every StateDB write
    // Container states are read from runc 1.1's state.json in-process (no `runc state` process
    // per container at restart); false runs `runc state` for every one.
    bool read_state_in_process = true;
    // Containers whose request names no seccomp profile at all get RuntimeDefault; false follows
    // CRI's older text (empty = unconfined), as critest's seccomp spec expects.
    bool seccomp_default_when_empty = true;
    std::vector<std::string> hooks_dirs = {"/usr/share/containers/oci/hooks.d",
                                           "/etc/containers/oci/hooks.d"};
    // CDI spec directories (Container Device Interface), later ones win.
    std::vector<std::string> cdi_spec_dirs = {"/etc/cdi", "/var/run/cdi"};
    // RuntimeClass handlers beside the default "runc" ([runtime.handlers.<name>]): the OCI
    // runtime binary (a name on PATH or a path) that runs the containers of pods whose
    // RunPodSandbox names the handler. Names are DNS labels, "runc" is the default's.
    struct Handler {
      std::string runtime_path;
    };
    std::map<std::string, Handler> handlers;
  } runtime;

  struct Images {
    int max_parallel_downloads = 3;
    int stall_timeout_seconds = 60;  // cancel a download making no progress for this long
    // Per-pull budgets (see deploy/berth.toml): the registry client's manifest cap, and what the
    // image store enforces (keys images.max_layers, ... as in PullLimits).
    int64_t max_manifest_bytes = 4 << 20;
    images::PullLimits pull;
    // Where the containers' writable layers live; empty: <root>/images/containers. Elsewhere
    // (another disk) it is a separate container filesystem in ImageFsInfo (KEP-4191).
    std::string containers_dir;
    std::map<std::string, RegistryHostConfig> registries;
  } images;

  struct Network {
    std::string cni_conf_dir = "/etc/cni/net.d";
    std::vector<std::string> cni_bin_dirs = {"/opt/cni/bin", "/usr/lib/cni"};
    int plugin_timeout_seconds = 60;
  } network;

  struct Streaming {
    std::string address = "127.0.0.1";
    int port = 0;  // 0: an ephemeral port
  } streaming;

  struct Metrics {
    std::string address;  // host:port for /metrics; empty disables it
    // While kubelet asks for stats lists (or ImageFsInfo), every cgroup is read (the image and
    // container directories walked) in the background this often and the calls answer from those
    // readings; 0 reads in every call.
    int stats_sample_seconds = 10;
  } metrics;
};

// Parses TOML text into a Config starting from the defaults. Unknown keys and values of the wrong
// type are InvalidArgument errors naming the key, never silently ignored.
absl::StatusOr<Config> ParseConfig(const std::string& toml_text, const std::string& origin);
// Reads a file; a missing file at the default path is not an error (the defaults apply).
absl::StatusOr<Config> LoadConfigFile(const std::string& path, bool must_exist);
// The effective configuration as TOML, loadable again by ParseConfig.
std::string ConfigToToml(const Config& config);
// The effective configuration as JSON, for verbose Status.
nlohmann::json ConfigToJson(const Config& config);
// Checks cross-field rules (absolute paths, known enum values, ranges).
absl::Status ValidateConfig(const Config& config);

}  // namespace berth

#endif  // BERTH_SERVER_CONFIG_H_
