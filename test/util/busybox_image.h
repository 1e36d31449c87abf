// A busybox test image built from Debian's busybox-static, pushed to a test registry.
#ifndef BERTH_TEST_UTIL_BUSYBOX_IMAGE_H_
#define BERTH_TEST_UTIL_BUSYBOX_IMAGE_H_

#include <string>

#include "absl/status/statusor.h"
#include "test/registry/test_registry.h"

namespace berth::test {

// Pushes <repository>:<tag> with /bin/busybox, its applet links, /etc/passwd and /etc/group
// (users root, nobody and www(33)). Returns what was pushed.
absl::StatusOr<PushedImage> PushBusybox(const std::string& registry_host,
                                        const std::string& repository = "library/busybox",
                                        const std::string& tag = "latest");

}  // namespace berth::test

#endif  // BERTH_TEST_UTIL_BUSYBOX_IMAGE_H_
