// Registry settings the daemon reads from berth.toml ([registries."<host>"] tables).
#ifndef BERTH_STORAGE_REGISTRY_CONFIG_H_
#define BERTH_STORAGE_REGISTRY_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace berth::registry {

struct RegistryHost {
  // Base URLs ("http://127.0.0.1:5000") tried in order before the registry itself. A mirror keeps
  // the repository path: docker.io/library/busybox:1 is asked of a mirror as library/busybox:1.
  std::vector<std::string> mirrors;
  // Plain HTTP, or HTTPS without certificate verification. Loopback registries are always insecure.
  bool insecure = false;
};

struct RegistryConfig {
  std::map<std::string, RegistryHost> hosts;  // key: registry host as in references ("docker.io")
  int max_parallel_downloads = 3;
  // A download that moves no byte for this long is cancelled; there is no total deadline.
  absl::Duration stall_timeout = absl::Seconds(60);
  absl::Duration connect_timeout = absl::Seconds(30);
  // A manifest or index bigger than this is refused before it is parsed.
  int64_t max_manifest_bytes = 4 << 20;
};

// Credentials for one pull, as CRI's AuthConfig carries them. Never logged.
struct Credentials {
  std::string username;
  std::string password;
  std::string identity_token;  // OAuth2 refresh token exchanged at the token endpoint
  std::string registry_token;  // bearer token sent as is
  // When set, only this registry host (or a mirror on that very host) gets the credentials; when
  // empty, only the image's own registry does: never a mirror, nor a plain-HTTP token realm on
  // another host.
  std::string server_address;
  bool empty() const {
    return username.empty() && password.empty() && identity_token.empty() && registry_token.empty();
  }
};

}  // namespace berth::registry

#endif  // BERTH_STORAGE_REGISTRY_CONFIG_H_
