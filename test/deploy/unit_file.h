// A systemd unit file read as INI: sections of key=value entries, a key possibly repeated.
#ifndef BERTH_TEST_DEPLOY_UNIT_FILE_H_
#define BERTH_TEST_DEPLOY_UNIT_FILE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::test {

struct UnitFile {
  // section name -> key -> values in file order (ExecStartPre= may appear more than once).
  std::map<std::string, std::map<std::string, std::vector<std::string>>> sections;

  // The last value of section.key (systemd's "last one wins" for single-valued keys), or "".
  std::string Get(const std::string& section, const std::string& key) const;
  std::vector<std::string> GetAll(const std::string& section, const std::string& key) const;
};

// Parses unit text: '#'/';' comments, [Section] headers, Key=Value lines (trimmed); a line ending
// in '\' continues on the next one. An entry before any section, or a line without '=', is an
// error.
absl::StatusOr<UnitFile> ParseUnitFile(const std::string& text);

}  // namespace berth::test

#endif  // BERTH_TEST_DEPLOY_UNIT_FILE_H_
