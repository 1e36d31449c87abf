// Registry authentication pieces: WWW-Authenticate challenges and CRI's base64 `auth` field.
#ifndef BERTH_STORAGE_REGISTRY_AUTH_H_
#define BERTH_STORAGE_REGISTRY_AUTH_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/registry/config.h"

namespace berth::registry {

struct Challenge {
  std::string scheme;                         // lowercase: "bearer", "basic"
  std::map<std::string, std::string> params;  // lowercase keys: realm, service, scope
};

// Parses the first challenge of a WWW-Authenticate header value; InvalidArgument when malformed.
absl::StatusOr<Challenge> ParseChallenge(absl::string_view header);

// Fills username/password from AuthConfig.auth ("user:password" in base64) when they are empty.
absl::Status DecodeAuthField(absl::string_view auth, Credentials* creds);

std::string Base64Encode(absl::string_view data);

}  // namespace berth::registry

#endif  // BERTH_STORAGE_REGISTRY_AUTH_H_
