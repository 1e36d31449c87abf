#include "storage/images/fs_usage_cache.h"

#include <utility>

#include "glog/logging.h"

namespace berth::images {

FsUsageCache::FsUsageCache(Measure image_fs, Measure container_fs, absl::Duration interval)
    : image_fs_(std::move(image_fs)), container_fs_(std::move(container_fs)) {
  sampler_ = std::make_unique<DemandSampler>(interval, /*idle_intervals=*/6, [this] {
    absl::StatusOr<FsInfo> w = Walk();
    if (!w.ok()) VLOG(1) << "measuring the image and container filesystems: " << w.status();
  });
}

FsUsageCache::FsUsageCache(const ImageStore* store, absl::Duration interval)
    : FsUsageCache([store] { return store->ImageFsUsage(); },
                   [store] { return store->ContainerFsUsage(); }, interval) {}

FsUsageCache::~FsUsageCache() { sampler_.reset(); }

absl::StatusOr<FsInfo> FsUsageCache::Walk() {
  FsInfo info;
  absl::StatusOr<FsUsage> image = image_fs_();
  if (!image.ok()) return image.status();
  absl::StatusOr<FsUsage> containers = container_fs_();
  if (!containers.ok()) return containers.status();
  info.image = std::move(*image);
  info.containers = std::move(*containers);
  info.taken_ns = absl::ToUnixNanos(absl::Now());
  if (sampler_->enabled()) {
    absl::MutexLock l(&mu_);
    if (!last_ || last_->taken_ns <= info.taken_ns) last_ = info;
  }
  return info;
}

absl::StatusOr<FsInfo> FsUsageCache::Get() {
  sampler_->Demand();
  {
    absl::MutexLock l(&mu_);
    if (last_ && sampler_->Fresh(last_->taken_ns)) return *last_;
  }
  return Walk();
}

}  // namespace berth::images
