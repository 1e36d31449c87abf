// WWW-Authenticate parsing (RFC 7235 auth-params with quoted strings) and the CRI auth field.
#include "storage/registry/auth.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace berth::registry {

absl::StatusOr<Challenge> ParseChallenge(absl::string_view h) {
  Challenge c;
  h = absl::StripAsciiWhitespace(h);
  size_t sp = h.find_first_of(" \t");
  c.scheme = absl::AsciiStrToLower(h.substr(0, sp));
  if (c.scheme.empty()) return absl::InvalidArgumentError("empty WWW-Authenticate challenge");
  if (sp == absl::string_view::npos) return c;
  size_t i = sp;
  while (i < h.size()) {
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t' || h[i] == ',')) ++i;
    if (i >= h.size()) break;
    size_t eq = h.find('=', i);
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError("malformed WWW-Authenticate parameter");
    }
    std::string key = absl::AsciiStrToLower(absl::StripAsciiWhitespace(h.substr(i, eq - i)));
    // Another scheme starts when a key contains a space: stop at the first challenge.
    if (key.find(' ') != std::string::npos) break;
    i = eq + 1;
    std::string value;
    if (i < h.size() && h[i] == '"') {
      ++i;
      bool closed = false;
      while (i < h.size()) {
        char ch = h[i++];
        if (ch == '\\' && i < h.size()) {
          value.push_back(h[i++]);
        } else if (ch == '"') {
          closed = true;
          break;
        } else {
          value.push_back(ch);
        }
      }
      if (!closed) return absl::InvalidArgumentError("unterminated quoted WWW-Authenticate value");
    } else {
      size_t end = h.find(',', i);
      if (end == absl::string_view::npos) end = h.size();
      value = std::string(absl::StripAsciiWhitespace(h.substr(i, end - i)));
      i = end;
    }
    c.params[key] = value;
  }
  return c;
}

absl::Status DecodeAuthField(absl::string_view auth, Credentials* creds) {
  if (auth.empty()) return absl::OkStatus();
  std::string decoded;
  if (!absl::Base64Unescape(auth, &decoded)) {
    return absl::InvalidArgumentError("auth.auth is not valid base64");
  }
  size_t colon = decoded.find(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError("auth.auth must encode \"username:password\"");
  }
  if (creds->username.empty() && creds->password.empty()) {
    creds->username = decoded.substr(0, colon);
    creds->password = decoded.substr(colon + 1);
  }
  return absl::OkStatus();
}

std::string Base64Encode(absl::string_view data) { return absl::Base64Escape(data); }

}  // namespace berth::registry
