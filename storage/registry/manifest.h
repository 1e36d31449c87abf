// Image manifests and indexes (Docker schema 2 and OCI), and platform selection from an index.
#ifndef BERTH_STORAGE_REGISTRY_MANIFEST_H_
#define BERTH_STORAGE_REGISTRY_MANIFEST_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::registry {

inline constexpr char kDockerManifest[] = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr char kDockerManifestList[] =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr char kOciManifest[] = "application/vnd.oci.image.manifest.v1+json";
inline constexpr char kOciIndex[] = "application/vnd.oci.image.index.v1+json";

struct Descriptor {
  std::string media_type;
  std::string digest;
  int64_t size = 0;
  std::string os, architecture, variant;  // index entries only
};

struct Manifest {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;  // bottom first
};

struct Index {
  std::string media_type;
  std::vector<Descriptor> manifests;
};

// True when the document is an index/manifest list (judged by its mediaType, else the HTTP
// Content-Type, else the presence of "manifests").
bool IsIndex(absl::string_view body, absl::string_view content_type);
// InvalidArgument on malformed JSON, bad digests or negative sizes; Unimplemented for schema 1.
absl::StatusOr<Manifest> ParseManifest(absl::string_view body, absl::string_view content_type);
absl::StatusOr<Index> ParseIndex(absl::string_view body, absl::string_view content_type);
// The entry for os/architecture; NotFound listing the platforms on offer otherwise.
absl::StatusOr<Descriptor> SelectPlatform(const Index& index, absl::string_view os,
                                          absl::string_view architecture);
// The GOARCH name of the machine berth runs on ("amd64", "arm64", ...).
std::string HostArchitecture();

}  // namespace berth::registry

#endif  // BERTH_STORAGE_REGISTRY_MANIFEST_H_
