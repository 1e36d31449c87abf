// Parsing the few Containerfile instructions the deploy tests check.
#include "test/deploy/containerfile.h"

#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace berth::test {

namespace {

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::string Containerfile::DestinationOf(const std::string& source) const {
  for (const ContainerfileCopy& c : copies) {
    for (const std::string& s : c.sources) {
      if (s != source) continue;
      if (absl::EndsWith(c.destination, "/")) return c.destination + Basename(s);
      return c.destination;
    }
  }
  return "";
}

std::string Containerfile::SourceOf(const std::string& destination) const {
  for (const ContainerfileCopy& c : copies) {
    for (const std::string& s : c.sources) {
      std::string to =
          absl::EndsWith(c.destination, "/") ? c.destination + Basename(s) : c.destination;
      if (to == destination) return s;
    }
  }
  return "";
}

absl::StatusOr<Containerfile> ParseContainerfile(const std::string& text) {
  // Join continuation lines first, dropping comment lines (which may sit inside a continuation).
  std::vector<std::string> instructions;
  std::string pending;
  std::istringstream in(text);
  std::string raw;
  while (std::getline(in, raw)) {
    std::string line(absl::StripAsciiWhitespace(raw));
    if (line.empty() || line[0] == '#') continue;
    bool continues = line.back() == '\\';
    if (continues) line.pop_back();
    absl::StrAppend(&pending, pending.empty() ? "" : " ", absl::StripAsciiWhitespace(line));
    if (!continues) {
      instructions.push_back(pending);
      pending.clear();
    }
  }
  if (!pending.empty())
    return absl::InvalidArgumentError("Containerfile ends inside a continuation");

  Containerfile file;
  for (const std::string& instruction : instructions) {
    std::vector<std::string> words =
        absl::StrSplit(instruction, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    std::string op = absl::AsciiStrToUpper(words[0]);
    std::string rest(absl::StripAsciiWhitespace(instruction.substr(words[0].size())));
    if (op == "FROM") {
      file.from = words.size() > 1 ? words[1] : "";
    } else if (op == "COPY") {
      if (words.size() < 3 || absl::StartsWith(words[1], "--") || absl::StartsWith(words[1], "[")) {
        return absl::InvalidArgumentError(
            absl::StrCat("unsupported COPY form (want `COPY src... dest`): ", instruction));
      }
      ContainerfileCopy copy;
      copy.sources.assign(words.begin() + 1, words.end() - 1);
      copy.destination = words.back();
      file.copies.push_back(std::move(copy));
    } else if (op == "RUN") {
      file.runs.push_back(rest);
    } else if (op == "ENTRYPOINT") {
      nlohmann::json parsed = nlohmann::json::parse(rest, nullptr, /*allow_exceptions=*/false);
      if (!parsed.is_array()) {
        return absl::InvalidArgumentError(absl::StrCat("ENTRYPOINT is not exec form: ", rest));
      }
      file.entrypoint.clear();
      for (const auto& word : parsed) {
        if (!word.is_string()) return absl::InvalidArgumentError("ENTRYPOINT has a non-string");
        file.entrypoint.push_back(word.get<std::string>());
      }
    }
  }
  return file;
}

}  // namespace berth::test
