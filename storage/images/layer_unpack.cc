// Layer unpacking: libarchive reads the (maybe compressed) stream once, hashing the uncompressed
// bytes for the diff ID while a second reader parses them as tar and extracts entries.
#include "storage/images/layer_unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sched.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
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

// The decompressed byte stream, hashed and charged against the limits as the tar reader pulls it.
struct RawStream {
  struct archive* raw = nullptr;
  registry::Sha256 hash;
  bool eof = false;
  const UnpackLimits* limits = nullptr;
  int dest_fd = -1;
  uint64_t total = 0;
  uint64_t next_free_check = 0;
  // Set when a limit is hit: the tar reader then sees a read error, and this is the real cause.
  absl::Status over;
  // The tar reader's input buffer, per unpack on the heap: a thread_local array would be static
  // TLS, which glibc zeroes in every thread berthd starts (64 KiB resident per thread).
  std::vector<char> block = std::vector<char>(1 << 16);

  absl::Status Charge(size_t n) {
    total += n;
    if (total > limits->max_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("layer unpacks to more than ", limits->max_bytes,
                       " uncompressed bytes (images.max_layer_bytes)"));
    }
    if (limits->image_bytes_left != nullptr &&
        limits->image_bytes_left->fetch_sub(static_cast<int64_t>(n)) < static_cast<int64_t>(n)) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the image unpacks to more than ", limits->image_max_bytes,
                       " uncompressed bytes (images.max_image_bytes)"));
    }
    if (limits->min_free_bytes > 0 && total >= next_free_check) {
      // Every few MiB: often enough that the floor holds, rarely enough to cost nothing.
      next_free_check = total + (8 << 20);
      struct statvfs fs;
      if (fstatvfs(dest_fd, &fs) == 0 &&
          static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize < limits->min_free_bytes) {
        return absl::ResourceExhaustedError(
            absl::StrCat("free space on the image filesystem fell below ", limits->min_free_bytes,
                         " bytes (images.min_free_bytes)"));
      }
    }
    return absl::OkStatus();
  }
};

la_ssize_t ReadRaw(struct archive*, void* user, const void** buf) {
  auto* s = static_cast<RawStream*>(user);
  if (!s->over.ok()) return -1;
  if (s->eof) return 0;
  char* block = s->block.data();
  la_ssize_t n = archive_read_data(s->raw, block, s->block.size());
  if (n < 0) return -1;
  if (n == 0) s->eof = true;
  if (absl::Status st = s->Charge(n); !st.ok()) {
    s->over = st;
    return -1;
  }
  s->hash.Update(absl::string_view(block, n));
  *buf = block;
  return n;
}

// An entry name fit for an error message: escaped, and cut short when absurdly long.
std::string Shown(absl::string_view path) {
  constexpr size_t kMax = 200;
  if (path.size() <= kMax) return absl::CHexEscape(path);
  return absl::StrCat(absl::CHexEscape(path.substr(0, kMax)), "...(", path.size(), " bytes)");
}

