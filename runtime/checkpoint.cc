// Checkpoint archives: writing them from a checkpointed container, reading and checking them
// for a restore, the CRI config merge CRI-O does, and finding a CRIU that works on this kernel.
#include "runtime/checkpoint.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "runtime/checkpoint_testing.h"
#include "storage/images/archive_handles.h"
#include "storage/images/layer_unpack.h"
#include "util/fd.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace berth::runtime {
namespace {

namespace cri = ::runtime::v1;
using json = nlohmann::json;

// Bounds on the metadata entries read into memory; CRIU images are never read here.
constexpr int64_t kMaxConfigDump = 1 << 20;
constexpr int64_t kMaxRecord = 16 << 20;
constexpr int64_t kMaxSpec = 16 << 20;

// Bounds on a whole archive, so a crafted one (a gzip bomb, millions of empty files) cannot fill
// the node's disk or inodes while it is unpacked. Constants, not config: CRI has no field for
// them and berth's config knows checkpoints only by runtime.criu_path. The bytes are most of a
// checkpoint's weight (CRIU's pages are the container's memory, plus its writable layer), so the
// bound sits well above the memory of any pod berth expects to restore; the entries are CRIU's
// few images per process and thread plus the writable layer's files (node_modules-sized ones
// included). Checkpointing refuses what restoring would refuse.
constexpr int64_t kMaxArchiveBytes = int64_t{256} << 30;
constexpr int64_t kMaxArchiveEntries = int64_t{1} << 20;

// The walk holds one descriptor per directory level: deeper trees are refused, not followed.
constexpr size_t kMaxWalkDepth = 256;
// Holes smaller than this are stored as zeros, and a file with more data regions than the bound
// fails the checkpoint: each region costs memory in the tar header, which a container could
// otherwise grow without bound by punching holes.
constexpr int64_t kMinHole = 64 << 10;
constexpr size_t kMaxDataRegions = 1 << 16;

std::atomic<int64_t> max_archive_bytes{kMaxArchiveBytes};
std::atomic<int64_t> max_archive_entries{kMaxArchiveEntries};

absl::Mutex walk_hook_mu(absl::kConstInit);
std::function<void(const std::string&)>* walk_hook = nullptr;  // guarded by walk_hook_mu

void RunWalkHook(const std::string& name) {
  absl::MutexLock l(&walk_hook_mu);
  if (walk_hook != nullptr) (*walk_hook)(name);
}

using images::ReadArchive;
using images::WriteArchive;
using Entry = images::ArchiveEntry;

std::string Rfc3339(int64_t ns) {
  return absl::FormatTime(absl::RFC3339_full, absl::FromUnixNanos(ns), absl::UTCTimeZone());
}

// An entry name with "./" and empty components removed; empty when it is unsafe (absolute, "..").
std::string CleanEntryName(absl::string_view name) {
  if (absl::StartsWith(name, "/")) return "";
  std::vector<absl::string_view> parts;
  for (absl::string_view c : absl::StrSplit(name, '/', absl::SkipEmpty())) {
    if (c == ".") continue;
    if (c == "..") return "";
    parts.push_back(c);
  }
  return absl::StrJoin(parts, "/");
}

const char* TypeName(mode_t type) {
  switch (type & S_IFMT) {
    case S_IFIFO: return "a FIFO";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFSOCK: return "a socket";
    case S_IFLNK: return "a symlink";
    case S_IFDIR: return "a directory";
    default: return "a regular file";
  }
}

// ---- writing tars from directories
//
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
  if (++t->entries > max_archive_entries.load()) {
    return absl::FailedPreconditionError(
        absl::StrCat("\"", t->root, "\" holds more than ", max_archive_entries.load(),
                     " entries, more than a checkpoint may (at \"", name, "\")"));
  }
  if (archive_filter_bytes(t->w, 0) > max_archive_bytes.load()) {
    return absl::FailedPreconditionError(
        absl::StrCat("\"", t->root, "\" holds more than ", max_archive_bytes.load(),
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
        return absl::FailedPreconditionError(absl::StrCat(
            "\"", name, "\" in \"", t.root, "\" has more than ", kMaxDataRegions,
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
      ssize_t n = pread(fd, t->buf.data(), std::min<int64_t>(t->buf.size(), length - done),
                        offset + done);
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
    const bool dense = regions.size() == 1 && regions[0].first == 0 && regions[0].second == st.st_size;
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
      return absl::FailedPreconditionError(absl::StrCat(
          "\"", name, "\" in \"", t->root, "\" is a mount point: a checkpoint holds one filesystem"));
    }
    switch (st.st_mode & S_IFMT) {
      case S_IFDIR: {
        if (stack->size() >= kMaxWalkDepth) {
          return absl::FailedPreconditionError(absl::StrCat(
              "\"", name, "\" in \"", t->root, "\" is nested deeper than ", kMaxWalkDepth,
              " directories, deeper than a checkpoint goes"));
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
        return absl::FailedPreconditionError(
            absl::StrCat("\"", name, "\" in \"", t->root, "\" is ", TypeName(st.st_mode),
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
  if (!root.valid()) return absl::InternalError(absl::StrCat("opening ", dir, ": ", strerror(errno)));
  struct stat root_st;
  if (fstat(root.get(), &root_st) != 0) {
    return absl::InternalError(absl::StrCat("stat ", dir, ": ", strerror(errno)));
  }
  const std::string tmp = absl::StrCat(out, ".tmp-", NewId().substr(0, 8));
  UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return absl::InternalError(absl::StrCat("creating ", tmp, ": ", strerror(errno)));
  bool done = false;
  struct Unlink {
    const std::string& p;
    const bool& done;
    ~Unlink() {
      if (!done) unlink(p.c_str());
    }
  } unlink_tmp{tmp, done};
  WriteArchive w(archive_write_new());
  archive_write_set_format_pax_restricted(w.get());
  if (gzip) archive_write_add_filter_gzip(w.get());
  archive_write_set_bytes_in_last_block(w.get(), 1);
  if (archive_write_open_fd(w.get(), fd.get()) != ARCHIVE_OK) return WriteError(w.get(), out);
  TarWriter t{w.get(), oci_whiteouts, dir, root_st.st_dev};
  if (absl::Status s = WalkTree(&t, std::move(root), only); !s.ok()) return s;
  if (archive_write_close(w.get()) != ARCHIVE_OK) return WriteError(w.get(), out);
  if (fsync(fd.get()) != 0) return absl::InternalError(absl::StrCat("fsync ", tmp, ": ", strerror(errno)));
  fd.reset();
  if (rename(tmp.c_str(), out.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("renaming ", tmp, " to ", out, ": ", strerror(errno)));
  }
  done = true;
  return absl::OkStatus();
}

// ---- reading archives
//
// An archive is opened once. Both passes over it (the check in ReadCheckpointArchive, the unpack
// later) read that one descriptor with pread from offset 0, and the unpack applies every check
// again as it goes: renaming another file over the path changes nothing, and rewriting the file
// in place can at most yield another archive that passes the same checks, whose metadata must
// then still be what was read first.

struct FdSource {
  int fd;
  int64_t size;  // of the file when the pass began
  int64_t offset = 0;
  std::vector<char> buf = std::vector<char>(1 << 16);
};

la_ssize_t ReadFd(struct archive* a, void* user, const void** out) {
  auto* s = static_cast<FdSource*>(user);
  for (;;) {
    ssize_t n = pread(s->fd, s->buf.data(), s->buf.size(), s->offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      archive_set_error(a, errno, "read: %s", strerror(errno));
      return -1;
    }
    s->offset += n;
    *out = s->buf.data();
    return n;
  }
}

// Only the uncompressed format gets here (libarchive skips through filters by reading), so an
// entry's data can be passed over without reading it. Never past the end: a truncated archive
// must show as one in this pass too.
la_int64_t SkipFd(struct archive*, void* user, la_int64_t request) {
  auto* s = static_cast<FdSource*>(user);
  const la_int64_t n = std::max<la_int64_t>(0, std::min<la_int64_t>(request, s->size - s->offset));
  s->offset += n;
  return n;
}

// What one pass over an archive found.
struct Scan {
  std::string config_dump, record, spec;
  bool has_config_dump = false, has_record = false, has_spec = false, has_inventory = false,
       has_rootfs_diff = false;
};

// Opens (making them, 0700) the directories of `rel` below `dest`, never following a symlink;
// returns the innermost one. `rel` is a cleaned entry name, so it has no "." or "..".
absl::StatusOr<UniqueFd> OpenDirs(int dest, const std::vector<std::string>& parts, size_t n) {
  UniqueFd cur(fcntl(dest, F_DUPFD_CLOEXEC, 0));
  if (!cur.valid()) return absl::InternalError(absl::StrCat("dup: ", strerror(errno)));
  for (size_t i = 0; i < n; ++i) {
    if (mkdirat(cur.get(), parts[i].c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::InternalError(absl::StrCat("mkdir ", parts[i], ": ", strerror(errno)));
    }
    UniqueFd next(openat(cur.get(), parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "archive entry \"", absl::StrJoin(parts.begin(), parts.begin() + i + 1, "/"),
          "\" is both a file and a directory"));
    }
    cur = std::move(next);
  }
  return cur;
}

// Copies the current entry's data into the new file `out` (by offset, so holes stay holes) and,
// when `keep` is set, into memory as well (at most `limit` bytes).
absl::Status CopyEntryData(struct archive* a, int out, int64_t size, std::string* keep,
                           int64_t limit, absl::string_view name) {
  const void* buf;
  size_t n;
  la_int64_t offset;
  for (;;) {
    int r = archive_read_data_block(a, &buf, &n, &offset);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      return absl::InvalidArgumentError(absl::StrCat("reading ", name, ": ", archive_error_string(a)));
    }
    if (offset < 0 || offset > size || static_cast<int64_t>(n) > size - offset) {
      return absl::InvalidArgumentError(absl::StrCat("archive entry \"", name, "\" is malformed"));
    }
    if (keep != nullptr) {
      if (offset != static_cast<int64_t>(keep->size())) {
        return absl::InvalidArgumentError(absl::StrCat("archive entry \"", name, "\" is sparse"));
      }
      if (static_cast<int64_t>(keep->size() + n) > limit) {
        return absl::InvalidArgumentError(absl::StrCat(name, " is larger than ", limit, " bytes"));
      }
      keep->append(static_cast<const char*>(buf), n);
    }
    if (out >= 0) {
      const char* p = static_cast<const char*>(buf);
      size_t left = n;
      while (left > 0) {
        ssize_t w = pwrite(out, p, left, offset);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return absl::InternalError(absl::StrCat("writing ", name, ": ", strerror(errno)));
        p += w;
        left -= w;
        offset += w;
      }
    }
  }
  if (out >= 0 && ftruncate(out, size) != 0) {
    return absl::InternalError(absl::StrCat("writing ", name, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

// One pass over the archive open as `fd`, checking every entry against the layout; with
// `dest` >= 0 (an open directory) it also writes each entry below it: directories 0700, files
// 0600 owned by berth, whatever the archive claims. Only regular files and directories are ever
// made, each file with O_EXCL and each directory opened with O_NOFOLLOW, so no entry can land
// outside `dest` or replace another. Errors name the entry, not the archive.
absl::StatusOr<Scan> ScanArchive(int fd, int dest) {
  struct stat st;
  if (fstat(fd, &st) != 0) return absl::InternalError(absl::StrCat("fstat: ", strerror(errno)));
  const int64_t max_bytes = max_archive_bytes.load(), max_entries = max_archive_entries.load();
  if (st.st_size > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the checkpoint archive holds more than ", max_bytes, " bytes"));
  }
  FdSource source{fd, st.st_size};
  ReadArchive a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  archive_read_set_callback_data(a.get(), &source);
  archive_read_set_read_callback(a.get(), &ReadFd);
  archive_read_set_skip_callback(a.get(), &SkipFd);
  if (archive_read_open1(a.get()) != ARCHIVE_OK) {
    return absl::InvalidArgumentError(absl::StrCat(
        "is not a checkpoint archive (a gzip'ed tar): ", archive_error_string(a.get())));
  }
  Scan out;
  int64_t entries = 0;
  struct archive_entry* e;
  int r;
  while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK) {
    if (++entries > max_entries) {
      return absl::InvalidArgumentError(
          absl::StrCat("the checkpoint archive holds more than ", max_entries, " entries"));
    }
    // Counted as the stream is decompressed, so a gzip bomb stops here, not on a full disk.
    const int64_t size = archive_entry_size(e);
    if (size < 0 || archive_filter_bytes(a.get(), 0) > max_bytes || size > max_bytes - archive_filter_bytes(a.get(), 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("the checkpoint archive holds more than ", max_bytes, " bytes"));
    }
    const char* raw = archive_entry_pathname(e);
    const std::string name = CleanEntryName(raw ? raw : "");
    if (name.empty()) {
      if (raw != nullptr && CleanEntryName(absl::StrCat("x/", raw)) == "x") continue;  // "./"
      return absl::InvalidArgumentError(
          absl::StrCat("archive entry \"", raw ? raw : "", "\" leaves the archive"));
    }
    if (name.size() >= PATH_MAX) {
      return absl::InvalidArgumentError(absl::StrCat("archive entry \"", name.substr(0, 64),
                                                     "...\" has too long a name"));
    }
    const mode_t type = archive_entry_filetype(e);
    if (archive_entry_hardlink(e) != nullptr || (type != AE_IFREG && type != AE_IFDIR)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "archive entry \"", name, "\" is not a file or directory, which a checkpoint never holds"));
    }
    std::string* keep = nullptr;
    int64_t limit = 0;
    const bool in_images = absl::StartsWith(name, absl::StrCat(kCheckpointImagesDir, "/"));
    if (name == kCheckpointImagesDir || in_images) {
      if (name == absl::StrCat(kCheckpointImagesDir, "/inventory.img") && type == AE_IFREG) {
        out.has_inventory = true;
      }
    } else if (type != AE_IFREG) {
      return absl::InvalidArgumentError(absl::StrCat("archive entry \"", name, "\" is not a file"));
    } else {
      bool* seen;
      if (name == kCheckpointConfigDump) {
        keep = &out.config_dump, limit = kMaxConfigDump, seen = &out.has_config_dump;
      } else if (name == kCheckpointRecord) {
        keep = &out.record, limit = kMaxRecord, seen = &out.has_record;
      } else if (name == kCheckpointSpecDump) {
        keep = &out.spec, limit = kMaxSpec, seen = &out.has_spec;
      } else if (name == kCheckpointRootfsDiff) {
        seen = &out.has_rootfs_diff;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("archive entry \"", name, "\" is not part of a berth checkpoint"));
      }
      if (*seen) {
        return absl::InvalidArgumentError(
            absl::StrCat("archive entry \"", name, "\" appears twice"));
      }
      *seen = true;
      if (keep != nullptr && size > limit) {
        return absl::InvalidArgumentError(absl::StrCat(name, " is larger than ", limit, " bytes"));
      }
    }
    if (dest < 0) {
      if (keep == nullptr) continue;  // libarchive skips the data
      if (absl::Status s = CopyEntryData(a.get(), -1, size, keep, limit, name); !s.ok()) return s;
      continue;
    }
    const std::vector<std::string> parts = absl::StrSplit(name, '/');
    absl::StatusOr<UniqueFd> dir =
        OpenDirs(dest, parts, type == AE_IFDIR ? parts.size() : parts.size() - 1);
    if (!dir.ok()) return dir.status();
    if (type == AE_IFDIR) continue;
    UniqueFd file(openat(dir->get(), parts.back().c_str(),
                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!file.valid()) {
      if (errno == EEXIST) {
        return absl::InvalidArgumentError(absl::StrCat("archive entry \"", name, "\" appears twice"));
      }
      return absl::InternalError(absl::StrCat("creating ", name, ": ", strerror(errno)));
    }
    if (absl::Status s = CopyEntryData(a.get(), file.get(), size, keep, limit, name); !s.ok()) {
      return s;
    }
  }
  if (r != ARCHIVE_EOF) {
    return absl::InvalidArgumentError(absl::StrCat("is not a checkpoint archive (a gzip'ed tar): ",
                                                   archive_error_string(a.get())));
  }
  return out;
}

// Checks what a pass found and fills the metadata of `out`; messages name no archive.
absl::Status CheckScan(Scan scan, CheckpointArchive* out) {
  if (!scan.has_config_dump || scan.config_dump.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("is not a berth checkpoint archive: it has no ", kCheckpointConfigDump));
  }
  json cfg = json::parse(scan.config_dump, nullptr, false);
  if (cfg.is_discarded() || !cfg.is_object() || !cfg.contains("berthCheckpointVersion")) {
    return absl::InvalidArgumentError(absl::StrCat("is not a berth checkpoint archive: ",
                                                   kCheckpointConfigDump,
                                                   " has no berthCheckpointVersion"));
  }
  if (!cfg["berthCheckpointVersion"].is_number_integer() ||
      cfg["berthCheckpointVersion"].get<int64_t>() != kCheckpointFormatVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("berth checkpoint format ", cfg["berthCheckpointVersion"].dump(),
                     " is not supported (this berth reads ", kCheckpointFormatVersion, ")"));
  }
  if (!scan.has_record || !out->container.ParseFromString(scan.record)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the berth checkpoint has no readable ", kCheckpointRecord));
  }
  out->record_bytes = std::move(scan.record);
  const auto& cc = out->container.config();
  const auto id = cfg.find("id");
  if (cc.id().empty() || id == cfg.end() || !id->is_string() || cc.id() != id->get<std::string>()) {
    return absl::InvalidArgumentError(absl::StrCat(kCheckpointRecord, " and ", kCheckpointConfigDump,
                                                   " describe different containers"));
  }
  if (cc.image_id().empty() || !cc.cri().has_metadata()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kCheckpointRecord, " lacks the container's image or CRI metadata"));
  }
  if (!scan.has_spec || !json::accept(scan.spec)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the berth checkpoint has no readable ", kCheckpointSpecDump));
  }
  out->spec = std::move(scan.spec);
  if (!scan.has_inventory) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the berth checkpoint has no CRIU images (", kCheckpointImagesDir, "/inventory.img)"));
  }
  const auto at = cfg.find("checkpointedAtNs");
  out->checkpointed_at_ns = at != cfg.end() && at->is_number_integer() ? at->get<int64_t>() : 0;
  out->has_rootfs_diff = scan.has_rootfs_diff;
  return absl::OkStatus();
}

// Refuses what a writable layer berth wrote never holds (device nodes, FIFOs, sockets) and
// archives beyond the bounds, before images::UnpackLayer (which would make them) sees the tar.
absl::Status CheckRootfsDiff(int fd) {
  const int64_t max_bytes = max_archive_bytes.load(), max_entries = max_archive_entries.load();
  struct stat st;
  if (fstat(fd, &st) != 0) return absl::InternalError(absl::StrCat("fstat: ", strerror(errno)));
  FdSource source{fd, st.st_size};
  ReadArchive a(archive_read_new());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_empty(a.get());
  archive_read_set_callback_data(a.get(), &source);
  archive_read_set_read_callback(a.get(), &ReadFd);
  archive_read_set_skip_callback(a.get(), &SkipFd);
  if (archive_read_open1(a.get()) != ARCHIVE_OK) {
    return absl::InvalidArgumentError(archive_error_string(a.get()));
  }
  int64_t entries = 0;
  struct archive_entry* e;
  int r;
  while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK) {
    if (++entries > max_entries) {
      return absl::InvalidArgumentError(absl::StrCat("it holds more than ", max_entries, " entries"));
    }
    if (archive_filter_bytes(a.get(), 0) > max_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("it holds more than ", max_bytes, " bytes"));
    }
    const mode_t type = archive_entry_filetype(e);
    if (archive_entry_hardlink(e) == nullptr && type != AE_IFREG && type != AE_IFDIR &&
        type != AE_IFLNK) {
      const char* name = archive_entry_pathname(e);
      return absl::InvalidArgumentError(absl::StrCat("entry \"", name ? name : "", "\" is ",
                                                     TypeName(type),
                                                     ", which berth never checkpoints"));
    }
  }
  if (r != ARCHIVE_EOF) return absl::InvalidArgumentError(archive_error_string(a.get()));
  return absl::OkStatus();
}

}  // namespace

namespace checkpoint_testing {

void SetWalkHook(std::function<void(const std::string& name)> hook) {
  absl::MutexLock l(&walk_hook_mu);
  delete walk_hook;
  walk_hook = hook ? new std::function<void(const std::string&)>(std::move(hook)) : nullptr;
}

ArchiveLimits DefaultArchiveLimits() { return {kMaxArchiveBytes, kMaxArchiveEntries}; }

void SetArchiveLimits(const ArchiveLimits& limits) {
  max_archive_bytes = limits.max_bytes;
  max_archive_entries = limits.max_entries;
}

}  // namespace checkpoint_testing

bool IsCheckpointArchiveRef(absl::string_view image) { return absl::StartsWith(image, "/"); }

absl::StatusOr<CheckpointArchive> ReadCheckpointArchive(const std::string& path,
                                                        absl::string_view field) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(field, " \"", path, "\": ", why));
  };
  // O_NONBLOCK: a FIFO at the path must not stall CreateContainer (it is refused below).
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ELOOP) return bad("is a symlink; name the checkpoint archive itself");
    return bad(absl::StrCat("the checkpoint archive cannot be read: ", strerror(errno)));
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) {
    return bad(absl::StrCat("the checkpoint archive cannot be read: ", strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) return bad("is not a checkpoint archive file");
  absl::StatusOr<Scan> scan = ScanArchive(fd.get(), -1);
  if (!scan.ok()) return bad(scan.status().message());
  CheckpointArchive out;
  out.path = path;
  if (absl::Status s = CheckScan(std::move(*scan), &out); !s.ok()) return bad(s.message());
  out.fd = std::make_shared<const UniqueFd>(std::move(fd));
  return out;
}

absl::Status UnpackCheckpointArchive(const CheckpointArchive& archive, const std::string& dest,
                                     absl::string_view field) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " \"", archive.path, "\": unpacking the checkpoint archive: ", why));
  };
  if (archive.fd == nullptr || !archive.fd->valid()) {
    return absl::FailedPreconditionError(absl::StrCat(
        field, " \"", archive.path, "\": the checkpoint archive was not opened by ReadCheckpointArchive"));
  }
  UniqueFd dest_fd(open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dest_fd.valid()) return absl::InternalError(absl::StrCat("opening ", dest, ": ", strerror(errno)));
  absl::StatusOr<Scan> scan = ScanArchive(archive.fd->get(), dest_fd.get());
  if (!scan.ok()) return bad(scan.status().message());
  CheckpointArchive again;
  if (absl::Status s = CheckScan(std::move(*scan), &again); !s.ok()) return bad(s.message());
  if (again.record_bytes != archive.record_bytes || again.spec != archive.spec ||
      again.checkpointed_at_ns != archive.checkpointed_at_ns ||
      again.has_rootfs_diff != archive.has_rootfs_diff) {
    return bad("the checkpoint archive changed while it was restored");
  }
  return absl::OkStatus();
}

