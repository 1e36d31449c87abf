// Reference grammar after github.com/distribution/reference, restricted to sha256 digests.
#include "storage/registry/reference.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "storage/registry/digest.h"

namespace berth::registry {
namespace {

bool IsAlnumLower(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// path-component := alnum+ (separator alnum+)*, separator := [_.] | "__" | "-"+
bool ValidPathComponent(absl::string_view c) {
  if (c.empty() || !IsAlnumLower(c.front()) || !IsAlnumLower(c.back())) return false;
  size_t i = 0;
  while (i < c.size()) {
    if (IsAlnumLower(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !IsAlnumLower(c[j])) ++j;
    absl::string_view sep = c.substr(i, j - i);
    bool ok = sep == "." || sep == "_" || sep == "__" ||
              sep.find_first_not_of('-') == absl::string_view::npos;
    if (!ok) return false;
    i = j;
  }
  return true;
}

bool ValidTag(absl::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  for (size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    bool word = absl::ascii_isalnum(c) || c == '_';
    if (i == 0 ? !word : !(word || c == '.' || c == '-')) return false;
  }
  return true;
}

bool ValidDomain(absl::string_view d) {
  if (d.empty()) return false;
  absl::string_view host = d;
  size_t colon = d.rfind(':');
  if (colon != absl::string_view::npos && d.front() != '[') {
    absl::string_view port = d.substr(colon + 1);
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != absl::string_view::npos) {
      return false;
    }
    host = d.substr(0, colon);
  }
  if (host.empty()) return false;
  for (char c : host) {
    if (!(absl::ascii_isalnum(c) || c == '.' || c == '-' || c == '[' || c == ']' || c == ':')) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string Reference::String() const {
  std::string s = Name();
  if (!tag.empty()) absl::StrAppend(&s, ":", tag);
  if (!digest.empty()) absl::StrAppend(&s, "@", digest);
  return s;
}

absl::StatusOr<Reference> ParseReference(absl::string_view ref) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid image reference \"", absl::CHexEscape(ref), "\": ", why));
  };
  if (ref.empty()) return bad("empty");
  if (ref.size() > 4096) return bad("too long");
  Reference r;
  absl::string_view rest = ref;
  if (size_t at = rest.find('@'); at != absl::string_view::npos) {
    r.digest = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (!IsValidDigest(r.digest)) return bad("digest must be sha256: and 64 lowercase hex digits");
  }
  // A tag follows the last ':' that comes after the last '/' (a ':' before it is a port).
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != absl::string_view::npos && (slash == absl::string_view::npos || colon > slash)) {
    r.tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (!ValidTag(r.tag)) return bad("invalid tag");
  }
  if (rest.empty()) return bad("no repository name");
  // The first component is a registry host when it looks like one.
  size_t first_slash = rest.find('/');
  absl::string_view first = rest.substr(0, first_slash);
  if (first_slash != absl::string_view::npos &&
      (absl::StrContains(first, '.') || absl::StrContains(first, ':') || first == "localhost" ||
       first != absl::AsciiStrToLower(first))) {
    r.domain = std::string(first);
    rest = rest.substr(first_slash + 1);
    if (!ValidDomain(r.domain)) return bad("invalid registry host");
  } else {
    r.domain = kDockerHubDomain;
  }
  if (r.domain == "index.docker.io" || r.domain == "registry-1.docker.io") {
    r.domain = kDockerHubDomain;
  }
  if (r.domain == kDockerHubDomain && !absl::StrContains(rest, '/')) {
    r.repository = absl::StrCat("library/", rest);
  } else {
    r.repository = std::string(rest);
  }
  if (r.repository.size() > 255) return bad("repository name longer than 255 characters");
  for (absl::string_view c : absl::StrSplit(r.repository, '/')) {
    if (!ValidPathComponent(c)) {
      return bad("repository name components must be lowercase letters, digits and separators");
    }
  }
  if (r.tag.empty() && r.digest.empty()) r.tag = "latest";
  return r;
}

}  // namespace berth::registry
