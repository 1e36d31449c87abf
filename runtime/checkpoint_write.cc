// Writing tars from directories: the writable layer as an OCI layer tar (rootfs-diff.tar) and
// the checkpoint archive around CRIU's images, walked by descriptors from the root down.
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/checkpoint.h"
#include "runtime/checkpoint_internal.h"
#include "storage/images/archive_handles.h"
#include "util/fd.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace berth::engine {
namespace {

using checkpoint_internal::MaxArchiveBytes;
using checkpoint_internal::MaxArchiveEntries;
using checkpoint_internal::RunWalkHook;
using checkpoint_internal::TypeName;
using images::WriteArchive;
using Entry = images::ArchiveEntry;

// The walk holds one descriptor per directory level: deeper trees are refused, not followed.
constexpr size_t kMaxWalkDepth = 256;
// Holes smaller than this are stored as zeros, and a file with more data regions than the bound
// fails the checkpoint: each region costs memory in the tar header, which a container could
// otherwise grow without bound by punching holes.
constexpr int64_t kMinHole = 64 << 10;
constexpr size_t kMaxDataRegions = 1 << 16;

// The writable layer belongs to a container that keeps running while it is archived, so it may
// swap any directory for a symlink at any moment. The walk therefore never resolves a path: it
// holds a descriptor for each directory from the root down, stats children relative to it without
// following (fstatat AT_SYMLINK_NOFOLLOW), opens them with O_NOFOLLOW (a directory also with
// O_DIRECTORY), reads links with readlinkat and takes every attribute from the opened descriptor.
// Whatever the container does, only inodes below the root it was given are ever read.

struct TarWriter {
  struct archive* w;
  bool oci_whiteouts;  // overlay upper dir → OCI layer form
  std::string root;    // for messages
  dev_t root_dev;
  int64_t entries = 0;
  absl::flat_hash_map<std::pair<dev_t, ino_t>, std::string> links;
  std::vector<char> buf = std::vector<char>(1 << 20);  // one read buffer for the whole walk
};

// One open directory of the walk and the children still to visit.
struct Level {
  UniqueFd fd;
  std::string name;  // its name in the tar, "" for the root
  std::vector<std::string> children;
  size_t next = 0;
};

absl::Status WriteError(struct archive* w, absl::string_view what) {
  return absl::InternalError(absl::StrCat("writing ", what, ": ", archive_error_string(w)));
}

absl::Status WalkError(const TarWriter& t, absl::string_view name, absl::string_view what) {
  return absl::InternalError(
      absl::StrCat(what, " \"", name, "\" in \"", t.root, "\": ", strerror(errno)));
}

// Counts an entry (and the bytes so far) against what a restore accepts.
absl::Status CountEntry(TarWriter* t, absl::string_view name) {
  if (++t->entries > MaxArchiveEntries()) {
    return absl::FailedPreconditionError(
        absl::StrCat("\"", t->root, "\" holds more than ", MaxArchiveEntries(),
                     " entries, more than a checkpoint may (at \"", name, "\")"));
  }
  if (archive_filter_bytes(t->w, 0) > MaxArchiveBytes()) {
    return absl::FailedPreconditionError(
        absl::StrCat("\"", t->root, "\" holds more than ", MaxArchiveBytes(),
                     " bytes, more than a checkpoint may (at \"", name, "\")"));
  }
  return absl::OkStatus();
}

absl::Status WriteEmptyFile(TarWriter* t, const std::string& name, const struct stat& like) {
  if (absl::Status s = CountEntry(t, name); !s.ok()) return s;
  Entry e(archive_entry_new());
  archive_entry_set_pathname(e.get(), name.c_str());
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_perm(e.get(), 0644);
  archive_entry_set_size(e.get(), 0);
  archive_entry_set_mtime(e.get(), like.st_mtim.tv_sec, like.st_mtim.tv_nsec);
  if (archive_write_header(t->w, e.get()) != ARCHIVE_OK) return WriteError(t->w, name);
  return absl::OkStatus();
}

// The xattrs of an open file or directory but trusted.overlay.* (they describe this upper
// directory, not the files). Values that change size while read are retried, then dropped.
void AddXattrs(int fd, struct archive_entry* e) {
  std::string names;
  for (int attempt = 0; attempt < 3; ++attempt) {
    ssize_t n = flistxattr(fd, nullptr, 0);
    if (n <= 0) return;
    names.resize(n);
    n = flistxattr(fd, names.data(), names.size());
    if (n >= 0) {
      names.resize(n);
      break;
    }
    if (errno != ERANGE) return;
    names.clear();
  }
  for (absl::string_view name : absl::StrSplit(names, '\0', absl::SkipEmpty())) {
    if (absl::StartsWith(name, "trusted.overlay.")) continue;
    const std::string key(name);
    std::string value;
    for (int attempt = 0; attempt < 3; ++attempt) {
      ssize_t n = fgetxattr(fd, key.c_str(), nullptr, 0);
      if (n < 0) break;
      value.resize(n);
      n = fgetxattr(fd, key.c_str(), value.data(), value.size());
      if (n >= 0) {
        value.resize(n);
        archive_entry_xattr_add_entry(e, key.c_str(), value.data(), value.size());
        break;
      }
      if (errno != ERANGE) break;
    }
  }
}

// Where an open regular file holds data: [offset, length) runs, holes between them left out.
// A filesystem without SEEK_DATA is all data.
absl::StatusOr<std::vector<std::pair<int64_t, int64_t>>> DataRegions(const TarWriter& t, int fd,
                                                                     int64_t size,
                                                                     absl::string_view name) {
  std::vector<std::pair<int64_t, int64_t>> regions;
  int64_t pos = 0;
  while (pos < size) {
    off_t data = lseek(fd, pos, SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // only a hole from here on
    if (data < 0) return std::vector<std::pair<int64_t, int64_t>>{{0, size}};
    if (data >= size) break;
    off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0 || hole > size) hole = size;
    if (!regions.empty() && data - (regions.back().first + regions.back().second) < kMinHole) {
      regions.back().second = hole - regions.back().first;
    } else {
      if (regions.size() == kMaxDataRegions) {
        return absl::FailedPreconditionError(
            absl::StrCat("\"", name, "\" in \"", t.root, "\" has more than ", kMaxDataRegions,
                         " separate data regions, more than a checkpoint keeps sparse"));
      }
      regions.emplace_back(data, hole - data);
    }
    pos = hole;
  }
  return regions;
}

// Feeds `n` logical zero bytes: libarchive drops those that fall in a hole of the entry.
absl::Status WriteZeros(TarWriter* t, int64_t n, absl::string_view name) {
  static const char kZeros[1 << 20] = {};
  while (n > 0) {
    la_ssize_t w = archive_write_data(t->w, kZeros, std::min<int64_t>(sizeof(kZeros), n));
    if (w < 0) return WriteError(t->w, name);
    if (w == 0) break;  // the entry is complete
    n -= w;
  }
  return absl::OkStatus();
}

// The data of a regular file whose header (with `regions` as its sparse map) was written.
absl::Status WriteFileData(TarWriter* t, int fd, int64_t size,
                           const std::vector<std::pair<int64_t, int64_t>>& regions,
                           absl::string_view name) {
  int64_t pos = 0;
  for (const auto& [offset, length] : regions) {
    if (absl::Status s = WriteZeros(t, offset - pos, name); !s.ok()) return s;
    int64_t done = 0;
    while (done < length) {
      ssize_t n =
          pread(fd, t->buf.data(), std::min<int64_t>(t->buf.size(), length - done), offset + done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return WalkError(*t, name, "reading");
      if (n == 0) break;  // shrank meanwhile: zeros stand in for what the header promised
      if (archive_write_data(t->w, t->buf.data(), n) < 0) return WriteError(t->w, name);
      done += n;
    }
    if (absl::Status s = WriteZeros(t, length - done, name); !s.ok()) return s;
    pos = offset + length;
  }
  return WriteZeros(t, size - pos, name);
}

absl::Status AddRegularFile(TarWriter* t, UniqueFd fd, const struct stat& st,
                            const std::string& name) {
  Entry e(archive_entry_new());
  archive_entry_copy_stat(e.get(), &st);
  archive_entry_set_pathname(e.get(), name.c_str());
  if (t->oci_whiteouts) AddXattrs(fd.get(), e.get());
  if (st.st_nlink > 1) {
    auto [it, first] = t->links.try_emplace({st.st_dev, st.st_ino}, name);
    if (!first) {
      archive_entry_set_hardlink(e.get(), it->second.c_str());
      archive_entry_set_size(e.get(), 0);
      if (archive_write_header(t->w, e.get()) != ARCHIVE_OK) return WriteError(t->w, name);
      return absl::OkStatus();
    }
  }
  std::vector<std::pair<int64_t, int64_t>> regions;
  if (st.st_size > 0) {
    absl::StatusOr<std::vector<std::pair<int64_t, int64_t>>> r =
        DataRegions(*t, fd.get(), st.st_size, name);
    if (!r.ok()) return r.status();
    regions = std::move(*r);
    const bool dense =
        regions.size() == 1 && regions[0].first == 0 && regions[0].second == st.st_size;
    if (!dense) {
      // A sparse entry: only the regions are stored. The closing (size, 0) region keeps a file
      // that ends in a hole (or is nothing but one) sparse too.
      for (const auto& [offset, length] : regions) {
        archive_entry_sparse_add_entry(e.get(), offset, length);
      }
      archive_entry_sparse_add_entry(e.get(), st.st_size, 0);
    }
  }
  if (archive_write_header(t->w, e.get()) != ARCHIVE_OK) return WriteError(t->w, name);
  return WriteFileData(t, fd.get(), st.st_size, regions, name);
}

// Archives child `base` of the directory open as `parent`, named `name` in the tar; a directory
// is pushed on `stack` for the walk to descend into.
absl::Status AddChild(TarWriter* t, int parent, const std::string& base, const std::string& name,
                      std::vector<Level>* stack) {
  // An entry that changes type between the stat and the open is looked at again; one that keeps
  // changing fails the checkpoint rather than being archived as something it no longer is.
  for (int attempt = 0; attempt < 3; ++attempt) {
    struct stat st;
    if (fstatat(parent, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return absl::OkStatus();  // removed meanwhile: not in the layer now
      return WalkError(*t, name, "stat");
    }
    RunWalkHook(name);
    if (st.st_dev != t->root_dev) {
      return absl::FailedPreconditionError(
          absl::StrCat("\"", name, "\" in \"", t->root,
                       "\" is a mount point: a checkpoint holds one filesystem"));
    }
    switch (st.st_mode & S_IFMT) {
      case S_IFDIR: {
        if (stack->size() >= kMaxWalkDepth) {
          return absl::FailedPreconditionError(
              absl::StrCat("\"", name, "\" in \"", t->root, "\" is nested deeper than ",
                           kMaxWalkDepth, " directories, deeper than a checkpoint goes"));
        }
        UniqueFd fd(openat(parent, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd.valid()) {
          if (errno == ELOOP || errno == ENOTDIR || errno == ENOENT) continue;  // swapped
          return WalkError(*t, name, "opening");
        }
        if (fstat(fd.get(), &st) != 0) return WalkError(*t, name, "stat");
        if (absl::Status s = CountEntry(t, name); !s.ok()) return s;
        Entry e(archive_entry_new());
        archive_entry_copy_stat(e.get(), &st);
        archive_entry_set_pathname(e.get(), name.c_str());
        if (t->oci_whiteouts) AddXattrs(fd.get(), e.get());
        if (archive_write_header(t->w, e.get()) != ARCHIVE_OK) return WriteError(t->w, name);
        if (t->oci_whiteouts) {
          char v[4];
          ssize_t n = fgetxattr(fd.get(), "trusted.overlay.opaque", v, sizeof(v));
          if (n == 1 && v[0] == 'y') {
            if (absl::Status s = WriteEmptyFile(t, absl::StrCat(name, "/.wh..wh..opq"), st);
                !s.ok()) {
              return s;
            }
          }
        }
        stack->push_back(Level{std::move(fd), name, {}, 0});
        return absl::OkStatus();
      }
      case S_IFREG: {
        // O_NONBLOCK: if it became a FIFO meanwhile, the open must not wait for a writer.
        UniqueFd fd(openat(parent, base.c_str(),
                           O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
        if (!fd.valid()) {
          if (errno == ELOOP || errno == ENOENT || errno == ENXIO) continue;
          return WalkError(*t, name, "opening");
        }
        if (fstat(fd.get(), &st) != 0) return WalkError(*t, name, "stat");
        if (!S_ISREG(st.st_mode)) continue;
        if (absl::Status s = CountEntry(t, name); !s.ok()) return s;
        return AddRegularFile(t, std::move(fd), st, name);
      }
      case S_IFLNK: {
        std::string target(PATH_MAX, '\0');
        ssize_t n = readlinkat(parent, base.c_str(), target.data(), target.size());
        if (n < 0) {
          if (errno == EINVAL || errno == ENOENT) continue;  // no longer a symlink
          return WalkError(*t, name, "readlink");
        }
        if (static_cast<size_t>(n) >= target.size()) {
          return absl::FailedPreconditionError(
              absl::StrCat("symlink \"", name, "\" in \"", t->root, "\" is too long"));
        }
        target.resize(n);
        if (absl::Status s = CountEntry(t, name); !s.ok()) return s;
        // No xattrs: a symlink's cannot be read without a path, and overlay's are dropped anyway.
        Entry e(archive_entry_new());
        archive_entry_copy_stat(e.get(), &st);
        archive_entry_set_pathname(e.get(), name.c_str());
        archive_entry_set_symlink(e.get(), target.c_str());
        if (archive_write_header(t->w, e.get()) != ARCHIVE_OK) return WriteError(t->w, name);
        return absl::OkStatus();
      }
      case S_IFCHR:
        if (t->oci_whiteouts && st.st_rdev == makedev(0, 0)) {
          const size_t slash = name.rfind('/');
          const std::string dir = slash == std::string::npos ? "" : name.substr(0, slash + 1);
          return WriteEmptyFile(t, absl::StrCat(dir, ".wh.", base), st);
        }
        [[fallthrough]];
      case S_IFBLK:
      case S_IFIFO:
        // Refused rather than recorded: a device node in a checkpoint would be made again by
        // whoever unpacks it as root, and a FIFO's writer is gone by then anyway.
        return absl::FailedPreconditionError(absl::StrCat("\"", name, "\" in \"", t->root, "\" is ",
                                                          TypeName(st.st_mode),
                                                          ", which berth does not checkpoint"));
      case S_IFSOCK:
        // A tar cannot hold one; CRIU binds a restored listening socket at its path again.
        return absl::OkStatus();
      default:
        return absl::FailedPreconditionError(
            absl::StrCat("\"", name, "\" in \"", t->root, "\" is of an unknown type"));
    }
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "\"", name, "\" in \"", t->root, "\" kept changing type while it was checkpointed"));
}

// The entries of the open directory `fd` but "." and "..", sorted so archives are reproducible.
absl::StatusOr<std::vector<std::string>> SortedChildren(const TarWriter& t, int fd,
                                                        const std::string& name) {
  // A descriptor of its own: readdir's position must not be shared with the walk's fd.
  UniqueFd own(openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!own.valid()) return WalkError(t, name, "opening");
  DIR* d = fdopendir(own.get());
  if (d == nullptr) return WalkError(t, name, "opendir");
  own.release();
  std::vector<std::string> children;
  for (;;) {
    errno = 0;
    struct dirent* de = readdir(d);
    if (de == nullptr) break;
    std::string n = de->d_name;
    if (n != "." && n != "..") children.push_back(std::move(n));
  }
  const int err = errno;
  closedir(d);
  if (err != 0) {
    errno = err;
    return WalkError(t, name, "readdir");
  }
  std::sort(children.begin(), children.end());
  return children;
}

// Archives what is below the directory open as `root_fd`, depth first, in sorted order; `only`,
// when not empty, names the root's children to take (absent ones are skipped).
absl::Status WalkTree(TarWriter* t, UniqueFd root_fd, const std::vector<std::string>& only) {
  std::vector<Level> stack;
  stack.push_back(Level{std::move(root_fd), "", only, 0});
  if (only.empty()) {
    absl::StatusOr<std::vector<std::string>> c = SortedChildren(*t, stack.back().fd.get(), "");
    if (!c.ok()) return c.status();
    stack.back().children = std::move(*c);
  }
  while (!stack.empty()) {
    Level& top = stack.back();
    if (top.next == top.children.size()) {
      stack.pop_back();
      continue;
    }
    const std::string base = top.children[top.next++];
    const std::string name = top.name.empty() ? base : absl::StrCat(top.name, "/", base);
    const size_t depth = stack.size();
    if (absl::Status s = AddChild(t, top.fd.get(), base, name, &stack); !s.ok()) return s;
    if (stack.size() > depth) {  // a directory to descend into (`top` may have moved)
      absl::StatusOr<std::vector<std::string>> c =
          SortedChildren(*t, stack.back().fd.get(), stack.back().name);
      if (!c.ok()) return c.status();
      stack.back().children = std::move(*c);
    }
  }
  return absl::OkStatus();
}

// Writes the entries below `dir` (or only its children `only`) as a tar at `out` via a temporary
// file.
absl::Status WriteTar(const std::string& dir, const std::vector<std::string>& only,
                      const std::string& out, bool gzip, bool oci_whiteouts) {
  UniqueFd root(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root.valid())
    return absl::InternalError(absl::StrCat("opening ", dir, ": ", strerror(errno)));
  struct stat root_st;
  if (fstat(root.get(), &root_st) != 0) {
    return absl::InternalError(absl::StrCat("stat ", dir, ": ", strerror(errno)));
  }
  const std::string tmp = absl::StrCat(out, ".tmp-", NewId().substr(0, 8));
  UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid())
    return absl::InternalError(absl::StrCat("creating ", tmp, ": ", strerror(errno)));
  absl::Cleanup unlink_tmp = [&tmp] { unlink(tmp.c_str()); };
  WriteArchive w(archive_write_new());
  archive_write_set_format_pax_restricted(w.get());
  if (gzip) archive_write_add_filter_gzip(w.get());
  archive_write_set_bytes_in_last_block(w.get(), 1);
  if (archive_write_open_fd(w.get(), fd.get()) != ARCHIVE_OK) return WriteError(w.get(), out);
  TarWriter t{w.get(), oci_whiteouts, dir, root_st.st_dev};
  if (absl::Status s = WalkTree(&t, std::move(root), only); !s.ok()) return s;
  if (archive_write_close(w.get()) != ARCHIVE_OK) return WriteError(w.get(), out);
  if (fsync(fd.get()) != 0)
    return absl::InternalError(absl::StrCat("fsync ", tmp, ": ", strerror(errno)));
  fd.reset();
  if (rename(tmp.c_str(), out.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("renaming ", tmp, " to ", out, ": ", strerror(errno)));
  }
  std::move(unlink_tmp).Cancel();
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteRootfsDiff(const std::string& upper_dir, const std::string& tar_path) {
  return WriteTar(upper_dir, {}, tar_path, /*gzip=*/false, /*oci_whiteouts=*/true);
}

absl::Status WriteCheckpointArchive(const std::string& dir, const std::string& location) {
  return WriteTar(dir,
                  {kCheckpointConfigDump, kCheckpointSpecDump, kCheckpointRecord,
                   kCheckpointRootfsDiff, kCheckpointImagesDir},
                  location, /*gzip=*/true, /*oci_whiteouts=*/false);
}

}  // namespace berth::engine
