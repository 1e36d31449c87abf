// Parsing systemd unit files as INI for the deploy tests.
#include "test/deploy/unit_file.h"

#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"

namespace berth::test {

std::string UnitFile::Get(const std::string& section, const std::string& key) const {
  std::vector<std::string> all = GetAll(section, key);
  return all.empty() ? "" : all.back();
}

std::vector<std::string> UnitFile::GetAll(const std::string& section,
                                          const std::string& key) const {
  auto s = sections.find(section);
  if (s == sections.end()) return {};
  auto k = s->second.find(key);
  if (k == s->second.end()) return {};
  return k->second;
}

absl::StatusOr<UnitFile> ParseUnitFile(const std::string& text) {
  UnitFile unit;
  std::istringstream in(text);
  std::string raw;
  std::string section;
  int number = 0;
  while (std::getline(in, raw)) {
    ++number;
    std::string line(absl::StripAsciiWhitespace(raw));
    while (!line.empty() && line.back() == '\\' && std::getline(in, raw)) {
      ++number;
      line.pop_back();
      absl::StrAppend(&line, " ", absl::StripAsciiWhitespace(raw));
    }
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']') {
        return absl::InvalidArgumentError(
            absl::StrCat("unit line ", number, ": bad section header"));
      }
      section = line.substr(1, line.size() - 2);
      unit.sections[section];
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string::npos || section.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unit line ", number, ": expected Key=Value inside a section: ", line));
    }
    std::string key(absl::StripAsciiWhitespace(line.substr(0, eq)));
    std::string value(absl::StripAsciiWhitespace(line.substr(eq + 1)));
    unit.sections[section][key].push_back(value);
  }
  return unit;
}

}  // namespace berth::test
