// Test helper: a real Docker Registry v2 (Debian's docker-registry) on 127.0.0.1:<free port> with
// its own storage, optionally behind htpasswd basic auth, and a plain-HTTP image pusher.
#ifndef BERTH_TEST_REGISTRY_TEST_REGISTRY_H_
#define BERTH_TEST_REGISTRY_TEST_REGISTRY_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "test/registry/tar_builder.h"

namespace berth::test {

struct TestRegistryOptions {
  // When set, the registry demands these credentials (bcrypt htpasswd file).
  std::string username;
  std::string password;
};

class TestRegistry {
 public:
  // Starts the registry and waits until it answers /v2/. The process is killed and its
  // directory removed when the object goes away.
  static absl::StatusOr<std::unique_ptr<TestRegistry>> Start(TestRegistryOptions options = {});
  ~TestRegistry();
  TestRegistry(const TestRegistry&) = delete;
  TestRegistry& operator=(const TestRegistry&) = delete;

  const std::string& host() const { return host_; }  // "127.0.0.1:<port>"
  // Where the registry keeps a blob's bytes on disk (tests corrupt it to simulate bit rot).
  std::string BlobDataPath(const std::string& digest) const;

  TestRegistry(std::string dir, std::string host, pid_t pid);

 private:
  std::string dir_;
  std::string host_;
  pid_t pid_;
};

struct ImageToPush {
  std::vector<Layer> layers;  // bottom first
  std::vector<std::string> cmd = {"/bin/sh"};
  std::vector<std::string> env = {"PATH=/bin"};
  std::string user;
  std::string stop_signal;  // the image's STOPSIGNAL, when set
  std::string architecture = "amd64";
  // Wrap the manifest in an OCI index that also lists a linux/arm64 image (of one empty layer).
  bool multi_arch_index = false;
};

struct PushedImage {
  std::string config_digest;    // the image id
  std::string manifest_digest;  // linux/amd64 manifest
  std::string index_digest;     // empty without an index
  std::string other_arch_config_digest;
  // What the tags point at.
  std::string top_digest() const { return index_digest.empty() ? manifest_digest : index_digest; }
};

// Pushes blobs (monolithic POST+PUT), the manifest (and index) and then each tag, over plain HTTP
// to host ("127.0.0.1:port"), with basic auth when username is set.
absl::StatusOr<PushedImage> PushImage(const std::string& host, const std::string& repository,
                                      const std::vector<std::string>& tags,
                                      const ImageToPush& image, const std::string& username = "",
                                      const std::string& password = "");

}  // namespace berth::test

#endif  // BERTH_TEST_REGISTRY_TEST_REGISTRY_H_
