// Manifest JSON parsing with nlohmann::json; every digest and size is checked before use.
#include "storage/registry/manifest.h"

#include <sys/utsname.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "storage/registry/bounded_json.h"
#include "storage/registry/digest.h"

namespace berth::registry {
namespace {

using nlohmann::json;

absl::StatusOr<json> ParseJson(absl::string_view body) {
  absl::StatusOr<json> j = ParseBoundedJson(body, "manifest");
  if (!j.ok()) return j.status();
  if (!j->is_object()) return absl::InvalidArgumentError("manifest is not a JSON object");
  return j;
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

absl::StatusOr<Descriptor> ParseDescriptor(const json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("descriptor is not an object");
  Descriptor d;
  d.media_type = Str(j, "mediaType");
  d.digest = Str(j, "digest");
  if (!IsValidDigest(d.digest)) {
    return absl::InvalidArgumentError(
        absl::StrCat("descriptor digest \"", d.digest, "\" is not a sha256 digest"));
  }
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer() || size->get<int64_t>() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("descriptor ", d.digest, " has no valid size"));
  }
  d.size = size->get<int64_t>();
  if (auto p = j.find("platform"); p != j.end() && p->is_object()) {
    d.os = Str(*p, "os");
    d.architecture = Str(*p, "architecture");
    d.variant = Str(*p, "variant");
  }
  return d;
}

std::string MediaType(const json& j, absl::string_view content_type) {
  std::string mt = Str(j, "mediaType");
  if (!mt.empty()) return mt;
  absl::string_view ct = content_type.substr(0, content_type.find(';'));
  return std::string(ct);
}

}  // namespace

bool IsIndex(absl::string_view body, absl::string_view content_type) {
  auto j = ParseJson(body);
  if (!j.ok()) return false;
  std::string mt = MediaType(*j, content_type);
  if (mt == kOciIndex || mt == kDockerManifestList) return true;
  if (mt == kOciManifest || mt == kDockerManifest) return false;
  return j->contains("manifests") && !j->contains("layers");
}

absl::StatusOr<Manifest> ParseManifest(absl::string_view body, absl::string_view content_type) {
  auto j = ParseJson(body);
  if (!j.ok()) return j.status();
  Manifest m;
  m.media_type = MediaType(*j, content_type);
  auto version = j->find("schemaVersion");
  if (version != j->end() && version->is_number_integer() && version->get<int>() == 1) {
    return absl::UnimplementedError("Docker image manifest schema 1 is not supported");
  }
  auto cfg = j->find("config");
  if (cfg == j->end()) return absl::InvalidArgumentError("manifest has no config");
  auto c = ParseDescriptor(*cfg);
  if (!c.ok()) return c.status();
  m.config = *c;
  auto layers = j->find("layers");
  if (layers == j->end() || !layers->is_array()) {
    return absl::InvalidArgumentError("manifest has no layers array");
  }
  for (const json& l : *layers) {
    auto d = ParseDescriptor(l);
    if (!d.ok()) return d.status();
    m.layers.push_back(*d);
  }
  return m;
}

absl::StatusOr<Index> ParseIndex(absl::string_view body, absl::string_view content_type) {
  auto j = ParseJson(body);
  if (!j.ok()) return j.status();
  Index idx;
  idx.media_type = MediaType(*j, content_type);
  auto ms = j->find("manifests");
  if (ms == j->end() || !ms->is_array())
    return absl::InvalidArgumentError("index has no manifests");
  for (const json& m : *ms) {
    auto d = ParseDescriptor(m);
    if (!d.ok()) return d.status();
    idx.manifests.push_back(*d);
  }
  return idx;
}

absl::StatusOr<Descriptor> SelectPlatform(const Index& index, absl::string_view os,
                                          absl::string_view architecture) {
  std::vector<std::string> offered;
  for (const Descriptor& d : index.manifests) {
    if (d.os == os && d.architecture == architecture) return d;
    offered.push_back(absl::StrCat(d.os, "/", d.architecture));
  }
  return absl::NotFoundError(
      absl::StrCat("no manifest for ", os, "/", architecture,
                   " in the index (it offers: ", absl::StrJoin(offered, ", "), ")"));
}

std::string HostArchitecture() {
  struct utsname u;
  if (uname(&u) != 0) return "amd64";
  std::string m = u.machine;
  if (m == "x86_64") return "amd64";
  if (m == "aarch64") return "arm64";
  if (absl::StartsWith(m, "arm")) return "arm";
  if (m == "i686" || m == "i386") return "386";
  return m;  // ppc64le, s390x, riscv64 keep their names
}

}  // namespace berth::registry