absl::Status UnpackRootfsDiff(const CheckpointArchive& archive, const std::string& unpacked_dir,
                              const std::string& upper_dir, absl::string_view field) {
  if (!archive.has_rootfs_diff) return absl::OkStatus();
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(field, " \"", archive.path, "\": unpacking ",
                                                   kCheckpointRootfsDiff, ": ", why));
  };
  const std::string diff = absl::StrCat(unpacked_dir, "/", kCheckpointRootfsDiff);
  UniqueFd fd(open(diff.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return absl::InternalError(absl::StrCat("opening ", diff, ": ", strerror(errno)));
  if (absl::Status st = CheckRootfsDiff(fd.get()); !st.ok()) return bad(st.message());
  if (absl::Status st = MakeDirs(upper_dir, 0755); !st.ok()) return st;
  // The unpacker opens what it is given by path: the descriptor's /proc path is the very file
  // checked above.
  absl::StatusOr<std::string> digest =
      images::UnpackLayer(absl::StrCat("/proc/self/fd/", fd.get()), upper_dir);
  if (!digest.ok()) return bad(digest.status().message());
  unlink(diff.c_str());  // in the upper dir now; the copy would only take room
  return absl::OkStatus();
}

absl::Status WriteCheckpointMetadata(const berth::v1::Container& container,
                                     int64_t checkpointed_at_ns, const std::string& dir) {
  const auto& cc = container.config();
  json cfg = {
      {"berthCheckpointVersion", kCheckpointFormatVersion},
      {"id", cc.id()},
      {"name", cc.name()},
      {"sandboxId", cc.sandbox_id()},
      {"rootfsImage", cc.image_id()},
      {"rootfsImageRef", cc.image_ref()},
      {"rootfsImageName", cc.image_name()},
      {"runtime", "runc"},
      {"createdTime", Rfc3339(cc.created_at_ns())},
      {"checkpointedTime", Rfc3339(checkpointed_at_ns)},
      {"checkpointedAtNs", checkpointed_at_ns},
  };
  if (absl::Status st = WriteFileAtomic(absl::StrCat(dir, "/", kCheckpointConfigDump), cfg.dump(2) + "\n", 0600);
      !st.ok()) {
    return st;
  }
  if (absl::Status st = WriteFileAtomic(absl::StrCat(dir, "/", kCheckpointSpecDump), cc.oci_spec(), 0600);
      !st.ok()) {
    return st;
  }
  return WriteFileAtomic(absl::StrCat(dir, "/", kCheckpointRecord), container.SerializeAsString(), 0600);
}

absl::Status WriteRootfsDiff(const std::string& upper_dir, const std::string& tar_path) {
  return WriteTar(upper_dir, {}, tar_path, /*gzip=*/false, /*oci_whiteouts=*/true);
}

absl::Status WriteCheckpointArchive(const std::string& dir, const std::string& location) {
  return WriteTar(dir,
                  {kCheckpointConfigDump, kCheckpointSpecDump, kCheckpointRecord,
                   kCheckpointRootfsDiff, kCheckpointImagesDir},
                  location, /*gzip=*/true, /*oci_whiteouts=*/false);
}

// The restore rule. CRI-O's CRImportCheckpoint (server/container_restore.go) builds the new
// container's config from the request (metadata, labels, linux resources and security context,
// and the host side of every mount) and takes from the archive only what describes the process
// CRIU brings back: the image (rootfsImageName) and, via the spec, what runs in it. berth is
// stricter where CRI-O still trusts the archive: an archive is a file anyone able to write one
// may have made, so
//   from the archive: image, command, args, envs, working_dir — what the checkpointed container
//     was, all of it confined to the container (the image must already be on the node);
//   from the request alone, unset when the request leaves them unset: metadata, labels,
//     annotations (runc reads org.criu.config from them: a CRIU config file can run host
//     commands), mounts and devices (host paths), log path, linux resources and security
//     context (privileges, capabilities, SELinux/AppArmor/seccomp, run-as user, namespaces),
//     stdin/tty, and everything else.
// Mounts are the request's at the container paths the checkpointed container had mounts at (as
// CRI-O does: CRIU restores exactly those); CheckRestoreMounts refuses a request that lacks one.
cri::ContainerConfig MergeRestoreConfig(const cri::ContainerConfig& checkpointed,
                                        const cri::ContainerConfig& request) {
  cri::ContainerConfig out = request;
  *out.mutable_image() = checkpointed.image();
  *out.mutable_command() = checkpointed.command();
  *out.mutable_args() = checkpointed.args();
  *out.mutable_envs() = checkpointed.envs();
  out.set_working_dir(checkpointed.working_dir());
  absl::flat_hash_set<std::string> paths;
  for (const auto& m : checkpointed.mounts()) paths.insert(m.container_path());
  out.clear_mounts();
  for (const auto& m : request.mounts()) {
    if (paths.contains(m.container_path())) *out.add_mounts() = m;
  }
  return out;
}

absl::Status CheckRestoreMounts(const cri::ContainerConfig& checkpointed,
                                const cri::ContainerConfig& request) {
  absl::flat_hash_set<std::string> given;
  for (const auto& m : request.mounts()) given.insert(m.container_path());
  std::vector<std::string> missing;
  for (const auto& m : checkpointed.mounts()) {
    if (!given.contains(m.container_path())) missing.push_back(m.container_path());
  }
  if (missing.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "config.mounts: the checkpointed container had mounts at ", absl::StrJoin(missing, ", "),
      ", which the request must give (their host paths come only from the request)"));
}

