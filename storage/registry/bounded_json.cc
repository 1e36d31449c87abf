// A linear pre-scan for nesting depth, then nlohmann's parser without exceptions.
#include "storage/registry/bounded_json.h"

#include "absl/strings/str_cat.h"

namespace berth::registry {

size_t JsonNestingDepth(absl::string_view text) {
  size_t depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > deepest) deepest = depth;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return deepest;
}

absl::StatusOr<nlohmann::json> ParseBoundedJson(absl::string_view text, absl::string_view what,
                                                size_t max_depth) {
  if (size_t depth = JsonNestingDepth(text); depth > max_depth) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " nests arrays and objects deeper than ", max_depth, " levels"));
  }
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr,
                                           /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(what, " is not valid JSON"));
  return j;
}

}  // namespace berth::registry
