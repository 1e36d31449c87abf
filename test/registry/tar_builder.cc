// libarchive's writer into memory, then the same bytes hashed for the diff ID.
#include "test/registry/tar_builder.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <cstdlib>
#include <iostream>

#include "storage/registry/digest.h"

namespace berth::test {
namespace {

std::string Write(const std::vector<TarEntry>& entries, Compression c) {
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (c == Compression::kGzip) {
    archive_write_add_filter_gzip(a);
    archive_write_set_options(a, "gzip:!timestamp");  // same bytes on every build
  }
  if (c == Compression::kZstd) archive_write_add_filter_zstd(a);
  archive_write_set_bytes_in_last_block(a, 1);
  std::string out;
  auto open = [](struct archive*, void*) { return ARCHIVE_OK; };
  auto write = [](struct archive*, void* user, const void* buf, size_t n) -> la_ssize_t {
    static_cast<std::string*>(user)->append(static_cast<const char*>(buf), n);
    return n;
  };
  if (archive_write_open2(a, &out, open, write, nullptr, nullptr) != ARCHIVE_OK) {
    std::cerr << "archive_write_open: " << archive_error_string(a) << "\n";
    abort();
  }
  for (const TarEntry& t : entries) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, t.path.c_str());
    archive_entry_set_uid(e, t.uid);
    archive_entry_set_gid(e, t.gid);
    archive_entry_set_mtime(e, 1700000000, 0);
    switch (t.kind) {
      case TarEntry::kFile:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, t.data.size());
        break;
      case TarEntry::kDir:
        archive_entry_set_filetype(e, AE_IFDIR);
        break;
      case TarEntry::kSymlink:
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_symlink(e, t.data.c_str());
        break;
      case TarEntry::kHardlink:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, t.data.c_str());
        break;
      case TarEntry::kCharDevice:
        archive_entry_set_filetype(e, AE_IFCHR);
        archive_entry_set_rdevmajor(e, t.dev_major);
        archive_entry_set_rdevminor(e, t.dev_minor);
        break;
      case TarEntry::kFifo:
        archive_entry_set_filetype(e, AE_IFIFO);
        break;
    }
    archive_entry_set_perm(e, t.mode);
    for (const auto& [k, v] : t.xattrs)
      archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    if (archive_write_header(a, e) != ARCHIVE_OK) {
      std::cerr << "archive_write_header " << t.path << ": " << archive_error_string(a) << "\n";
      abort();
    }
    if (t.kind == TarEntry::kFile && !t.data.empty())
      archive_write_data(a, t.data.data(), t.data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

}  // namespace

Layer MakeLayer(const std::vector<TarEntry>& entries, Compression compression) {
  Layer l;
  l.diff_id = registry::DigestOf(Write(entries, Compression::kNone));
  l.blob = compression == Compression::kNone ? Write(entries, Compression::kNone)
                                             : Write(entries, compression);
  switch (compression) {
    case Compression::kNone:
      l.media_type = "application/vnd.oci.image.layer.v1.tar";
      break;
    case Compression::kGzip:
      l.media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
      break;
    case Compression::kZstd:
      l.media_type = "application/vnd.oci.image.layer.v1.tar+zstd";
      break;
  }
  return l;
}

}  // namespace berth::test
