// Reading and writing berth.toml with toml11, strictly: every key is known or it is an error.
#include "server/config.h"

#include <algorithm>

#include <fstream>
#include <functional>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/match.h"
#include "toml.hpp"
#include "util/utf8.h"

namespace berth {
namespace {

using Table = toml::table;

constexpr size_t kMaxRuntimeHandlers = 16;

// RFC 1123 label, what a RuntimeClass handler must be.
bool IsDnsLabel(const std::string& s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
  });
}

// Walks a table, dispatching each key to a setter; unknown keys are errors.
class Reader {
 public:
  explicit Reader(std::string origin) : origin_(std::move(origin)) {}

  using Setter = std::function<absl::Status(const toml::value&, const std::string& key)>;

  absl::Status Walk(const toml::value& table, const std::string& prefix,
                    const std::map<std::string, Setter>& setters) {
    if (!table.is_table()) return Error(prefix, "must be a table");
    for (const auto& [k, v] : table.as_table()) {
      std::string key = prefix.empty() ? k : absl::StrCat(prefix, ".", k);
      auto it = setters.find(k);
      if (it == setters.end()) return Error(key, "unknown key");
      absl::Status st = it->second(v, key);
      if (!st.ok()) return st;
    }
    return absl::OkStatus();
  }

  absl::Status Error(const std::string& key, const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(origin_, ": ", key, ": ", what));
  }

  Setter String(std::string* out) {
    return [this, out](const toml::value& v, const std::string& key) {
      if (!v.is_string()) return Error(key, "must be a string");
      *out = v.as_string().str;
      return absl::OkStatus();
    };
  }
  template <typename Int>
  Setter Integer(Int* out) {
    return [this, out](const toml::value& v, const std::string& key) {
      if (!v.is_integer()) return Error(key, "must be an integer");
      *out = static_cast<Int>(v.as_integer());
      return absl::OkStatus();
    };
  }
  Setter Bool(bool* out) {
    return [this, out](const toml::value& v, const std::string& key) {
      if (!v.is_boolean()) return Error(key, "must be true or false");
      *out = v.as_boolean();
      return absl::OkStatus();
    };
  }
  // A key that is a table of its own, its keys dispatched to `setters`.
  Setter Table(std::map<std::string, Setter> setters) {
    return [this, setters = std::move(setters)](const toml::value& v, const std::string& key) {
      return Walk(v, key, setters);
    };
  }
  Setter Driver(cgroups::CgroupDriver* out) {
    return [this, out](const toml::value& v, const std::string& key) {
      if (!v.is_string()) return Error(key, "must be a string");
      absl::StatusOr<cgroups::CgroupDriver> d = cgroups::ParseCgroupDriver(v.as_string().str);
      if (!d.ok()) return Error(key, std::string(d.status().message()));
      *out = *d;
      return absl::OkStatus();
    };
  }
  Setter Strings(std::vector<std::string>* out) {
    return [this, out](const toml::value& v, const std::string& key) {
      if (!v.is_array()) return Error(key, "must be an array of strings");
      out->clear();
      for (const auto& e : v.as_array()) {
        if (!e.is_string()) return Error(key, "must be an array of strings");
        out->push_back(e.as_string().str);
      }
      return absl::OkStatus();
    };
  }

 private:
  std::string origin_;
};

}  // namespace

