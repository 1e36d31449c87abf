// CNI config files: validation follows libcni (name, cniVersion, plugins with a type).
#include "network/cni_config.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "util/fs.h"

namespace berth::network {
namespace {

// Network names end up in file names (the ADD cache) and iptables comments.
bool ValidNetworkName(const std::string& name) {
  if (name.empty() || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

absl::Status ValidatePlugin(const nlohmann::json& p, size_t index, const std::string& source) {
  if (!p.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": plugin ", index, " is not an object"));
  }
  auto t = p.find("type");
  if (t == p.end() || !t->is_string() || t->get<std::string>().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": plugin ", index, " has no \"type\""));
  }
  const std::string type = t->get<std::string>();
  if (type.find('/') != std::string::npos || type == "." || type == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": plugin type \"", type, "\" is not a file name"));
  }
  if (auto c = p.find("capabilities"); c != p.end() && !c->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": plugin \"", type, "\" has non-object capabilities"));
  }
  return absl::OkStatus();
}

}  // namespace

int CompareCniVersions(absl::string_view a, absl::string_view b) {
  std::vector<absl::string_view> pa = absl::StrSplit(a, '.');
  std::vector<absl::string_view> pb = absl::StrSplit(b, '.');
  for (size_t i = 0; i < std::max(pa.size(), pb.size()); ++i) {
    int x = 0, y = 0;
    if (i < pa.size() && !absl::SimpleAtoi(pa[i], &x)) x = 0;
    if (i < pb.size() && !absl::SimpleAtoi(pb[i], &y)) y = 0;
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

absl::StatusOr<CniNetworkConfig> CniConfigFromList(const nlohmann::json& list,
                                                   const std::string& source_path) {
  if (!list.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source_path, ": not a JSON object"));
  }
  CniNetworkConfig c;
  c.source_path = source_path;
  auto name = list.find("name");
  if (name == list.end() || !name->is_string() || !ValidNetworkName(name->get<std::string>())) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_path, ": missing or invalid network \"name\" (letters, digits, -_. only)"));
  }
  c.name = name->get<std::string>();
  auto version = list.find("cniVersion");
  if (version == list.end() || !version->is_string() || version->get<std::string>().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source_path, ": missing \"cniVersion\""));
  }
  c.cni_version = version->get<std::string>();
  if (auto d = list.find("disableCheck"); d != list.end()) {
    if (!d->is_boolean()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_path, ": \"disableCheck\" is not a boolean"));
    }
    c.disable_check = d->get<bool>();
  }
  auto plugins = list.find("plugins");
  if (plugins == list.end() || !plugins->is_array() || plugins->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_path, ": no \"plugins\" in network \"", c.name, "\""));
  }
  for (size_t i = 0; i < plugins->size(); ++i) {
    if (absl::Status s = ValidatePlugin((*plugins)[i], i, source_path); !s.ok()) return s;
  }
  c.list = list;
  return c;
}

absl::StatusOr<CniNetworkConfig> ParseCniConfig(absl::string_view text, bool conflist,
                                                const std::string& source_path) {
  nlohmann::json j =
      nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(source_path, ": not valid JSON"));
  }
  if (conflist) return CniConfigFromList(j, source_path);
  if (!j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source_path, ": not a JSON object"));
  }
  if (absl::Status s = ValidatePlugin(j, 0, source_path); !s.ok()) return s;
  nlohmann::json list = {{"plugins", nlohmann::json::array({j})}};
  if (j.contains("name")) list["name"] = j["name"];
  if (j.contains("cniVersion")) list["cniVersion"] = j["cniVersion"];
  return CniConfigFromList(list, source_path);
}

absl::StatusOr<CniNetworkConfig> LoadFirstCniConfig(const std::string& dir) {
  std::vector<std::string> names;
  {
    std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
    if (!d) {
      return absl::FailedPreconditionError(absl::StrCat("no CNI config directory ", dir));
    }
    while (dirent* e = readdir(d.get())) {
      std::string n = e->d_name;
      if (absl::EndsWith(n, ".conflist") || absl::EndsWith(n, ".conf") ||
          absl::EndsWith(n, ".json")) {
        names.push_back(std::move(n));
      }
    }
  }
  std::sort(names.begin(), names.end());
  std::vector<std::string> rejected;
  for (const std::string& n : names) {
    std::string path = absl::StrCat(dir, "/", n);
    struct stat st;
    if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    absl::StatusOr<std::string> text = ReadFile(path);
    if (!text.ok()) {
      rejected.push_back(std::string(text.status().message()));
      continue;
    }
    absl::StatusOr<CniNetworkConfig> c =
        ParseCniConfig(*text, absl::EndsWith(n, ".conflist"), path);
    if (c.ok()) return c;
    rejected.push_back(std::string(c.status().message()));
  }
  if (rejected.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("no CNI network config found in ", dir));
  }
  return absl::FailedPreconditionError(
      absl::StrCat("no valid CNI network config in ", dir, ": ", absl::StrJoin(rejected, "; ")));
}

absl::StatusOr<std::string> FindCniPlugin(const std::string& type,
                                          const std::vector<std::string>& bin_dirs) {
  for (const std::string& d : bin_dirs) {
    std::string p = absl::StrCat(d, "/", type);
    struct stat st;
    if (stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), X_OK) == 0) return p;
  }
  return absl::NotFoundError(
      absl::StrCat("CNI plugin \"", type, "\" not found in ", absl::StrJoin(bin_dirs, ":")));
}

}  // namespace berth::network
