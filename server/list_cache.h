// Encoded CRI list entries kept per engine view, so a list copies bytes instead of converting
// and re-encoding every container or pod on every call (kubelet relists every second).
#ifndef BERTH_SERVER_LIST_CACHE_H_
#define BERTH_SERVER_LIST_CACHE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/message.h"
#include "google/protobuf/unknown_field_set.h"

namespace berth::server {

// Views are immutable snapshots published by the engine (a state change publishes a new one),
// so an entry encoded once stays right for as long as its view is the published one. An entry
// holds its view, which keeps the address from being reused while the entry exists.
template <typename Record>
class EncodedListCache {
 public:
  using View = std::shared_ptr<const Record>;

  // Appends every view for which `keep(record)` holds to `response` as repeated message field
  // `field_number`, encoded by `encode(record)` (a serialized CRI message) unless cached.
  // The entries go into the response's unknown fields: on the wire they are exactly the
  // repeated field, and a client parses them as such.
  template <typename Keep, typename Encode>
  void Append(const std::vector<View>& views, int field_number, Keep keep, Encode encode,
              google::protobuf::Message* response) {
    google::protobuf::UnknownFieldSet* out =
        response->GetReflection()->MutableUnknownFields(response);
    absl::MutexLock lock(&mu_);
    for (const View& v : views) {
      if (!keep(*v)) continue;
      auto [it, inserted] = entries_.try_emplace(v.get());
      if (inserted) {
        it->second.view = v;
        it->second.bytes = encode(*v);
      }
      out->AddLengthDelimited(field_number, it->second.bytes);
    }
    // Entries whose view the engine no longer publishes are held only here.
    if (entries_.size() > views.size() + kSlack) {
      absl::erase_if(entries_, [](const auto& e) { return e.second.view.use_count() == 1; });
    }
  }

  size_t size() const {
    absl::MutexLock lock(&mu_);
    return entries_.size();
  }

 private:
  static constexpr size_t kSlack = 64;
  struct Entry {
    View view;
    std::string bytes;
  };
  mutable absl::Mutex mu_;
  absl::flat_hash_map<const Record*, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::server

#endif  // BERTH_SERVER_LIST_CACHE_H_
