// The OCI image config (the JSON blob an image id names): the fields berth keeps, and its layers'
// diff IDs.
#ifndef BERTH_STORAGE_IMAGES_IMAGE_CONFIG_H_
#define BERTH_STORAGE_IMAGES_IMAGE_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/berth/v1/records.pb.h"

namespace berth::images {

// Fills `config` and `diff_ids` from the config JSON. InvalidArgument naming `what` (the blob:
// "image config sha256:...") when it is not a JSON object, nests too deep, has no rootfs or a
// diff ID is not a sha256 digest. Fields of the wrong type are ignored, as Docker does.
absl::Status ParseImageConfig(absl::string_view body, absl::string_view what,
                              v1::ImageConfig* config, std::vector<std::string>* diff_ids);

}  // namespace berth::images

#endif  // BERTH_STORAGE_IMAGES_IMAGE_CONFIG_H_
