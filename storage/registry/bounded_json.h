// JSON from registries parsed with a nesting limit: nlohmann's parser is iterative, but copying,
// comparing and dumping a parsed tree recurse once per level, so an unbounded tree is a stack
// overflow waiting for the first caller that copies it.
#ifndef BERTH_STORAGE_REGISTRY_BOUNDED_JSON_H_
#define BERTH_STORAGE_REGISTRY_BOUNDED_JSON_H_

#include <cstddef>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace berth::registry {

// Real manifests, indexes and image configs nest fewer than 10 levels.
inline constexpr size_t kMaxJsonDepth = 64;

// The deepest nesting of arrays and objects in `text`, counted outside strings. Exact for valid
// JSON; for anything else only an upper bound matters, since the parser refuses it anyway.
size_t JsonNestingDepth(absl::string_view text);

// Parses `text`; InvalidArgument naming `what` ("image config sha256:...") when it is not JSON or
// nests deeper than max_depth. Never throws.
absl::StatusOr<nlohmann::json> ParseBoundedJson(absl::string_view text, absl::string_view what,
                                                size_t max_depth = kMaxJsonDepth);

}  // namespace berth::registry

#endif  // BERTH_STORAGE_REGISTRY_BOUNDED_JSON_H_
