// The text formats of CDI spec files: JSON (bounded nesting, no repeated keys) and YAML, read
// into JSON with Go's yaml.v2 scalar rules and bounded alias expansion.
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "runtime/cdi/cdi.h"
#include "runtime/cdi/cdi_internal.h"
#include "yaml-cpp/yaml.h"

namespace berth::cdi {
namespace {

using internal::IsDigit;
using internal::json;
using internal::Quote;

// nlohmann's parser keeps its own stack, but everything after it recurses: bound the depth
// before parsing, counting brackets outside strings.
absl::Status CheckJsonDepth(absl::string_view text) {
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxNestingDepth) {
        return absl::InvalidArgumentError(
            absl::StrCat("nested deeper than ", kMaxNestingDepth, " levels"));
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return absl::OkStatus();
}

// Integers as Go's yaml.v2 resolves plain scalars (strconv.ParseInt base 0 after dropping '_'):
// 0x hex, 0o and leading-0 octal, 0b binary, optional sign.
std::optional<json> YamlInt(absl::string_view text) {
  std::string s;
  for (char c : text) {
    if (c != '_') s.push_back(c);
  }
  if (s.empty()) return std::nullopt;
  bool negative = false;
  size_t i = 0;
  if (s[0] == '+' || s[0] == '-') {
    negative = s[0] == '-';
    i = 1;
  }
  int base = 10;
  if (s.size() - i >= 2 && s[i] == '0') {
    char p = s[i + 1];
    if (p == 'x' || p == 'X') {
      base = 16, i += 2;
    } else if (p == 'o' || p == 'O') {
      base = 8, i += 2;
    } else if (p == 'b' || p == 'B') {
      base = 2, i += 2;
    } else {
      base = 8, i += 1;
    }
  }
  if (i >= s.size()) return std::nullopt;
  uint64_t value = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    int d;
    if (IsDigit(c)) {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return std::nullopt;
    }
    if (d >= base) return std::nullopt;
    if (value > (std::numeric_limits<uint64_t>::max() - d) / base) return std::nullopt;
    value = value * base + d;
  }
  if (negative) {
    if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1) return std::nullopt;
    return json(value == 0 ? int64_t{0} : static_cast<int64_t>(0 - value));
  }
  return json(value);
}

absl::StatusOr<json> YamlScalar(const YAML::Node& n) {
  const std::string& tag = n.Tag();
  const std::string& text = n.Scalar();
  static const std::string kStr = "tag:yaml.org,2002:str", kInt = "tag:yaml.org,2002:int",
                           kBool = "tag:yaml.org,2002:bool", kNull = "tag:yaml.org,2002:null";
  if (tag == "!" || tag == kStr) return json(text);  // quoted, block, or tagged string
  bool plain = tag == "?" || tag.empty();
  if (plain || tag == kNull) {
    if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
      return json(nullptr);
    }
    if (!plain) return absl::InvalidArgumentError(absl::StrCat("bad !!null ", Quote(text)));
  }
  if (plain || tag == kBool) {
    if (text == "true" || text == "True" || text == "TRUE") return json(true);
    if (text == "false" || text == "False" || text == "FALSE") return json(false);
    if (!plain) return absl::InvalidArgumentError(absl::StrCat("bad !!bool ", Quote(text)));
  }
  if (plain || tag == kInt) {
    if (!text.empty() && (IsDigit(text[0]) || text[0] == '+' || text[0] == '-')) {
      if (std::optional<json> i = YamlInt(text)) return *i;
    }
    if (!plain) return absl::InvalidArgumentError(absl::StrCat("bad !!int ", Quote(text)));
  }
  if (plain) return json(text);
  return absl::InvalidArgumentError(absl::StrCat("unsupported YAML tag ", Quote(tag)));
}

struct YamlBudget {
  size_t nodes = 0;
  size_t bytes = 0;  // of scalars: an alias of a long string must not copy it a million times
};

absl::StatusOr<json> YamlNode(const YAML::Node& n, size_t depth, YamlBudget* budget) {
  if (++budget->nodes > kMaxYamlNodes) {
    return absl::InvalidArgumentError(
        absl::StrCat("more than ", kMaxYamlNodes, " YAML nodes (aliases included)"));
  }
  if (depth > kMaxNestingDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("nested deeper than ", kMaxNestingDepth, " levels"));
  }
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return json(nullptr);
    case YAML::NodeType::Scalar:
      budget->bytes += n.Scalar().size();
      if (budget->bytes > kMaxYamlScalarBytes) {
        return absl::InvalidArgumentError(absl::StrCat(
            "more than ", kMaxYamlScalarBytes, " bytes of YAML scalars (aliases included)"));
      }
      return YamlScalar(n);
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const YAML::Node& item : n) {
        absl::StatusOr<json> v = YamlNode(item, depth + 1, budget);
        if (!v.ok()) return v.status();
        out.push_back(*std::move(v));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) return absl::InvalidArgumentError("a YAML key is not a string");
        const std::string& key = kv.first.Scalar();
        if (out.contains(key)) {
          return absl::InvalidArgumentError(absl::StrCat("YAML key ", Quote(key), " is repeated"));
        }
        absl::StatusOr<json> v = YamlNode(kv.second, depth + 1, budget);
        if (!v.ok()) return v.status();
        out[key] = *std::move(v);
      }
      return out;
    }
    default:
      return absl::InvalidArgumentError("undefined YAML node");
  }
}

}  // namespace

namespace internal {

absl::StatusOr<json> ParseJsonText(absl::string_view text) {
  if (absl::Status st = CheckJsonDepth(text); !st.ok()) return st;
  // The CDI library reads JSON files with its strict YAML reader too, which refuses a repeated
  // key; nlohmann would keep the last one silently.
  std::vector<std::set<std::string>> keys;
  std::string repeated;
  json::parser_callback_t track = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      keys.emplace_back();
    } else if (event == json::parse_event_t::object_end && !keys.empty()) {
      keys.pop_back();
    } else if (event == json::parse_event_t::key && !keys.empty() && parsed.is_string() &&
               !keys.back().insert(parsed.get<std::string>()).second && repeated.empty()) {
      repeated = parsed.get<std::string>();
    }
    return true;
  };
  try {
    json j = json::parse(text.begin(), text.end(), track);
    if (!repeated.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("JSON key ", Quote(repeated), " is repeated"));
    }
    return j;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not JSON: ", absl::CHexEscape(e.what())));
  } catch (...) {
    return absl::InvalidArgumentError("not JSON");
  }
}

}  // namespace internal

absl::StatusOr<nlohmann::json> YamlToJson(absl::string_view text) {
  if (text.size() > kMaxSpecFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat("larger than ", kMaxSpecFileBytes, " bytes"));
  }
  try {
    YAML::Node root = YAML::Load(std::string(text));
    YamlBudget budget;
    return YamlNode(root, 0, &budget);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not YAML: ", absl::CHexEscape(e.what())));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not YAML: ", absl::CHexEscape(e.what())));
  } catch (...) {
    return absl::InvalidArgumentError("not YAML");
  }
}

}  // namespace berth::cdi
