// CniManager: attaches pods to the node's CNI network (ADD/CHECK/DEL) and reports readiness.
#ifndef BERTH_NETWORK_CNI_MANAGER_H_
#define BERTH_NETWORK_CNI_MANAGER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "network/cni_config.h"
#include "network/cni_result.h"
#include "network/dns_config.h"

namespace berth::network {

struct CniOptions {
  std::string conf_dir = "/etc/cni/net.d";
  std::vector<std::string> bin_dirs = {"/opt/cni/bin", "/usr/lib/cni"};
  // Where each ADD's config and result are kept so DEL works the same after a restart.
  std::string cache_dir = "/var/lib/berth/cni-cache";
  // A plugin still running after this is killed and the call fails with DeadlineExceeded.
  absl::Duration plugin_timeout = absl::Seconds(60);
};

// A hostPort mapping, handed to plugins with the "portMappings" capability (portmap).
struct PortMapping {
  int host_port = 0;
  int container_port = 0;
  std::string protocol = "tcp";  // "tcp", "udp" or "sctp"
  std::string host_ip;           // empty: every host address
};

// Traffic shaping for plugins with the "bandwidth" capability; rates in bits per second.
struct BandwidthLimits {
  int64_t ingress_rate = 0;
  int64_t ingress_burst = 0;
  int64_t egress_rate = 0;
  int64_t egress_burst = 0;
};

struct PodNetworkRequest {
  std::string pod_id;  // CNI_CONTAINERID
  std::string name;
  std::string namespace_;
  std::string uid;
  std::string netns_path;  // may be gone on TearDown
  std::vector<PortMapping> port_mappings;
  std::optional<BandwidthLimits> bandwidth;
  std::optional<DnsConfig> dns;
  // TearDown of a pod whose SetUp a crashed berthd may have left running: plugins still at work
  // for this pod (a CNI_CONTAINERID of pod_id in their environment) are waited for, up to the
  // plugin timeout, so the DEL comes after their ADD and frees what it reserved.
  bool interrupted = false;
};

// The processes other than this one whose environment has CNI_CONTAINERID=<pod_id>: CNI plugins
// working for that pod (delegated IPAM plugins inherit the variable).
std::vector<int> PluginsWorkingFor(const std::string& pod_id);

struct PodNetworkResult {
  std::vector<std::string> ips;  // primary first, IPv4 before IPv6
  CniResult result;              // the parsed final result of the plugin chain
  std::string raw_result_json;
};

class CniManager {
 public:
  static absl::StatusOr<std::unique_ptr<CniManager>> Create(CniOptions options);
  ~CniManager();
  CniManager(const CniManager&) = delete;
  CniManager& operator=(const CniManager&) = delete;

  // Runs ADD through the plugin chain. On failure, DEL is run so nothing half-made stays behind.
  absl::StatusOr<PodNetworkResult> SetUp(const PodNetworkRequest& request);
  // Runs CHECK with the cached ADD result (no-op for cniVersion < 0.4.0 or disableCheck).
  absl::Status Check(const PodNetworkRequest& request);
  // Runs DEL (plugins in reverse) with the config and result cached at ADD, or the current
  // config when there is no cache. Idempotent; a missing netns is passed as an empty CNI_NETNS.
  // Call it before removing the netns: the bridge plugin (up to 1.1 at least) removes its ipMasq
  // rules only when it can still enter the namespace; without it, only IPAM and portmap clean up.
  absl::Status TearDown(const PodNetworkRequest& request);
  // OK while a valid config exists and all its plugins are installed; the reason otherwise.
  // Re-reads the config dir when it changed, so a config written after start is picked up.
  absl::Status Ready() const;
  // The network in use (empty when not ready).
  std::string NetworkName() const;

  struct PrivateKey {
   private:
    friend class CniManager;
    PrivateKey() = default;
  };
  CniManager(PrivateKey, CniOptions options);

 private:
  struct Loaded;
  std::shared_ptr<const Loaded> Current() const;
  absl::StatusOr<std::shared_ptr<const CniNetworkConfig>> ReadyConfig() const;

  const CniOptions options_;
  mutable absl::Mutex mu_;
  mutable std::shared_ptr<const Loaded> loaded_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::network

#endif  // BERTH_NETWORK_CNI_MANAGER_H_
