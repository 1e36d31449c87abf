// CNI network configuration: parsing .conflist/.conf files, picking the first valid one in a
// directory, and finding plugin binaries.
#ifndef BERTH_NETWORK_CNI_CONFIG_H_
#define BERTH_NETWORK_CNI_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace berth::network {

// One network as a list of plugins; a single-plugin .conf file is turned into a one-entry list,
// as libcni does.
struct CniNetworkConfig {
  std::string name;
  std::string cni_version;
  bool disable_check = false;
  std::string source_path;  // the file it came from, for messages
  // {"cniVersion", "name", "plugins": [...], ...}: what the ADD cache keeps so DEL reuses it.
  nlohmann::json list;

  const nlohmann::json& plugins() const { return list.at("plugins"); }
};

// Parses a config file's text. `conflist` selects the list format; otherwise a single plugin.
absl::StatusOr<CniNetworkConfig> ParseCniConfig(absl::string_view text, bool conflist,
                                                const std::string& source_path);

// Rebuilds a config from its `list` JSON (as stored in the cache).
absl::StatusOr<CniNetworkConfig> CniConfigFromList(const nlohmann::json& list,
                                                   const std::string& source_path);

// The first valid config among `dir`'s *.conflist, *.conf and *.json files in lexical order.
// Invalid files are skipped; when none is valid the error lists why each was rejected.
absl::StatusOr<CniNetworkConfig> LoadFirstCniConfig(const std::string& dir);

// The first `<bin_dir>/<type>` that is an executable file.
absl::StatusOr<std::string> FindCniPlugin(const std::string& type,
                                          const std::vector<std::string>& bin_dirs);

// Compares dotted versions ("0.4.0" < "1.0.0"); missing parts count as 0.
int CompareCniVersions(absl::string_view a, absl::string_view b);

}  // namespace berth::network

#endif  // BERTH_NETWORK_CNI_CONFIG_H_