absl::StatusOr<Config> ParseConfig(const std::string& toml_text, const std::string& origin) {
  // TOML is UTF-8, and toml11 (3.7) reads past its buffer when it reports bad UTF-8 inside a
  // string (found by //server:config_fuzz): such text never reaches it.
  if (size_t bad = FirstInvalidUtf8(toml_text); bad != std::string::npos) {
    size_t line =
        1 + static_cast<size_t>(std::count(toml_text.begin(), toml_text.begin() + bad, '\n'));
    return absl::InvalidArgumentError(
        absl::StrCat("parsing ", origin, ": line ", line, " is not valid UTF-8 (byte ", bad, ")"));
  }
  Config c;
  toml::value root;
  try {
    std::istringstream in(toml_text);
    root = toml::parse(in, origin);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("parsing ", origin, ": ", e.what()));
  }
  Reader r(origin);
  auto& rt = c.runtime;
  auto& im = c.images;
  auto& net = c.network;
  absl::Status st =
      r
          .Walk(root, "",
                {
                    {"listen", r.String(&c.listen)},
                    {"root", r.String(&c.root)},
                    {"state_dir", r.String(&c.state_dir)},
                    {"log_level", r.String(&c.log_level)},
                    {"runtime",
                     r.Table({
                         {"runtime_path", r.String(&rt.runtime_path)},
                         {"conmon_path", r.String(&rt.conmon_path)},
                         {"criu_path", r.String(&rt.criu_path)},
                         {"pause_binary", r.String(&rt.pause_binary)},
                         {"cgroup_driver", r.Driver(&rt.cgroup_driver)},
                         {"default_cgroup_parent", r.String(&rt.default_cgroup_parent)},
                         {"exec_sync_max_output_bytes", r.Integer(&rt.exec_sync_max_output_bytes)},
                         {"log_size_max_bytes", r.Integer(&rt.log_size_max_bytes)},
                         {"sync_writes", r.Bool(&rt.sync_writes)},
                         {"read_state_in_process", r.Bool(&rt.read_state_in_process)},
                         {"seccomp_default_when_empty", r.Bool(&rt.seccomp_default_when_empty)},
                         {"hooks_dirs", r.Strings(&rt.hooks_dirs)},
                         {"cdi_spec_dirs", r.Strings(&rt.cdi_spec_dirs)},
                         {"handlers",
                          [&](const toml::value& v, const std::string& key) -> absl::Status {
                            if (!v.is_table()) return r.Error(key, "must be a table of handlers");
                            for (const auto& [name, hv] : v.as_table()) {
                              Config::Runtime::Handler& h = rt.handlers[name];
                              absl::Status s =
                                  r.Walk(hv, absl::StrCat(key, ".", name),
                                         {{"runtime_path", r.String(&h.runtime_path)}});
                              if (!s.ok()) return s;
                            }
                            return absl::OkStatus();
                          }},
                     })},
                    {"images", r.Table({
                                   {"max_parallel_downloads",
                                    r.Integer(&im.max_parallel_downloads)},
                                   {"stall_timeout_seconds", r.Integer(&im.stall_timeout_seconds)},
                                   {"max_layers", r.Integer(&im.pull.max_layers)},
                                   {"max_manifest_bytes", r.Integer(&im.max_manifest_bytes)},
                                   {"max_config_bytes", r.Integer(&im.pull.max_config_bytes)},
                                   {"max_layer_bytes", r.Integer(&im.pull.max_layer_bytes)},
                                   {"max_image_bytes", r.Integer(&im.pull.max_image_bytes)},
                                   {"max_layer_entries", r.Integer(&im.pull.max_layer_entries)},
                                   {"min_free_bytes", r.Integer(&im.pull.min_free_bytes)},
                                   {"containers_dir", r.String(&im.containers_dir)},
                               })},
                    {"registries",
                     [&](const toml::value& v, const std::string& key) -> absl::Status {
                       if (!v.is_table()) return r.Error(key, "must be a table of registries");
                       for (const auto& [host, hv] : v.as_table()) {
                         RegistryHostConfig& h = im.registries[host];
                         absl::Status s = r.Walk(hv, absl::StrCat(key, ".\"", host, "\""),
                                                 {
                                                     {"mirrors", r.Strings(&h.mirrors)},
                                                     {"insecure", r.Bool(&h.insecure)},
                                                 });
                         if (!s.ok()) return s;
                       }
                       return absl::OkStatus();
                     }},
                    {"network",
                     r.Table({
                         {"cni_conf_dir", r.String(&net.cni_conf_dir)},
                         {"cni_bin_dirs", r.Strings(&net.cni_bin_dirs)},
                         {"plugin_timeout_seconds", r.Integer(&net.plugin_timeout_seconds)},
                     })},
                    {"streaming", r.Table({
                                      {"address", r.String(&c.streaming.address)},
                                      {"port", r.Integer(&c.streaming.port)},
                                  })},
                    {"metrics",
                     r.Table({
                         {"address", r.String(&c.metrics.address)},
                         {"stats_sample_seconds", r.Integer(&c.metrics.stats_sample_seconds)},
                     })},
                });
  if (!st.ok()) return st;
  return c;
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path, bool must_exist) {
  std::ifstream in(path);
  if (!in) {
    if (!must_exist) return Config{};
    return absl::NotFoundError(absl::StrCat("config file ", path, " cannot be read"));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return ParseConfig(buf.str(), path);
}

absl::Status ValidateConfig(const Config& c) {
  auto bad = [](const std::string& key, const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("config ", key, ": ", why));
  };
  if (!absl::StartsWith(c.listen, "unix:///")) {
    return bad("listen", absl::StrCat("\"", c.listen, "\" is not a unix:///absolute/path address"));
  }
  for (const auto& [key, path] :
       std::map<std::string, std::string>{{"root", c.root},
                                          {"state_dir", c.state_dir},
                                          {"network.cni_conf_dir", c.network.cni_conf_dir}}) {
    if (path.empty() || path[0] != '/')
      return bad(key, absl::StrCat("\"", path, "\" is not absolute"));
  }
  if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warning" &&
      c.log_level != "error") {
    return bad("log_level",
               absl::StrCat("\"", c.log_level, "\" is not debug, info, warning or error"));
  }
  if (c.runtime.criu_path.empty()) return bad("runtime.criu_path", "must name the criu binary");
  if (c.runtime.exec_sync_max_output_bytes <= 0) {
    return bad("runtime.exec_sync_max_output_bytes", "must be positive");
  }
  if (c.images.max_parallel_downloads < 1 || c.images.max_parallel_downloads > 64) {
    return bad("images.max_parallel_downloads", "must be between 1 and 64");
  }
  if (c.images.stall_timeout_seconds < 1)
    return bad("images.stall_timeout_seconds", "must be positive");
  for (const auto& [key, v] : std::map<std::string, int64_t>{
           {"images.max_layers", c.images.pull.max_layers},
           {"images.max_manifest_bytes", c.images.max_manifest_bytes},
           {"images.max_config_bytes", c.images.pull.max_config_bytes},
           {"images.max_layer_bytes", c.images.pull.max_layer_bytes},
           {"images.max_image_bytes", c.images.pull.max_image_bytes},
           {"images.max_layer_entries", c.images.pull.max_layer_entries}}) {
    if (v < 1) return bad(key, "must be positive");
  }
  if (c.images.pull.min_free_bytes < 0) return bad("images.min_free_bytes", "must not be negative");
  if (!c.images.containers_dir.empty() && c.images.containers_dir[0] != '/') {
    return bad("images.containers_dir", "must be an absolute path");
  }
  if (c.runtime.handlers.size() > kMaxRuntimeHandlers) {
    return bad("runtime.handlers", absl::StrCat("at most ", kMaxRuntimeHandlers, " handlers"));
  }
  for (const auto& [name, h] : c.runtime.handlers) {
    const std::string key = absl::StrCat("runtime.handlers.", name);
    if (!IsDnsLabel(name)) {
      return bad(key,
                 "a handler's name must be a DNS label (lower-case letters, digits and '-', "
                 "at most 63), as RuntimeClass handlers are");
    }
    if (name == "runc")
      return bad(key, "\"runc\" is the default handler: set runtime.runtime_path");
    if (h.runtime_path.empty()) return bad(absl::StrCat(key, ".runtime_path"), "is required");
  }
  if (c.network.plugin_timeout_seconds < 1) {
    return bad("network.plugin_timeout_seconds", "must be positive");
  }
  if (c.streaming.port < 0 || c.streaming.port > 65535)
    return bad("streaming.port", "out of range");
  if (c.metrics.stats_sample_seconds < 0 || c.metrics.stats_sample_seconds > 3600) {
    return bad("metrics.stats_sample_seconds", "must be between 0 and 3600");
  }
  for (const auto& [host, h] : c.images.registries) {
    for (const auto& m : h.mirrors) {
      if (!absl::StartsWith(m, "http://") && !absl::StartsWith(m, "https://")) {
        return bad(absl::StrCat("registries.\"", host, "\".mirrors"),
                   absl::StrCat("\"", m, "\" must start with http:// or https://"));
      }
    }
  }
  return absl::OkStatus();
}

