// Layer unpacking: libarchive reads the (maybe compressed) stream once, hashing the uncompressed
// bytes for the diff ID while a second reader parses them as tar and extracts entries.
#include "storage/images/layer_unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "storage/images/archive_handles.h"
#include "storage/registry/digest.h"
#include "util/fd.h"

namespace berth::images {
namespace {

constexpr char kWhiteoutPrefix[] = ".wh.";
constexpr char kOpaqueMarker[] = ".wh..wh..opq";

// The decompressed byte stream, hashed as the tar reader pulls it.
struct RawStream {
  struct archive* raw = nullptr;
  registry::Sha256 hash;
  bool eof = false;
};

la_ssize_t ReadRaw(struct archive*, void* user, const void** buf) {
  auto* s = static_cast<RawStream*>(user);
  if (s->eof) return 0;
  static thread_local char block[1 << 16];
  la_ssize_t n = archive_read_data(s->raw, block, sizeof(block));
  if (n < 0) return -1;
  if (n == 0) s->eof = true;
  s->hash.Update(absl::string_view(block, n));
  *buf = block;
  return n;
}

// Cleans an entry path to components below the root: leading '/' and "." components go;
// ".." anywhere is refused.
absl::StatusOr<std::string> CleanPath(absl::string_view path) {
  std::vector<absl::string_view> parts;
  for (absl::string_view c : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (c == ".") continue;
    if (c == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("layer entry \"", path, "\" has a \"..\" component"));
    }
    parts.push_back(c);
  }
  return absl::StrJoin(parts, "/");
}

// Refuses a path whose existing parent directories include a symlink: writing through it would
// land somewhere else than the path says.
absl::Status CheckNoSymlinkParents(const std::string& rel, absl::string_view entry) {
  size_t pos = 0;
  while ((pos = rel.find('/', pos)) != std::string::npos) {
    std::string prefix = rel.substr(0, pos);
    struct stat st;
    if (lstat(prefix.c_str(), &st) != 0) return absl::OkStatus();  // the rest will be created
    if (S_ISLNK(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer entry \"", entry, "\" goes through symlink \"", prefix, "\""));
    }
    ++pos;
  }
  return absl::OkStatus();
}

absl::Status MakeParents(const std::string& rel) {
  size_t pos = 0;
  while ((pos = rel.find('/', pos)) != std::string::npos) {
    std::string prefix = rel.substr(0, pos);
    if (mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::InternalError(absl::StrCat("mkdir ", prefix, ": ", strerror(errno)));
    }
    ++pos;
  }
  return absl::OkStatus();
}

absl::Status ArchiveError(struct archive* a, absl::string_view what) {
  const char* msg = archive_error_string(a);
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", msg ? msg : "libarchive error"));
}

// Drops xattrs that would steer overlayfs (redirects, metacopy, opaque) from inside a layer.
void FilterXattrs(struct archive_entry* e) {
  if (archive_entry_xattr_reset(e) == 0) return;
  struct Attr {
    std::string name;
    std::string value;
  };
  std::vector<Attr> keep;
  const char* name;
  const void* value;
  size_t size;
  bool dropped = false;
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    if (absl::StartsWith(name, "trusted.overlay.")) {
      dropped = true;
      continue;
    }
    keep.push_back({name, std::string(static_cast<const char*>(value), size)});
  }
  if (!dropped) return;
  archive_entry_xattr_clear(e);
  for (const Attr& a : keep) {
    archive_entry_xattr_add_entry(e, a.name.c_str(), a.value.data(), a.value.size());
  }
}

