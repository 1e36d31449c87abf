// Fuzz target: bytes as a CDI spec file (JSON when it opens with '{', YAML otherwise, and as
// YAML too since JSON is YAML), validated, then every device applied to a small OCI spec.
#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include "nlohmann/json.hpp"
#include "runtime/cdi/cdi.h"

namespace {

void Exercise(absl::string_view text, berth::cdi::SpecFormat format) {
  absl::StatusOr<berth::cdi::Spec> parsed = berth::cdi::ParseSpec(text, format, "fuzz");
  if (!parsed.ok()) return;
  auto spec = std::make_shared<const berth::cdi::Spec>(*std::move(parsed));
  std::vector<berth::cdi::ResolvedDevice> all;
  for (const berth::cdi::Device& d : spec->devices) {
    std::string name = spec->kind + "=" + d.name;
    // Every name a valid spec defines must parse back as a qualified name.
    if (!berth::cdi::ParseQualifiedName(name).ok()) __builtin_trap();
    all.push_back({name, spec, &d});
    nlohmann::json oci = {
        {"process", {{"env", {"PATH=/bin", "A=1"}}, {"user", {{"uid", 1}, {"gid", 2}}}}},
        {"mounts", {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}}}},
        {"linux", {{"resources", {{"devices", {{{"allow", false}, {"access", "rwm"}}}}}}}}};
    nlohmann::json before = oci;
    if (!berth::cdi::ApplyDevices({all.back()}, &oci).ok() && oci != before) __builtin_trap();
    (void)oci.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);  // must be UTF-8
  }
  nlohmann::json oci = nlohmann::json::object();
  (void)berth::cdi::ApplyDevices(all, &oci);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != absl::string_view::npos && text[first] == '{') {
    Exercise(text, berth::cdi::SpecFormat::kJson);
  }
  Exercise(text, berth::cdi::SpecFormat::kYaml);
  (void)berth::cdi::ParseQualifiedName(text.substr(0, 300));
  return 0;
}