namespace {

// The effective configuration as one tree, the only list of its keys that is printed: `berthd
// config` renders it as TOML (ordered_json keeps berth.toml's order), Status(verbose) as JSON.
template <class Json>
Json ConfigTree(const Config& c) {
  Json registries = Json::object();
  Json handlers = Json::object();
  for (const auto& [name, h] : c.runtime.handlers)
    handlers[name] = {{"runtime_path", h.runtime_path}};
  for (const auto& [host, h] : c.images.registries) {
    registries[host] = {{"mirrors", h.mirrors}, {"insecure", h.insecure}};
  }
  return {
      {"listen", c.listen},
      {"root", c.root},
      {"state_dir", c.state_dir},
      {"log_level", c.log_level},
      {"runtime",
       {{"runtime_path", c.runtime.runtime_path},
        {"conmon_path", c.runtime.conmon_path},
        {"criu_path", c.runtime.criu_path},
        {"pause_binary", c.runtime.pause_binary},
        {"cgroup_driver", std::string(cgroups::CgroupDriverName(c.runtime.cgroup_driver))},
        {"default_cgroup_parent", c.runtime.default_cgroup_parent},
        {"exec_sync_max_output_bytes", c.runtime.exec_sync_max_output_bytes},
        {"log_size_max_bytes", c.runtime.log_size_max_bytes},
        {"sync_writes", c.runtime.sync_writes},
        {"read_state_in_process", c.runtime.read_state_in_process},
        {"seccomp_default_when_empty", c.runtime.seccomp_default_when_empty},
        {"hooks_dirs", c.runtime.hooks_dirs},
        {"cdi_spec_dirs", c.runtime.cdi_spec_dirs},
        {"handlers", handlers}}},
      {"images",
       {{"max_parallel_downloads", c.images.max_parallel_downloads},
        {"stall_timeout_seconds", c.images.stall_timeout_seconds},
        {"max_layers", c.images.pull.max_layers},
        {"max_manifest_bytes", c.images.max_manifest_bytes},
        {"max_config_bytes", c.images.pull.max_config_bytes},
        {"max_layer_bytes", c.images.pull.max_layer_bytes},
        {"max_image_bytes", c.images.pull.max_image_bytes},
        {"max_layer_entries", c.images.pull.max_layer_entries},
        {"min_free_bytes", c.images.pull.min_free_bytes},
        {"containers_dir", c.images.containers_dir}}},
      {"network",
       {{"cni_conf_dir", c.network.cni_conf_dir},
        {"cni_bin_dirs", c.network.cni_bin_dirs},
        {"plugin_timeout_seconds", c.network.plugin_timeout_seconds}}},
      {"streaming", {{"address", c.streaming.address}, {"port", c.streaming.port}}},
      {"metrics",
       {{"address", c.metrics.address}, {"stats_sample_seconds", c.metrics.stats_sample_seconds}}},
      {"registries", registries},
  };
}

// A TOML basic string: quotes, backslashes and the control characters TOML forbids raw are
// escaped (config strings are UTF-8: ParseConfig refuses anything else).
std::string TomlString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      absl::StrAppendFormat(&out, "\\u%04X", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string TomlKey(const std::string& key) {
  bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](unsigned char c) {
    return absl::ascii_isalnum(c) || c == '_' || c == '-';
  });
  return bare ? key : TomlString(key);
}

