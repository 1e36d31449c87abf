// What one image pull may cost: berth.toml's [images] budgets, enforced by the image store.
#ifndef BERTH_STORAGE_IMAGES_PULL_LIMITS_H_
#define BERTH_STORAGE_IMAGES_PULL_LIMITS_H_

#include <cstdint>

namespace berth::images {

// What one pull may cost (berth.toml [images]); a pull over a limit fails before the disk does.
struct PullLimits {
  int max_layers = 128;
  int64_t max_config_bytes = 16 << 20;
  int64_t max_layer_bytes = int64_t{32} << 30;  // uncompressed, per layer
  int64_t max_image_bytes = int64_t{64} << 30;  // uncompressed, of the layers one pull unpacks
  int64_t max_layer_entries = 1'000'000;
  // Downloads and unpacks stop short of leaving less than this free on the store's filesystem.
  int64_t min_free_bytes = int64_t{1} << 30;
};

}  // namespace berth::images

#endif  // BERTH_STORAGE_IMAGES_PULL_LIMITS_H_
