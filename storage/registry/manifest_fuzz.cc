// libFuzzer target: manifests, indexes and image configs (JSON from registries) parse without
// crashing or throwing, what they accept holds only valid digests and sizes, and an accepted
// document is shallow enough to copy and print.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "proto/berth/v1/records.pb.h"
#include "storage/images/image_config.h"
#include "storage/registry/bounded_json.h"
#include "storage/registry/digest.h"
#include "storage/registry/manifest.h"

namespace {

void Check(bool ok) {
  if (!ok) abort();
}

void CheckDescriptor(const berth::registry::Descriptor& d) {
  Check(berth::registry::IsValidDigest(d.digest));
  Check(d.size >= 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace berth::registry;
  absl::string_view in(reinterpret_cast<const char*>(data), size);

  for (const char* content_type :
       {"", kOciManifest, kOciIndex, kDockerManifest,
        "application/vnd.docker.distribution.manifest.list.v2+json; x"}) {
    (void)IsIndex(in, content_type);
  }
  if (auto m = ParseManifest(in, ""); m.ok()) {
    CheckDescriptor(m->config);
    for (const Descriptor& l : m->layers) CheckDescriptor(l);
  }
  if (auto idx = ParseIndex(in, kOciIndex); idx.ok()) {
    for (const Descriptor& d : idx->manifests) CheckDescriptor(d);
    if (auto d = SelectPlatform(*idx, "linux", "amd64"); d.ok()) CheckDescriptor(*d);
  }

  berth::v1::ImageConfig config;
  std::vector<std::string> diff_ids;
  if (berth::images::ParseImageConfig(in, "image config", &config, &diff_ids).ok()) {
    for (const std::string& d : diff_ids) Check(IsValidDigest(d));
    std::string bytes;
    Check(config.SerializeToString(&bytes));
  }

  if (auto j = ParseBoundedJson(in, "document"); j.ok()) {
    Check(JsonNestingDepth(in) <= kMaxJsonDepth);
    // What ImageStatus does with an image config: copy it into a reply and print it.
    nlohmann::json info = {{"imageSpec", *j}};
    (void)info.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return 0;
}