// Runs with the calling thread's root and cwd at the layer directory (see UnpackLayer).
absl::StatusOr<std::string> UnpackHere(int archive_fd, const std::string& name) {
  ReadArchive raw(archive_read_new());
  archive_read_support_filter_all(raw.get());
  archive_read_support_format_raw(raw.get());
  if (archive_read_open_fd(raw.get(), archive_fd, 1 << 16) != ARCHIVE_OK) {
    return ArchiveError(raw.get(), name);
  }
  struct archive_entry* raw_entry;
  int r = archive_read_next_header(raw.get(), &raw_entry);
  RawStream stream;
  stream.raw = raw.get();
  if (r == ARCHIVE_EOF) {
    stream.eof = true;  // an empty file: no entries, diff ID of no bytes
  } else if (r != ARCHIVE_OK) {
    return ArchiveError(raw.get(), name);
  }

  ReadArchive tar(archive_read_new());
  archive_read_support_format_tar(tar.get());
  archive_read_support_format_empty(tar.get());
  if (archive_read_open(tar.get(), &stream, nullptr, &ReadRaw, nullptr) != ARCHIVE_OK) {
    return ArchiveError(tar.get(), name);
  }
  WriteArchive disk(archive_write_disk_new());
  archive_write_disk_set_options(
      disk.get(), ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                      ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL |
                      ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                      ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_UNLINK);

  std::set<std::string> opaque_dirs;
  std::set<std::string> whiteouts;
  for (;;) {
    struct archive_entry* e;
    r = archive_read_next_header(tar.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return ArchiveError(tar.get(), name);
    const char* raw_path = archive_entry_pathname(e);
    std::string entry = raw_path ? raw_path : "";
    auto rel = CleanPath(entry);
    if (!rel.ok()) return rel.status();
    if (rel->empty()) continue;  // the root itself: its attributes stay berth's
    if (absl::Status s = CheckNoSymlinkParents(*rel, entry); !s.ok()) return s;

    std::string base = rel->substr(rel->rfind('/') == std::string::npos ? 0 : rel->rfind('/') + 1);
    std::string dir = rel->size() > base.size() ? rel->substr(0, rel->size() - base.size() - 1) : "";
    if (base == kOpaqueMarker) {
      opaque_dirs.insert(dir);
      continue;
    }
    if (absl::StartsWith(base, kWhiteoutPrefix)) {
      std::string target = base.substr(strlen(kWhiteoutPrefix));
      if (absl::StartsWith(target, kWhiteoutPrefix)) continue;  // other AUFS metadata
      if (target.empty() || target == "." || target == "..") {
        return absl::InvalidArgumentError(absl::StrCat("layer entry \"", entry, "\" is a bad whiteout"));
      }
      whiteouts.insert(dir.empty() ? target : dir + "/" + target);
      continue;
    }
    archive_entry_set_pathname(e, rel->c_str());
    if (const char* link = archive_entry_hardlink(e); link != nullptr) {
      std::string link_entry = link;
      auto target = CleanPath(link_entry);
      if (!target.ok()) return target.status();
      if (target->empty()) {
        return absl::InvalidArgumentError(absl::StrCat("layer entry \"", entry, "\" links to the root"));
      }
      if (absl::Status s = CheckNoSymlinkParents(*target, link_entry); !s.ok()) return s;
      struct stat st;
      if (lstat(target->c_str(), &st) != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "layer entry \"", entry, "\" links to \"", link_entry, "\", absent from the layer"));
      }
      archive_entry_set_hardlink(e, target->c_str());
    }
    FilterXattrs(e);
    r = archive_write_header(disk.get(), e);
    if (r < ARCHIVE_WARN) return ArchiveError(disk.get(), absl::StrCat(name, ": ", entry));
    if (archive_entry_size(e) > 0 && r >= ARCHIVE_WARN) {
      const void* buf;
      size_t size;
      la_int64_t offset;
      for (;;) {
        int d = archive_read_data_block(tar.get(), &buf, &size, &offset);
        if (d == ARCHIVE_EOF) break;
        if (d < ARCHIVE_WARN) return ArchiveError(tar.get(), absl::StrCat(name, ": ", entry));
        if (archive_write_data_block(disk.get(), buf, size, offset) < ARCHIVE_WARN) {
          return ArchiveError(disk.get(), absl::StrCat(name, ": ", entry));
        }
      }
    }
    if (archive_write_finish_entry(disk.get()) < ARCHIVE_WARN) {
      return ArchiveError(disk.get(), absl::StrCat(name, ": ", entry));
    }
  }
  // Directory times and modes are applied at close.
  if (archive_write_close(disk.get()) != ARCHIVE_OK) return ArchiveError(disk.get(), name);

  for (const std::string& w : whiteouts) {
    if (absl::Status s = CheckNoSymlinkParents(w, w); !s.ok()) return s;
    if (absl::Status s = MakeParents(w); !s.ok()) return s;
    unlink(w.c_str());
    if (mknod(w.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
      return absl::InternalError(absl::StrCat("whiteout ", w, ": ", strerror(errno)));
    }
  }
  for (const std::string& d : opaque_dirs) {
    std::string path = d.empty() ? "." : d;
    if (!d.empty()) {
      if (absl::Status s = CheckNoSymlinkParents(d + "/x", d); !s.ok()) return s;
      if (absl::Status s = MakeParents(d + "/x"); !s.ok()) return s;
    }
    struct stat st;
    if (lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat("opaque marker in \"", d, "\", not a directory"));
    }
    if (lsetxattr(path.c_str(), "trusted.overlay.opaque", "y", 1, 0) != 0) {
      return absl::InternalError(absl::StrCat("opaque ", d, ": ", strerror(errno)));
    }
  }
  // Trailing bytes after the tar's end marker still belong to the diff ID.
  const void* ignored;
  while (ReadRaw(nullptr, &stream, &ignored) > 0) {
  }
  return stream.hash.Finish();
}

}  // namespace

absl::StatusOr<std::string> UnpackLayer(const std::string& archive_path,
                                        const std::string& dest_dir) {
  UniqueFd archive_fd(open(archive_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!archive_fd.valid()) {
    return absl::NotFoundError(absl::StrCat("open layer ", archive_path, ": ", strerror(errno)));
  }
  UniqueFd dest_fd(open(dest_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dest_fd.valid()) {
    return absl::NotFoundError(absl::StrCat("open ", dest_dir, ": ", strerror(errno)));
  }
  absl::StatusOr<std::string> result = absl::InternalError("unpack thread did not run");
  // A thread of its own, with its own root: unshare(CLONE_FS) gives it a private cwd and root, so
  // chroot here confines every write to the layer without touching berthd's other threads.
  std::thread worker([&] {
    if (unshare(CLONE_FS) != 0) {
      result = absl::InternalError(absl::StrCat("unshare(CLONE_FS): ", strerror(errno)));
      return;
    }
    if (fchdir(dest_fd.get()) != 0 || chroot(".") != 0) {
      result = absl::InternalError(absl::StrCat("chroot ", dest_dir, ": ", strerror(errno)));
      return;
    }
    result = UnpackHere(archive_fd.get(), archive_path);
  });
  worker.join();
  if (!result.ok()) {
    return absl::Status(result.status().code(),
                        absl::StrCat("unpacking ", archive_path, ": ", result.status().message()));
  }
  return result;
}

}  // namespace berth::images