// Cleans an entry path to components below the root: leading '/' and "." components go;
// ".." anywhere is refused.
// Names the kernel would refuse with ENAMETOOLONG are refused here, before any lstat or mkdir
// could mistake the error for absence.
absl::StatusOr<std::string> CleanPath(absl::string_view path) {
  if (path.size() >= PATH_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer entry \"", Shown(path), "\" is longer than ", PATH_MAX - 1, " bytes"));
  }
  std::vector<absl::string_view> parts;
  for (absl::string_view c : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (c == ".") continue;
    if (c == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("layer entry \"", Shown(path), "\" has a \"..\" component"));
    }
    if (c.size() > NAME_MAX) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer entry \"", Shown(path), "\" has a component longer than ", NAME_MAX, " bytes"));
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
      return absl::InvalidArgumentError(absl::StrCat(
          "layer entry \"", Shown(entry), "\" goes through symlink \"", Shown(prefix), "\""));
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
    // user.overlay.* steers overlayfs mounted with userxattr (rootless and user-namespace setups).
    if (absl::StartsWith(name, "trusted.overlay.") || absl::StartsWith(name, "user.overlay.")) {
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

// Extracts every entry of `tar` into the current root, then applies whiteouts and opaque
// markers (after all entries, so a symlink made later in the layer is seen by their checks).
absl::Status ExtractAll(struct archive* tar, const std::string& name, const UnpackLimits& limits) {
  WriteArchive disk(archive_write_disk_new());
  archive_write_disk_set_options(
      disk.get(), ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                      ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL |
                      ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                      ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_UNLINK);

  std::set<std::string> opaque_dirs;
  std::set<std::string> whiteouts;
  uint64_t entries = 0;
  uint64_t declared = 0;
  for (;;) {
    struct archive_entry* e;
    int r = archive_read_next_header(tar, &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return ArchiveError(tar, name);
    if (++entries > limits.max_entries) {
      return absl::ResourceExhaustedError(absl::StrCat("layer has more than ", limits.max_entries,
                                                       " entries (images.max_layer_entries)"));
    }
    const char* raw_path = archive_entry_pathname(e);
    std::string entry = raw_path ? raw_path : "";
    auto rel = CleanPath(entry);
    if (!rel.ok()) return rel.status();
    if (rel->empty()) continue;  // the root itself: its attributes stay berth's
    if (absl::Status s = CheckNoSymlinkParents(*rel, entry); !s.ok()) return s;
    if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0) {
      // Declared sizes count too: a sparse entry's few stream bytes may promise a huge file.
      declared += static_cast<uint64_t>(archive_entry_size(e));
      if (declared > limits.max_bytes) {
        return absl::ResourceExhaustedError(
            absl::StrCat("layer entry \"", Shown(entry), "\" takes the layer past ",
                         limits.max_bytes, " uncompressed bytes (images.max_layer_bytes)"));
      }
    }

    std::string base = rel->substr(rel->rfind('/') == std::string::npos ? 0 : rel->rfind('/') + 1);
    std::string dir =
        rel->size() > base.size() ? rel->substr(0, rel->size() - base.size() - 1) : "";
    if (base == kOpaqueMarker) {
      opaque_dirs.insert(dir);
      continue;
    }
    if (absl::StartsWith(base, kWhiteoutPrefix)) {
      std::string target = base.substr(strlen(kWhiteoutPrefix));
      if (absl::StartsWith(target, kWhiteoutPrefix)) continue;  // other AUFS metadata
      if (target.empty() || target == "." || target == "..") {
        return absl::InvalidArgumentError(
            absl::StrCat("layer entry \"", Shown(entry), "\" is a bad whiteout"));
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
        return absl::InvalidArgumentError(
            absl::StrCat("layer entry \"", Shown(entry), "\" links to the root"));
      }
      if (absl::Status s = CheckNoSymlinkParents(*target, link_entry); !s.ok()) return s;
      struct stat st;
      if (lstat(target->c_str(), &st) != 0) {
        return absl::InvalidArgumentError(absl::StrCat("layer entry \"", Shown(entry),
                                                       "\" links to \"", Shown(link_entry),
                                                       "\", absent from the layer"));
      }
      archive_entry_set_hardlink(e, target->c_str());
    }
    FilterXattrs(e);
    r = archive_write_header(disk.get(), e);
    if (r < ARCHIVE_WARN) return ArchiveError(disk.get(), absl::StrCat(name, ": ", Shown(entry)));
    if (archive_entry_size(e) > 0 && r >= ARCHIVE_WARN) {
      const void* buf;
      size_t size;
      la_int64_t offset;
      for (;;) {
        int d = archive_read_data_block(tar, &buf, &size, &offset);
        if (d == ARCHIVE_EOF) break;
        if (d < ARCHIVE_WARN) return ArchiveError(tar, absl::StrCat(name, ": ", Shown(entry)));
        if (archive_write_data_block(disk.get(), buf, size, offset) < ARCHIVE_WARN) {
          return ArchiveError(disk.get(), absl::StrCat(name, ": ", Shown(entry)));
        }
      }
    }
    if (archive_write_finish_entry(disk.get()) < ARCHIVE_WARN) {
      return ArchiveError(disk.get(), absl::StrCat(name, ": ", Shown(entry)));
    }
  }
  // Directory times and modes are applied at close.
  if (archive_write_close(disk.get()) != ARCHIVE_OK) return ArchiveError(disk.get(), name);

  for (const std::string& w : whiteouts) {
    if (absl::Status s = CheckNoSymlinkParents(w, w); !s.ok()) return s;
    if (absl::Status s = MakeParents(w); !s.ok()) return s;
    struct stat st;
    if (lstat(w.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      // A whiteout hides lower layers only; this layer's own directory of that name contradicts it.
      return absl::InvalidArgumentError(
          absl::StrCat("whiteout \"", Shown(w), "\" names a directory of the same layer"));
    }
    unlink(w.c_str());
    if (mknod(w.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
      return absl::InternalError(absl::StrCat("whiteout ", Shown(w), ": ", strerror(errno)));
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
      return absl::InvalidArgumentError(
          absl::StrCat("opaque marker in \"", Shown(d), "\", not a directory"));
    }
    if (lsetxattr(path.c_str(), "trusted.overlay.opaque", "y", 1, 0) != 0) {
      return absl::InternalError(absl::StrCat("opaque ", Shown(d), ": ", strerror(errno)));
    }
  }
  return absl::OkStatus();
}

// Runs with the calling thread's root and cwd at the layer directory (see UnpackLayer).
absl::StatusOr<std::string> UnpackHere(int archive_fd, int dest_fd, const std::string& name,
                                       const UnpackLimits& limits) {
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
  stream.limits = &limits;
  stream.dest_fd = dest_fd;
  if (r == ARCHIVE_EOF) {
    stream.eof = true;  // an empty file: no entries, diff ID of no bytes
  } else if (r != ARCHIVE_OK) {
    return ArchiveError(raw.get(), name);
  }

  ReadArchive tar(archive_read_new());
  archive_read_support_format_tar(tar.get());
  archive_read_support_format_empty(tar.get());
  absl::Status st;
  if (archive_read_open(tar.get(), &stream, nullptr, &ReadRaw, nullptr) != ARCHIVE_OK) {
    st = ArchiveError(tar.get(), name);
  } else {
    st = ExtractAll(tar.get(), name, limits);
  }
  // A limit shows up in libarchive as a read error; the limit is what the caller must hear.
  if (!stream.over.ok()) return stream.over;
  if (!st.ok()) return st;
  // Trailing bytes after the tar's end marker still belong to the diff ID (and to the budget).
  const void* ignored;
  while (ReadRaw(nullptr, &stream, &ignored) > 0) {
  }
  if (!stream.over.ok()) return stream.over;
  return stream.hash.Finish();
}

}  // namespace

absl::StatusOr<std::string> UnpackLayer(const std::string& archive_path,
                                        const std::string& dest_dir, const UnpackLimits& limits) {
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
    result = UnpackHere(archive_fd.get(), dest_fd.get(), archive_path, limits);
  });
  worker.join();
  if (!result.ok()) {
    return absl::Status(result.status().code(),
                        absl::StrCat("unpacking ", archive_path, ": ", result.status().message()));
  }
  return result;
}

}  // namespace berth::images
