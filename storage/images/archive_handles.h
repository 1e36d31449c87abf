// Owned libarchive handles: readers, writers and entries freed exactly once.
#ifndef BERTH_STORAGE_IMAGES_ARCHIVE_HANDLES_H_
#define BERTH_STORAGE_IMAGES_ARCHIVE_HANDLES_H_

#include <archive.h>
#include <archive_entry.h>

#include <memory>

namespace berth::images {

struct ArchiveReadDeleter {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteDeleter {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
struct ArchiveEntryDeleter {
  void operator()(struct archive_entry* e) const { archive_entry_free(e); }
};
using ReadArchive = std::unique_ptr<struct archive, ArchiveReadDeleter>;
using WriteArchive = std::unique_ptr<struct archive, ArchiveWriteDeleter>;
using ArchiveEntry = std::unique_ptr<struct archive_entry, ArchiveEntryDeleter>;

}  // namespace berth::images

#endif  // BERTH_STORAGE_IMAGES_ARCHIVE_HANDLES_H_
