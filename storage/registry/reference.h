// Image references ("busybox", "host:5000/ns/app:v1", "app@sha256:...") parsed and normalised the
// way Docker does: short names live on docker.io, single-component docker.io names under library/.
#ifndef BERTH_STORAGE_REGISTRY_REFERENCE_H_
#define BERTH_STORAGE_REGISTRY_REFERENCE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::registry {

inline constexpr char kDockerHubDomain[] = "docker.io";

struct Reference {
  std::string domain;      // "docker.io", "127.0.0.1:5000"
  std::string repository;  // "library/busybox"
  std::string tag;         // "latest" when neither tag nor digest was given
  std::string digest;      // "sha256:...", empty unless pinned

  // "docker.io/library/busybox"
  std::string Name() const { return domain + "/" + repository; }
  // "docker.io/library/busybox:1"; empty when the reference has no tag.
  std::string TagRef() const { return tag.empty() ? std::string() : Name() + ":" + tag; }
  // "docker.io/library/busybox@sha256:..." for a given manifest digest.
  std::string DigestRef(absl::string_view manifest_digest) const {
    return Name() + "@" + std::string(manifest_digest);
  }
  // The normalised full reference: Name[:tag][@digest].
  std::string String() const;
};

// InvalidArgument naming the reference when it is malformed. Both a tag and a digest may be
// given ("app:v1@sha256:..."); the digest then decides what is pulled.
absl::StatusOr<Reference> ParseReference(absl::string_view ref);

}  // namespace berth::registry

#endif  // BERTH_STORAGE_REGISTRY_REFERENCE_H_
