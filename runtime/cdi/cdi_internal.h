// Helpers shared by the CDI sources (names.cc, spec_parse.cc, spec_text.cc, edits.cc,
// registry.cc); not part of the cdi library's interface.
#ifndef BERTH_RUNTIME_CDI_CDI_INTERNAL_H_
#define BERTH_RUNTIME_CDI_CDI_INTERNAL_H_

#include <string.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace berth::cdi::internal {

using json = nlohmann::json;

// Names and paths in messages come from files and requests: escaped and cut short.
inline std::string Quote(absl::string_view s) {
  constexpr size_t kMax = 160;
  std::string out = absl::StrCat("\"", absl::CHexEscape(s.substr(0, kMax)), "\"");
  if (s.size() > kMax) out += "...";
  return out;
}

inline std::string ErrnoText(int err) {
  char buf[128];
  return strerror_r(err, buf, sizeof(buf));  // the GNU form: returns the text
}

inline bool IsLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }
inline bool IsAlnum(char c) { return IsLetter(c) || IsDigit(c); }

// The spec bounds the kind's prefix (a DNS subdomain) at 253 and its name at 63 characters; it
// sets no bound on device names, berth's 253 keeps messages and annotations sane.
inline constexpr size_t kMaxVendorBytes = 253;
inline constexpr size_t kMaxClassBytes = 63;
inline constexpr size_t kMaxDeviceNameBytes = 253;

inline constexpr int64_t kU32Max = std::numeric_limits<uint32_t>::max();

// JSON text with its nesting bounded (kMaxNestingDepth) and repeated keys refused, as the CDI
// library's strict reader does (spec_text.cc). InvalidArgument otherwise; never throws.
absl::StatusOr<json> ParseJsonText(absl::string_view text);

}  // namespace berth::cdi::internal

#endif  // BERTH_RUNTIME_CDI_CDI_INTERNAL_H_
