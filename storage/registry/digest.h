// Content digests ("sha256:<64 hex>") of blobs and manifests, computed as bytes stream in.
#ifndef BERTH_STORAGE_REGISTRY_DIGEST_H_
#define BERTH_STORAGE_REGISTRY_DIGEST_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::registry {

// Incremental SHA-256; Finish() returns "sha256:<hex>".
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(absl::string_view data);
  std::string Finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string DigestOf(absl::string_view data);
// Only sha256 digests are accepted: "sha256:" and 64 lowercase hex characters.
bool IsValidDigest(absl::string_view digest);
// The hex part of a valid digest.
absl::string_view DigestHex(absl::string_view digest);
// Digest of a file's bytes.
absl::StatusOr<std::string> DigestOfFile(const std::string& path);

}  // namespace berth::registry

#endif  // BERTH_STORAGE_REGISTRY_DIGEST_H_
