// A temporary directory for tests, removed (with everything below it) when it goes out of scope.
#ifndef BERTH_TEST_UTIL_TEMP_DIR_H_
#define BERTH_TEST_UTIL_TEMP_DIR_H_

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace berth::test {

class TempDir {
 public:
  TempDir() {
    // Always under /tmp, not Bazel's deep TEST_TMPDIR: Unix socket paths must stay under 108 bytes
    // and overlay mount options under a page.
    std::string tmpl = "/tmp/berth-test-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace berth::test

#endif  // BERTH_TEST_UTIL_TEMP_DIR_H_
