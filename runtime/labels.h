// CRI label selectors, as list filters (containers, pods, their stats) apply them.
#ifndef BERTH_RUNTIME_LABELS_H_
#define BERTH_RUNTIME_LABELS_H_

#include <string>

#include "google/protobuf/map.h"

namespace berth::engine {

// Every key of `selector` is in `labels` with the same value (an empty selector matches all).
inline bool MatchesLabels(const google::protobuf::Map<std::string, std::string>& labels,
                          const google::protobuf::Map<std::string, std::string>& selector) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_LABELS_H_
