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
#include <cerrno>
#include <cstring>
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

absl::StatusOr<std::string> ReadEntryData(struct archive* a, int64_t limit, absl::string_view name) {
  std::string out;
  char buf[1 << 16];
  for (;;) {
    la_ssize_t n = archive_read_data(a, buf, sizeof(buf));
    if (n < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("reading ", name, ": ", archive_error_string(a)));
    }
    if (n == 0) return out;
    if (static_cast<int64_t>(out.size()) + n > limit) {
      return absl::InvalidArgumentError(absl::StrCat(name, " is larger than ", limit, " bytes"));
    }
    out.append(buf, n);
  }
}

// ---- writing tars from directories

struct TarWriter {
  struct archive* w;
  bool oci_whiteouts;  // overlay upper dir → OCI layer form
  absl::flat_hash_map<std::pair<dev_t, ino_t>, std::string> links;
};

absl::Status WriteError(struct archive* w, absl::string_view what) {
  return absl::InternalError(absl::StrCat("writing ", what, ": ", archive_error_string(w)));
}

absl::Status WriteEmptyFile(TarWriter* t, const std::string& name, const struct stat& like) {
  Entry e(archive_entry_new());
  archive_entry_set_pathname(e.get(), name.c_str());
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_perm(e.get(), 0644);
  archive_entry_set_size(e.get(), 0);
  archive_entry_set_mtime(e.get(), like.st_mtim.tv_sec, like.st_mtim.tv_nsec);
  if (archive_write_header(t->w, e.get()) != ARCHIVE_OK) return WriteError(t->w, name);
  return absl::OkStatus();
}

// Drops trusted.overlay.* xattrs: they describe this upper directory, not the files.
void DropOverlayXattrs(struct archive_entry* e) {
  std::vector<std::pair<std::string, std::string>> keep;
  const char* name;
  const void* value;
  size_t size;
  archive_entry_xattr_reset(e);
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    if (absl::StartsWith(name, "trusted.overlay.")) continue;
    keep.emplace_back(name, std::string(static_cast<const char*>(value), size));
  }
  archive_entry_xattr_clear(e);
  for (const auto& [n, v] : keep) archive_entry_xattr_add_entry(e, n.c_str(), v.data(), v.size());
}

// The entries of `dir` but "." and "..", sorted so archives are reproducible.
absl::StatusOr<std::vector<std::string>> SortedChildren(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return absl::InternalError(absl::StrCat("opendir ", dir, ": ", strerror(errno)));
  std::vector<std::string> children;
  while (struct dirent* de = readdir(d)) {
    std::string n = de->d_name;
    if (n != "." && n != "..") children.push_back(std::move(n));
  }
  closedir(d);
  std::sort(children.begin(), children.end());
  return children;
}

