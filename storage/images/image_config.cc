// Reading the OCI image config with a nesting limit, field by field, without exceptions.
#include "storage/images/image_config.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "storage/registry/bounded_json.h"
#include "storage/registry/digest.h"

namespace berth::images {
namespace {

std::vector<std::string> JsonStrings(const nlohmann::json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::vector<std::string> JsonKeys(const nlohmann::json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_object()) return out;
  for (auto& [k, v] : it->items()) out.push_back(k);
  return out;
}

std::string Str(const nlohmann::json& o, const char* k) {
  auto it = o.find(k);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

absl::Status ParseImageConfig(absl::string_view body, absl::string_view what,
                              v1::ImageConfig* config, std::vector<std::string>* diff_ids) {
  absl::StatusOr<nlohmann::json> parsed = registry::ParseBoundedJson(body, what);
  if (!parsed.ok()) return parsed.status();
  const nlohmann::json& j = *parsed;
  if (!j.is_object())
    return absl::InvalidArgumentError(absl::StrCat(what, " is not a JSON object"));
  config->set_architecture(Str(j, "architecture"));
  config->set_os(Str(j, "os"));
  if (auto c = j.find("config"); c != j.end() && c->is_object()) {
    config->set_user(Str(*c, "User"));
    config->set_working_dir(Str(*c, "WorkingDir"));
    config->set_stop_signal(Str(*c, "StopSignal"));
    for (auto& s : JsonStrings(*c, "Env")) config->add_env(s);
    for (auto& s : JsonStrings(*c, "Entrypoint")) config->add_entrypoint(s);
    for (auto& s : JsonStrings(*c, "Cmd")) config->add_cmd(s);
    for (auto& s : JsonKeys(*c, "ExposedPorts")) config->add_exposed_ports(s);
    for (auto& s : JsonKeys(*c, "Volumes")) config->add_volumes(s);
    if (auto l = c->find("Labels"); l != c->end() && l->is_object()) {
      for (auto& [k, v] : l->items()) {
        if (v.is_string()) (*config->mutable_labels())[k] = v.get<std::string>();
      }
    }
  }
  auto rootfs = j.find("rootfs");
  if (rootfs == j.end() || !rootfs->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " has no rootfs"));
  }
  for (auto& d : JsonStrings(*rootfs, "diff_ids")) {
    if (!registry::IsValidDigest(d)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": diff_id \"", absl::CHexEscape(absl::string_view(d).substr(0, 80)),
                       "\" is invalid"));
    }
    diff_ids->push_back(d);
  }
  return absl::OkStatus();
}

}  // namespace berth::images