std::string TomlValue(const nlohmann::ordered_json& v) {
  if (v.is_string()) return TomlString(v.get<std::string>());
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_array()) {
    std::vector<std::string> items;
    for (const auto& item : v) items.push_back(TomlValue(item));
    return absl::StrCat("[", absl::StrJoin(items, ", "), "]");
  }
  return v.dump();  // a number
}

// A table's own keys under its [header] (none for the root, nor for a table of tables only),
// then its subtables, each as [path.key].
void AppendTomlTable(const nlohmann::ordered_json& table, const std::string& path,
                     std::string* out) {
  bool has_values = false;
  for (const auto& [key, value] : table.items()) has_values |= !value.is_object();
  if (has_values) {
    if (!path.empty()) absl::StrAppend(out, out->empty() ? "" : "\n", "[", path, "]\n");
    for (const auto& [key, value] : table.items()) {
      if (!value.is_object()) absl::StrAppend(out, TomlKey(key), " = ", TomlValue(value), "\n");
    }
  }
  for (const auto& [key, value] : table.items()) {
    if (value.is_object()) {
      AppendTomlTable(value, path.empty() ? TomlKey(key) : absl::StrCat(path, ".", TomlKey(key)),
                      out);
    }
  }
}

}  // namespace

std::string ConfigToToml(const Config& c) {
  std::string out;
  AppendTomlTable(ConfigTree<nlohmann::ordered_json>(c), "", &out);
  return out;
}

nlohmann::json ConfigToJson(const Config& c) { return ConfigTree<nlohmann::json>(c); }

}  // namespace berth