absl::Status AddPath(TarWriter* t, struct archive* disk, const std::string& abs,
                     const std::string& name) {
  struct stat st;
  if (lstat(abs.c_str(), &st) != 0) {
    return absl::InternalError(absl::StrCat("lstat ", abs, ": ", strerror(errno)));
  }
  const size_t slash = name.rfind('/');
  const std::string parent = slash == std::string::npos ? "" : name.substr(0, slash + 1);
  const std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
  if (t->oci_whiteouts && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
    return WriteEmptyFile(t, absl::StrCat(parent, ".wh.", base), st);
  }
  if (S_ISSOCK(st.st_mode)) return absl::OkStatus();  // a tar cannot hold one; nothing to restore
  Entry e(archive_entry_new());
  archive_entry_copy_sourcepath(e.get(), abs.c_str());
  if (archive_read_disk_entry_from_file(disk, e.get(), -1, &st) != ARCHIVE_OK) {
    return absl::InternalError(absl::StrCat("reading ", abs, ": ", archive_error_string(disk)));
  }
  archive_entry_set_pathname(e.get(), name.c_str());
  archive_entry_sparse_clear(e.get());  // the data below is written whole, holes included
  if (t->oci_whiteouts) DropOverlayXattrs(e.get());
  const bool regular = S_ISREG(st.st_mode);
  if (regular && st.st_nlink > 1) {
    auto [it, first] = t->links.try_emplace({st.st_dev, st.st_ino}, name);
    if (!first) {
      archive_entry_set_hardlink(e.get(), it->second.c_str());
      archive_entry_set_size(e.get(), 0);
    }
  }
  if (archive_write_header(t->w, e.get()) != ARCHIVE_OK) return WriteError(t->w, name);
  if (regular && archive_entry_hardlink(e.get()) == nullptr && st.st_size > 0) {
    UniqueFd fd(open(abs.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return absl::InternalError(absl::StrCat("open ", abs, ": ", strerror(errno)));
    char buf[1 << 16];
    int64_t left = st.st_size;  // the header promised this many bytes
    while (left > 0) {
      ssize_t n = read(fd.get(), buf, std::min<int64_t>(sizeof(buf), left));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return absl::InternalError(absl::StrCat("read ", abs, ": ", strerror(errno)));
      if (n == 0) break;  // shrank meanwhile: libarchive pads the rest
      if (archive_write_data(t->w, buf, n) < 0) return WriteError(t->w, name);
      left -= n;
    }
  }
  if (S_ISDIR(st.st_mode)) {
    if (t->oci_whiteouts) {
      char v[4];
      ssize_t n = lgetxattr(abs.c_str(), "trusted.overlay.opaque", v, sizeof(v));
      if (n == 1 && v[0] == 'y') {
        if (absl::Status s = WriteEmptyFile(t, absl::StrCat(name, "/.wh..wh..opq"), st); !s.ok()) {
          return s;
        }
      }
    }
    absl::StatusOr<std::vector<std::string>> children = SortedChildren(abs);
    if (!children.ok()) return children.status();
    for (const std::string& c : *children) {
      if (absl::Status s = AddPath(t, disk, absl::StrCat(abs, "/", c), absl::StrCat(name, "/", c));
          !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

// Writes the named entries of `dir` (recursively) as a tar at `out` via a temporary file.
absl::Status WriteTar(const std::string& dir, const std::vector<std::string>& names,
                      const std::string& out, bool gzip, bool oci_whiteouts) {
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
  ReadArchive disk(archive_read_disk_new());
  // No user/group name lookups: numeric ids are what a rootfs restore needs.
  archive_read_disk_set_symlink_physical(disk.get());
  archive_read_disk_set_behavior(disk.get(), ARCHIVE_READDISK_NO_SPARSE);
  archive_write_set_format_pax_restricted(w.get());
  if (gzip) archive_write_add_filter_gzip(w.get());
  archive_write_set_bytes_in_last_block(w.get(), 1);
  if (archive_write_open_fd(w.get(), fd.get()) != ARCHIVE_OK) return WriteError(w.get(), out);
  TarWriter t{w.get(), oci_whiteouts, {}};
  for (const std::string& n : names) {
    const std::string abs = dir + (n.empty() ? "" : "/" + n);
    if (n.empty()) {
      // The directory's contents, not the directory itself.
      absl::StatusOr<std::vector<std::string>> children = SortedChildren(abs);
      if (!children.ok()) return children.status();
      for (const std::string& c : *children) {
        if (absl::Status s = AddPath(&t, disk.get(), absl::StrCat(abs, "/", c), c); !s.ok()) return s;
      }
      continue;
    }
    if (!PathExists(abs)) continue;
    if (absl::Status s = AddPath(&t, disk.get(), abs, n); !s.ok()) return s;
  }
  if (archive_write_close(w.get()) != ARCHIVE_OK) return WriteError(w.get(), out);
  if (fsync(fd.get()) != 0) return absl::InternalError(absl::StrCat("fsync ", tmp, ": ", strerror(errno)));
  fd.reset();
  if (rename(tmp.c_str(), out.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("renaming ", tmp, " to ", out, ": ", strerror(errno)));
  }
  done = true;
  return absl::OkStatus();
}

}  // namespace

bool IsCheckpointArchiveRef(absl::string_view image) { return absl::StartsWith(image, "/"); }

absl::StatusOr<CheckpointArchive> ReadCheckpointArchive(const std::string& path,
                                                        absl::string_view field) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(field, " \"", path, "\": ", why));
  };
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return bad(absl::StrCat("the checkpoint archive cannot be read: ", strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) return bad("is not a checkpoint archive file");
  ReadArchive a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return bad(absl::StrCat("is not a checkpoint archive (a gzip'ed tar): ",
                            archive_error_string(a.get())));
  }
  CheckpointArchive out;
  out.path = path;
  std::string config_dump;
  bool has_record = false, has_spec = false, has_inventory = false;
  struct archive_entry* e;
  int r;
  while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK) {
    const char* raw = archive_entry_pathname(e);
    const std::string name = CleanEntryName(raw ? raw : "");
    if (name.empty()) {
      if (raw != nullptr && CleanEntryName(absl::StrCat("x/", raw)) == "x") continue;  // "./"
      return bad(absl::StrCat("archive entry \"", raw ? raw : "", "\" leaves the archive"));
    }
    const mode_t type = archive_entry_filetype(e);
    if (archive_entry_hardlink(e) != nullptr || (type != AE_IFREG && type != AE_IFDIR)) {
      return bad(absl::StrCat("archive entry \"", name,
                              "\" is not a file or directory, which a checkpoint never holds"));
    }
    const bool in_images = absl::StartsWith(name, absl::StrCat(kCheckpointImagesDir, "/"));
    if (name == kCheckpointImagesDir || in_images) {
      if (name == absl::StrCat(kCheckpointImagesDir, "/inventory.img") && type == AE_IFREG) {
        has_inventory = true;
      }
      continue;
    }
    if (type != AE_IFREG) return bad(absl::StrCat("archive entry \"", name, "\" is not a file"));
    if (name == kCheckpointConfigDump) {
      absl::StatusOr<std::string> d = ReadEntryData(a.get(), kMaxConfigDump, name);
      if (!d.ok()) return bad(d.status().message());
      config_dump = std::move(*d);
    } else if (name == kCheckpointRecord) {
      absl::StatusOr<std::string> d = ReadEntryData(a.get(), kMaxRecord, name);
      if (!d.ok()) return bad(d.status().message());
      out.record_bytes = std::move(*d);
      has_record = true;
    } else if (name == kCheckpointSpecDump) {
      absl::StatusOr<std::string> d = ReadEntryData(a.get(), kMaxSpec, name);
      if (!d.ok()) return bad(d.status().message());
      out.spec = std::move(*d);
      has_spec = true;
    } else if (name == kCheckpointRootfsDiff) {
      out.has_rootfs_diff = true;
    } else {
      return bad(absl::StrCat("archive entry \"", name, "\" is not part of a berth checkpoint"));
    }
  }
  if (r != ARCHIVE_EOF) {
    return bad(absl::StrCat("is not a checkpoint archive (a gzip'ed tar): ",
                            archive_error_string(a.get())));
  }
  if (config_dump.empty()) {
    return bad(absl::StrCat("is not a berth checkpoint archive: it has no ", kCheckpointConfigDump));
  }
  json cfg = json::parse(config_dump, nullptr, false);
  if (cfg.is_discarded() || !cfg.is_object() || !cfg.contains("berthCheckpointVersion")) {
    return bad(absl::StrCat("is not a berth checkpoint archive: ", kCheckpointConfigDump,
                            " has no berthCheckpointVersion"));
  }
  if (!cfg["berthCheckpointVersion"].is_number_integer() ||
      cfg["berthCheckpointVersion"].get<int>() != kCheckpointFormatVersion) {
    return bad(absl::StrCat("berth checkpoint format ", cfg["berthCheckpointVersion"].dump(),
                            " is not supported (this berth reads ", kCheckpointFormatVersion, ")"));
  }
  if (!has_record || !out.container.ParseFromString(out.record_bytes)) {
    return bad(absl::StrCat("the berth checkpoint has no readable ", kCheckpointRecord));
  }
  const auto& cc = out.container.config();
  if (cc.id().empty() || cc.id() != cfg.value("id", "")) {
    return bad(absl::StrCat(kCheckpointRecord, " and ", kCheckpointConfigDump,
                            " describe different containers"));
  }
  if (cc.image_id().empty() || !cc.cri().has_metadata()) {
    return bad(absl::StrCat(kCheckpointRecord, " lacks the container's image or CRI metadata"));
  }
  if (!has_spec || !json::accept(out.spec)) {
    return bad(absl::StrCat("the berth checkpoint has no readable ", kCheckpointSpecDump));
  }
  if (!has_inventory) {
    return bad(absl::StrCat("the berth checkpoint has no CRIU images (", kCheckpointImagesDir,
                            "/inventory.img)"));
  }
  out.checkpointed_at_ns = cfg.value("checkpointedAtNs", int64_t{0});
  return out;
}

absl::Status UnpackCheckpointArchive(const CheckpointArchive& archive, const std::string& dest,
                                     absl::string_view field) {
  absl::StatusOr<std::string> digest = images::UnpackLayer(archive.path, dest);
  if (!digest.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " \"", archive.path,
                                                   "\": unpacking the checkpoint archive: ",
                                                   digest.status().message()));
  }
  absl::StatusOr<std::string> record = ReadFile(absl::StrCat(dest, "/", kCheckpointRecord));
  if (!record.ok() || *record != archive.record_bytes ||
      !PathExists(absl::StrCat(dest, "/", kCheckpointImagesDir, "/inventory.img"))) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " \"", archive.path, "\": the checkpoint archive changed while it was restored"));
  }
  return absl::OkStatus();
}

