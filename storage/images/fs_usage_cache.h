// FsUsageCache: what CRI ImageFsInfo reports (the image filesystem's and the container
// filesystem's bytes and inodes), measured by walking the store's directories. At a thousand
// containers one walk takes over 100 ms (it ran in every ImageFsInfo, which kubelet's image GC
// and eviction manager call every few seconds and crictl calls on connecting), so while it is
// asked for, the walk runs in the background every interval and callers get the latest one, as
// containerd answers from its snapshot usage synced every 10 s.
#ifndef BERTH_STORAGE_IMAGES_FS_USAGE_CACHE_H_
#define BERTH_STORAGE_IMAGES_FS_USAGE_CACHE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "storage/images/image_store.h"
#include "util/demand_sampler.h"

namespace berth::images {

struct FsInfo {
  FsUsage image;
  FsUsage containers;
  int64_t taken_ns = 0;  // Unix ns when the walks ended: CRI's FilesystemUsage.timestamp
};

class FsUsageCache {
 public:
  using Measure = std::function<absl::StatusOr<FsUsage>()>;
  // Walks in the background every `interval` while Get is called (stopping six intervals after
  // the last call); zero walks in every Get.
  FsUsageCache(Measure image_fs, Measure container_fs, absl::Duration interval);
  // `store` must outlive the cache.
  FsUsageCache(const ImageStore* store, absl::Duration interval);
  ~FsUsageCache();

  // The latest walk when it is at most two intervals old, else a walk now (kept for the next
  // callers). A walk's error is returned, and nothing is kept of it.
  absl::StatusOr<FsInfo> Get();

 private:
  absl::StatusOr<FsInfo> Walk();

  const Measure image_fs_, container_fs_;
  absl::Mutex mu_;
  std::optional<FsInfo> last_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<DemandSampler> sampler_;  // made last, stopped first
};

}  // namespace berth::images

#endif  // BERTH_STORAGE_IMAGES_FS_USAGE_CACHE_H_