bool AwaitingRestore(const berth::v1::Container& c) {
  return c.config().has_restore() && c.state().status() == berth::v1::CONTAINER_STATUS_CREATED &&
         c.state().conmon_pid() == 0;
}

absl::StatusOr<std::string> UsableCriu(const std::string& criu_path) {
  static absl::Mutex mu(absl::kConstInit);
  static std::map<std::string, absl::StatusOr<std::string>> cache;  // guarded by mu
  absl::MutexLock l(&mu);  // held across `criu check`: concurrent first callers wait for it
  if (auto it = cache.find(criu_path); it != cache.end()) return it->second;
  absl::StatusOr<std::string> found = FindProgram(criu_path);
  absl::StatusOr<std::string> result;
  if (!found.ok()) {
    result = absl::FailedPreconditionError(absl::StrCat(
        "checkpoint and restore need CRIU, and runtime.criu_path \"", criu_path,
        "\" names none on this node (", found.status().message(), ")"));
  } else {
    // CRIU may be installed yet unable to work with this kernel.
    absl::StatusOr<RunResult> r = RunProcess({*found, "check"}, RunOptions{.timeout = absl::Seconds(30)});
    if (!r.ok() || !r->ok()) {
      std::string why = r.ok() ? (r->err.empty() ? r->out : r->err) : std::string(r.status().message());
      std::vector<std::string> lines;
      for (absl::string_view line : absl::StrSplit(why, '\n', absl::SkipWhitespace())) {
        if (!absl::StartsWith(line, "Warn")) lines.emplace_back(line);
      }
      result = absl::FailedPreconditionError(absl::StrCat(
          "CRIU at ", *found, " cannot checkpoint or restore on this kernel (`criu check` failed: ",
          absl::StrJoin(lines, "; "), "): set runtime.criu_path to a CRIU that supports it"));
    } else {
      result = *found;
    }
  }
  cache.emplace(criu_path, result);
  return result;
}

absl::Status CriuUsable(const std::string& criu_path) { return UsableCriu(criu_path).status(); }

std::string CriuLogErrors(const std::string& log_path) {
  absl::StatusOr<std::string> log = ReadFile(log_path);
  if (!log.ok()) return "";
  std::vector<std::string> errors;
  for (absl::string_view line : absl::StrSplit(*log, '\n', absl::SkipWhitespace())) {
    if (absl::StrContains(line, "Error (")) errors.emplace_back(line);
  }
  if (errors.size() > 3) errors.erase(errors.begin(), errors.end() - 3);
  return absl::StrJoin(errors, "; ");
}

}  // namespace berth::runtime