absl::Status UnpackRootfsDiff(const CheckpointArchive& archive, const std::string& unpacked_dir,
                              const std::string& upper_dir, absl::string_view field) {
  if (!archive.has_rootfs_diff) return absl::OkStatus();
  if (absl::Status st = MakeDirs(upper_dir, 0755); !st.ok()) return st;
  const std::string diff = absl::StrCat(unpacked_dir, "/", kCheckpointRootfsDiff);
  absl::StatusOr<std::string> digest = images::UnpackLayer(diff, upper_dir);
  if (!digest.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " \"", archive.path, "\": unpacking ",
                                                   kCheckpointRootfsDiff, ": ",
                                                   digest.status().message()));
  }
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
  return WriteTar(upper_dir, {""}, tar_path, /*gzip=*/false, /*oci_whiteouts=*/true);
}

absl::Status WriteCheckpointArchive(const std::string& dir, const std::string& location) {
  return WriteTar(dir,
                  {kCheckpointConfigDump, kCheckpointSpecDump, kCheckpointRecord,
                   kCheckpointRootfsDiff, kCheckpointImagesDir},
                  location, /*gzip=*/true, /*oci_whiteouts=*/false);
}

cri::ContainerConfig MergeRestoreConfig(const cri::ContainerConfig& checkpointed,
                                        const cri::ContainerConfig& request) {
  cri::ContainerConfig out = checkpointed;
  if (request.has_metadata() && !request.metadata().name().empty()) {
    *out.mutable_metadata() = request.metadata();
  }
  for (const auto& [k, v] : request.labels()) (*out.mutable_labels())[k] = v;
  for (const auto& [k, v] : request.annotations()) (*out.mutable_annotations())[k] = v;
  if (request.mounts_size() > 0) {
    absl::flat_hash_set<std::string> replaced;
    for (const auto& m : request.mounts()) replaced.insert(m.container_path());
    out.clear_mounts();
    for (const auto& m : checkpointed.mounts()) {
      if (!replaced.contains(m.container_path())) *out.add_mounts() = m;
    }
    for (const auto& m : request.mounts()) *out.add_mounts() = m;
  }
  if (!request.log_path().empty()) out.set_log_path(request.log_path());
  if (request.linux().has_resources()) {
    *out.mutable_linux()->mutable_resources() = request.linux().resources();
  }
  if (request.linux().has_security_context()) {
    *out.mutable_linux()->mutable_security_context() = request.linux().security_context();
  }
  return out;
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
