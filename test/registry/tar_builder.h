// Test helper: builds layer tarballs (plain, gzip or zstd) with libarchive's writer, including
// the hand-made malicious entries the unpacker must refuse.
#ifndef BERTH_TEST_REGISTRY_TAR_BUILDER_H_
#define BERTH_TEST_REGISTRY_TAR_BUILDER_H_

#include <map>
#include <string>
#include <vector>

namespace berth::test {

struct TarEntry {
  enum Kind { kFile, kDir, kSymlink, kHardlink, kCharDevice, kFifo };
  std::string path;  // written as is: "../x" and "/abs" are possible on purpose
  Kind kind = kFile;
  std::string data;  // file content, or link target
  int mode = 0644;
  int uid = 0, gid = 0;
  int dev_major = 0, dev_minor = 0;
  std::map<std::string, std::string> xattrs;
};

inline TarEntry File(std::string path, std::string data, int mode = 0644) {
  return TarEntry{std::move(path), TarEntry::kFile, std::move(data), mode};
}
inline TarEntry Dir(std::string path, int mode = 0755) {
  return TarEntry{std::move(path), TarEntry::kDir, "", mode};
}
inline TarEntry Symlink(std::string path, std::string target) {
  return TarEntry{std::move(path), TarEntry::kSymlink, std::move(target), 0777};
}
inline TarEntry Hardlink(std::string path, std::string target) {
  return TarEntry{std::move(path), TarEntry::kHardlink, std::move(target), 0644};
}

enum class Compression { kNone, kGzip, kZstd };

struct Layer {
  std::string blob;     // the bytes a registry serves
  std::string diff_id;  // sha256 of the uncompressed tar
  std::string media_type;
};

// PAX-format tar of the entries in order, compressed as asked. Aborts on libarchive errors.
Layer MakeLayer(const std::vector<TarEntry>& entries, Compression compression = Compression::kGzip);

}  // namespace berth::test

#endif  // BERTH_TEST_REGISTRY_TAR_BUILDER_H_
