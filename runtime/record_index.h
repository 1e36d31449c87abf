// Looking records up the way crictl users type ids: the exact id, else a unique prefix. Shared by
// the engine's indexes and the stats collector's fixed record sources.
#ifndef BERTH_RUNTIME_RECORD_INDEX_H_
#define BERTH_RUNTIME_RECORD_INDEX_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace berth::engine {

// `objects` maps ids to values that test false when empty (shared_ptr). `field` names the request
// field for a missing key, `kind` the object in errors: InvalidArgument for a missing key or an
// ambiguous prefix, NotFound for no match.
template <typename Map>
absl::StatusOr<typename Map::mapped_type> LookUpByIdOrPrefix(const Map& objects,
                                                             const std::string& key,
                                                             absl::string_view kind,
                                                             absl::string_view field) {
  if (key.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
  if (auto it = objects.find(key); it != objects.end()) return it->second;
  typename Map::mapped_type found{};
  int matches = 0;
  for (const auto& [id, obj] : objects) {
    if (absl::StartsWith(id, key)) {
      found = obj;
      ++matches;
    }
  }
  if (matches == 1) return found;
  if (matches > 1) {
    return absl::InvalidArgumentError(absl::StrCat(kind, " id prefix \"", key, "\" is ambiguous"));
  }
  return absl::NotFoundError(absl::StrCat(kind, " \"", key, "\" not found"));
}

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_RECORD_INDEX_H_
