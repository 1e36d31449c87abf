// RegistryClient: pulls manifests and blobs over the Docker Registry HTTP API v2 / OCI
// distribution, through configured mirrors first, with anonymous, bearer-token or basic auth.
#ifndef BERTH_STORAGE_REGISTRY_CLIENT_H_
#define BERTH_STORAGE_REGISTRY_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "storage/registry/config.h"
#include "storage/registry/manifest.h"
#include "storage/registry/reference.h"

namespace berth::registry {

struct ResolvedManifest {
  std::string digest;           // what the reference names (an index or a manifest): repo digest
  std::string manifest_digest;  // the single-platform manifest chosen
  std::string manifest_body;    // its bytes, verified against manifest_digest
  Manifest manifest;
};

class RegistryClient {
 public:
  explicit RegistryClient(RegistryConfig config);
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  // Fetches the manifest the reference names; from an index it picks linux/<host architecture>.
  // Blocks on the network. NotFound when no endpoint has it; PermissionDenied when refused.
  absl::StatusOr<ResolvedManifest> Resolve(const Reference& ref, const Credentials& creds);

  // Downloads a blob of ref's repository into `dest` (a temporary file beside it, renamed into
  // place only after every byte matched the descriptor's size and digest; DataLoss otherwise,
  // and nothing is left behind). Blocks on the network.
  absl::Status FetchBlob(const Reference& ref, const Descriptor& blob, const std::string& dest,
                         const Credentials& creds);

  const RegistryConfig& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::registry

#endif  // BERTH_STORAGE_REGISTRY_CLIENT_H_
