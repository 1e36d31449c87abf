// Reading checkpoint archives for a restore: one descriptor, every entry checked against the
// layout and the bounds, the metadata checked, and the unpack (of the archive, then of its
// rootfs-diff.tar into the new writable layer) checking everything again as it goes.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "runtime/checkpoint.h"
#include "runtime/checkpoint_internal.h"
#include "storage/images/archive_handles.h"
#include "storage/images/layer_unpack.h"
#include "util/fd.h"
#include "util/fs.h"

namespace berth::engine {
namespace {

using json = nlohmann::json;
using checkpoint_internal::MaxArchiveBytes;
using checkpoint_internal::MaxArchiveEntries;
using checkpoint_internal::TypeName;
using images::ReadArchive;

// Bounds on the metadata entries read into memory; CRIU images are never read here.
constexpr int64_t kMaxConfigDump = 1 << 20;
constexpr int64_t kMaxRecord = 16 << 20;
constexpr int64_t kMaxSpec = 16 << 20;

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

// Opens `a` on `source` (its descriptor read from offset 0); false when libarchive refuses it.
bool OpenOn(struct archive* a, FdSource* source) {
  archive_read_set_callback_data(a, source);
  archive_read_set_read_callback(a, &ReadFd);
  archive_read_set_skip_callback(a, &SkipFd);
  return archive_read_open1(a) == ARCHIVE_OK;
}

// Steps through an archive's headers within the bounds: the entry count, and the bytes
// decompressed so far (counted as the stream is decompressed, so a gzip bomb stops here, not on
// a full disk). nullptr at the end of the archive; InvalidArgument naming `what` past a bound,
// and `read_error` then libarchive's message when the archive cannot be read.
struct EntryCounter {
  const char* what;
  int64_t max_bytes;
  int64_t max_entries;
  const char* read_error = "";
  int64_t entries = 0;

  absl::StatusOr<archive_entry*> operator()(struct archive* a) {
    archive_entry* e = nullptr;
    const int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF) return nullptr;
    if (r != ARCHIVE_OK) {
      const char* why = archive_error_string(a);
      return absl::InvalidArgumentError(absl::StrCat(read_error, why ? why : "unreadable"));
    }
    if (++entries > max_entries) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " holds more than ", max_entries, " entries"));
    }
    if (archive_filter_bytes(a, 0) > max_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " holds more than ", max_bytes, " bytes"));
    }
    return e;
  }
};

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
    UniqueFd next(
        openat(cur.get(), parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid()) {
      return absl::InvalidArgumentError(
          absl::StrCat("archive entry \"", absl::StrJoin(parts.begin(), parts.begin() + i + 1, "/"),
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
      return absl::InvalidArgumentError(
          absl::StrCat("reading ", name, ": ", archive_error_string(a)));
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
        if (w <= 0)
          return absl::InternalError(absl::StrCat("writing ", name, ": ", strerror(errno)));
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
  const int64_t max_bytes = MaxArchiveBytes(), max_entries = MaxArchiveEntries();
  if (st.st_size > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the checkpoint archive holds more than ", max_bytes, " bytes"));
  }
  FdSource source{fd, st.st_size};
  ReadArchive a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  if (!OpenOn(a.get(), &source)) {
    return absl::InvalidArgumentError(absl::StrCat("is not a checkpoint archive (a gzip'ed tar): ",
                                                   archive_error_string(a.get())));
  }
  Scan out;
  EntryCounter next{"the checkpoint archive", max_bytes, max_entries,
                    "is not a checkpoint archive (a gzip'ed tar): "};
  while (true) {
    absl::StatusOr<archive_entry*> entry = next(a.get());
    if (!entry.ok()) return entry.status();
    if (*entry == nullptr) break;
    archive_entry* e = *entry;
    const int64_t size = archive_entry_size(e);
    if (size < 0 || archive_filter_bytes(a.get(), 0) > max_bytes ||
        size > max_bytes - archive_filter_bytes(a.get(), 0)) {
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
      return absl::InvalidArgumentError(
          absl::StrCat("archive entry \"", name.substr(0, 64), "...\" has too long a name"));
    }
    const mode_t type = archive_entry_filetype(e);
    if (archive_entry_hardlink(e) != nullptr || (type != AE_IFREG && type != AE_IFDIR)) {
      return absl::InvalidArgumentError(
          absl::StrCat("archive entry \"", name,
                       "\" is not a file or directory, which a checkpoint never holds"));
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
        return absl::InvalidArgumentError(
            absl::StrCat("archive entry \"", name, "\" appears twice"));
      }
      return absl::InternalError(absl::StrCat("creating ", name, ": ", strerror(errno)));
    }
    if (absl::Status s = CopyEntryData(a.get(), file.get(), size, keep, limit, name); !s.ok()) {
      return s;
    }
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
    return absl::InvalidArgumentError(
        absl::StrCat("is not a berth checkpoint archive: ", kCheckpointConfigDump,
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
    return absl::InvalidArgumentError(absl::StrCat(
        kCheckpointRecord, " and ", kCheckpointConfigDump, " describe different containers"));
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
    return absl::InvalidArgumentError(absl::StrCat("the berth checkpoint has no CRIU images (",
                                                   kCheckpointImagesDir, "/inventory.img)"));
  }
  const auto at = cfg.find("checkpointedAtNs");
  out->checkpointed_at_ns = at != cfg.end() && at->is_number_integer() ? at->get<int64_t>() : 0;
  out->has_rootfs_diff = scan.has_rootfs_diff;
  return absl::OkStatus();
}

// Refuses what a writable layer berth wrote never holds (device nodes, FIFOs, sockets) and
// archives beyond the bounds, before images::UnpackLayer (which would make them) sees the tar.
absl::Status CheckRootfsDiff(int fd) {
  const int64_t max_bytes = MaxArchiveBytes(), max_entries = MaxArchiveEntries();
  struct stat st;
  if (fstat(fd, &st) != 0) return absl::InternalError(absl::StrCat("fstat: ", strerror(errno)));
  FdSource source{fd, st.st_size};
  ReadArchive a(archive_read_new());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_empty(a.get());
  if (!OpenOn(a.get(), &source)) {
    return absl::InvalidArgumentError(archive_error_string(a.get()));
  }
  EntryCounter next{"it", max_bytes, max_entries};
  while (true) {
    absl::StatusOr<archive_entry*> entry = next(a.get());
    if (!entry.ok()) return entry.status();
    if (*entry == nullptr) break;
    archive_entry* e = *entry;
    const mode_t type = archive_entry_filetype(e);
    if (archive_entry_hardlink(e) == nullptr && type != AE_IFREG && type != AE_IFDIR &&
        type != AE_IFLNK) {
      const char* name = archive_entry_pathname(e);
      return absl::InvalidArgumentError(absl::StrCat("entry \"", name ? name : "", "\" is ",
                                                     TypeName(type),
                                                     ", which berth never checkpoints"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

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
    return absl::FailedPreconditionError(
        absl::StrCat(field, " \"", archive.path,
                     "\": the checkpoint archive was not opened by ReadCheckpointArchive"));
  }
  UniqueFd dest_fd(open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dest_fd.valid())
    return absl::InternalError(absl::StrCat("opening ", dest, ": ", strerror(errno)));
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
  if (!fd.valid())
    return absl::InternalError(absl::StrCat("opening ", diff, ": ", strerror(errno)));
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

}  // namespace berth::engine
