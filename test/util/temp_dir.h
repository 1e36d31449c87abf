// A temporary directory for tests, removed (with everything below it) when it goes out of scope.
#ifndef BERTH_TEST_UTIL_TEMP_DIR_H_
#define BERTH_TEST_UTIL_TEMP_DIR_H_

#include <stdlib.h>
#include <sys/mount.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>
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
    // Mounts a test left below the directory (a netns directory berthd made shared, a rootfs of
    // a crashed run) would make the removal fail: detach them first, deepest first.
    std::ifstream mountinfo("/proc/self/mountinfo");
    std::vector<std::string> mounts;
    for (std::string line; std::getline(mountinfo, line);) {
      std::istringstream fields(line);
      std::string id, parent, dev, root, point;
      fields >> id >> parent >> dev >> root >> point;
      if (point == path_ || point.rfind(path_ + "/", 0) == 0) mounts.push_back(point);
    }
    std::sort(mounts.begin(), mounts.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    for (const auto& m : mounts) umount2(m.c_str(), MNT_DETACH);
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
