// Reading and writing berth.toml with toml11, strictly: every key is known or it is an error.
#include "server/config.h"

#include <algorithm>

#include <fstream>
#include <functional>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/match.h"
#include "toml.hpp"
#include "util/utf8.h"

namespace berth {
namespace {

using Table = toml::table;

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

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string QuoteList(const std::vector<std::string>& v) {
  std::vector<std::string> q;
  for (const auto& s : v) q.push_back(Quote(s));
  return absl::StrCat("[", absl::StrJoin(q, ", "), "]");
}

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
                     })},
                    {"images", r.Table({
                                   {"max_parallel_downloads",
                                    r.Integer(&im.max_parallel_downloads)},
                                   {"stall_timeout_seconds", r.Integer(&im.stall_timeout_seconds)},
                                   {"max_layers", r.Integer(&im.max_layers)},
                                   {"max_manifest_bytes", r.Integer(&im.max_manifest_bytes)},
                                   {"max_config_bytes", r.Integer(&im.max_config_bytes)},
                                   {"max_layer_bytes", r.Integer(&im.max_layer_bytes)},
                                   {"max_image_bytes", r.Integer(&im.max_image_bytes)},
                                   {"max_layer_entries", r.Integer(&im.max_layer_entries)},
                                   {"min_free_bytes", r.Integer(&im.min_free_bytes)},
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
                    {"metrics", r.Table({{"address", r.String(&c.metrics.address)}})},
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
  for (const auto& [key, v] :
       std::map<std::string, int64_t>{{"images.max_layers", c.images.max_layers},
                                      {"images.max_manifest_bytes", c.images.max_manifest_bytes},
                                      {"images.max_config_bytes", c.images.max_config_bytes},
                                      {"images.max_layer_bytes", c.images.max_layer_bytes},
                                      {"images.max_image_bytes", c.images.max_image_bytes},
                                      {"images.max_layer_entries", c.images.max_layer_entries}}) {
    if (v < 1) return bad(key, "must be positive");
  }
  if (c.images.min_free_bytes < 0) return bad("images.min_free_bytes", "must not be negative");
  if (!c.images.containers_dir.empty() && c.images.containers_dir[0] != '/') {
    return bad("images.containers_dir", "must be an absolute path");
  }
  if (c.network.plugin_timeout_seconds < 1) {
    return bad("network.plugin_timeout_seconds", "must be positive");
  }
  if (c.streaming.port < 0 || c.streaming.port > 65535)
    return bad("streaming.port", "out of range");
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

std::string ConfigToToml(const Config& c) {
  std::string out;
  absl::StrAppend(
      &out, "listen = ", Quote(c.listen), "\n", "root = ", Quote(c.root), "\n",
      "state_dir = ", Quote(c.state_dir), "\n", "log_level = ", Quote(c.log_level),
      "\n\n[runtime]\n", "runtime_path = ", Quote(c.runtime.runtime_path), "\n",
      "conmon_path = ", Quote(c.runtime.conmon_path), "\n",
      "criu_path = ", Quote(c.runtime.criu_path), "\n",
      "pause_binary = ", Quote(c.runtime.pause_binary), "\n",
      "cgroup_driver = ", Quote(std::string(cgroups::CgroupDriverName(c.runtime.cgroup_driver))),
      "\n", "default_cgroup_parent = ", Quote(c.runtime.default_cgroup_parent), "\n",
      "exec_sync_max_output_bytes = ", c.runtime.exec_sync_max_output_bytes, "\n",
      "log_size_max_bytes = ", c.runtime.log_size_max_bytes, "\n",
      "sync_writes = ", c.runtime.sync_writes ? "true" : "false", "\n",
      "read_state_in_process = ", c.runtime.read_state_in_process ? "true" : "false", "\n",
      "seccomp_default_when_empty = ", c.runtime.seccomp_default_when_empty ? "true" : "false",
      "\n", "hooks_dirs = ", QuoteList(c.runtime.hooks_dirs), "\n",
      "cdi_spec_dirs = ", QuoteList(c.runtime.cdi_spec_dirs), "\n");
  absl::StrAppend(&out, "\n[images]\n",
                  "max_parallel_downloads = ", c.images.max_parallel_downloads, "\n",
                  "stall_timeout_seconds = ", c.images.stall_timeout_seconds, "\n");
  absl::StrAppend(&out, "max_layers = ", c.images.max_layers, "\n",
                  "max_manifest_bytes = ", c.images.max_manifest_bytes, "\n",
                  "max_config_bytes = ", c.images.max_config_bytes, "\n",
                  "max_layer_bytes = ", c.images.max_layer_bytes, "\n",
                  "max_image_bytes = ", c.images.max_image_bytes, "\n",
                  "max_layer_entries = ", c.images.max_layer_entries, "\n",
                  "min_free_bytes = ", c.images.min_free_bytes, "\n",
                  "containers_dir = ", Quote(c.images.containers_dir), "\n");
  absl::StrAppend(&out, "\n[network]\n", "cni_conf_dir = ", Quote(c.network.cni_conf_dir), "\n",
                  "cni_bin_dirs = ", QuoteList(c.network.cni_bin_dirs), "\n",
                  "plugin_timeout_seconds = ", c.network.plugin_timeout_seconds, "\n");
  absl::StrAppend(&out, "\n[streaming]\n", "address = ", Quote(c.streaming.address), "\n",
                  "port = ", c.streaming.port, "\n");
  absl::StrAppend(&out, "\n[metrics]\n", "address = ", Quote(c.metrics.address), "\n");
  for (const auto& [host, h] : c.images.registries) {
    absl::StrAppend(&out, "\n[registries.", Quote(host), "]\n", "mirrors = ", QuoteList(h.mirrors),
                    "\n", "insecure = ", h.insecure ? "true" : "false", "\n");
  }
  return out;
}

nlohmann::json ConfigToJson(const Config& c) {
  nlohmann::json registries = nlohmann::json::object();
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
        {"cdi_spec_dirs", c.runtime.cdi_spec_dirs}}},
      {"images",
       {{"max_parallel_downloads", c.images.max_parallel_downloads},
        {"stall_timeout_seconds", c.images.stall_timeout_seconds},
        {"max_layers", c.images.max_layers},
        {"max_manifest_bytes", c.images.max_manifest_bytes},
        {"max_config_bytes", c.images.max_config_bytes},
        {"max_layer_bytes", c.images.max_layer_bytes},
        {"max_image_bytes", c.images.max_image_bytes},
        {"max_layer_entries", c.images.max_layer_entries},
        {"min_free_bytes", c.images.min_free_bytes},
        {"containers_dir", c.images.containers_dir}}},
      {"registries", registries},
      {"network",
       {{"cni_conf_dir", c.network.cni_conf_dir},
        {"cni_bin_dirs", c.network.cni_bin_dirs},
        {"plugin_timeout_seconds", c.network.plugin_timeout_seconds}}},
      {"streaming", {{"address", c.streaming.address}, {"port", c.streaming.port}}},
      {"metrics", {{"address", c.metrics.address}}},
  };
}

}  // namespace berth
