// The CDI registry: the spec files of a list of directories, re-read when they change, and the
// qualified names they define.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"
#include "runtime/cdi/cdi.h"
#include "runtime/cdi/cdi_internal.h"
#include "util/fd.h"

namespace berth::cdi {
namespace {

using internal::ErrnoText;
using internal::json;
using internal::kMaxClassBytes;
using internal::kMaxVendorBytes;
using internal::ParseJsonText;
using internal::Quote;

std::string Extension(absl::string_view name) {
  size_t dot = name.rfind('.');
  return dot == absl::string_view::npos ? "" : std::string(name.substr(dot));
}

int64_t Nanos(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace

Registry::Registry(std::vector<std::string> spec_dirs) : dirs_(std::move(spec_dirs)) {}

std::vector<Registry::FileSig> Registry::ScanLocked() {
  std::vector<FileSig> sigs;
  std::vector<SpecFileError> dir_errors;
  for (size_t priority = 0; priority < dirs_.size(); ++priority) {
    const std::string& dir = dirs_[priority];
    UniqueDir d(opendir(dir.c_str()));
    if (d == nullptr) {
      if (errno != ENOENT && errno != ENOTDIR) {
        dir_errors.push_back({dir, "", absl::StrCat("cannot read: ", ErrnoText(errno))});
      }
      continue;
    }
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = readdir(d.get())) {
      std::string name = e->d_name;
      std::string ext = Extension(name);
      if (ext == ".json" || ext == ".yaml" || ext == ".yml") names.push_back(std::move(name));
    }
    std::sort(names.begin(), names.end());
    if (names.size() > kMaxSpecFilesPerDir) {
      dir_errors.push_back(
          {dir, "",
           absl::StrCat("more than ", kMaxSpecFilesPerDir, " spec files; the rest are ignored")});
      names.resize(kMaxSpecFilesPerDir);
    }
    for (const std::string& name : names) {
      struct stat st;
      if (fstatat(dirfd(d.get()), name.c_str(), &st, 0) != 0 || !S_ISREG(st.st_mode)) continue;
      sigs.push_back({absl::StrCat(dir, "/", name), static_cast<int>(priority), st.st_size,
                      Nanos(st.st_mtim), Nanos(st.st_ctim), st.st_ino, st.st_dev});
    }
  }
  for (const SpecFileError& e : dir_errors) {
    bool known = std::any_of(dir_errors_.begin(), dir_errors_.end(), [&](const SpecFileError& o) {
      return o.path == e.path && o.message == e.message;
    });
    if (!known) LOG(WARNING) << "CDI spec directory " << e.path << ": " << e.message;
  }
  dir_errors_ = std::move(dir_errors);
  return sigs;
}

Registry::FileEntry Registry::Load(const FileSig& sig) {
  FileEntry entry;
  entry.sig = sig;
  auto fail = [&](std::string message) {
    entry.error = {sig.path, "", std::move(message)};
    return entry;
  };
  // O_NONBLOCK: the name was a regular file a moment ago, but a FIFO put in its place must not
  // hang every CreateContainer.
  UniqueFd fd(open(sig.path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd.valid()) return fail(absl::StrCat("CDI spec ", sig.path, ": ", ErrnoText(errno)));
  struct stat st;
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return fail(absl::StrCat("CDI spec ", sig.path, ": not a regular file"));
  }
  // What was read is what the signature describes; a change during the read shows next time.
  entry.sig.size = st.st_size;
  entry.sig.mtime_ns = Nanos(st.st_mtim);
  entry.sig.ctime_ns = Nanos(st.st_ctim);
  entry.sig.ino = st.st_ino;
  entry.sig.dev = st.st_dev;
  if (static_cast<size_t>(st.st_size) > kMaxSpecFileBytes) {
    return fail(absl::StrCat("CDI spec ", sig.path, ": larger than ", kMaxSpecFileBytes, " bytes"));
  }
  std::string text;
  text.resize(kMaxSpecFileBytes + 1);
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(absl::StrCat("CDI spec ", sig.path, ": ", ErrnoText(errno)));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > kMaxSpecFileBytes) {
    return fail(absl::StrCat("CDI spec ", sig.path, ": larger than ", kMaxSpecFileBytes, " bytes"));
  }
  text.resize(got);
  SpecFormat format = Extension(sig.path) == ".json" ? SpecFormat::kJson : SpecFormat::kYaml;
  absl::StatusOr<Spec> spec = ParseSpec(text, format, sig.path);
  if (!spec.ok()) {
    entry.error = {sig.path, "", std::string(spec.status().message())};
    // Which kind the broken file meant, if it says, so a miss on that kind can name it.
    absl::StatusOr<json> root =
        format == SpecFormat::kJson ? ParseJsonText(text) : YamlToJson(text);
    if (root.ok() && root->is_object()) {
      for (const auto& [k, v] : root->items()) {
        if (absl::EqualsIgnoreCase(k, "kind") && v.is_string() &&
            v.get_ref<const std::string&>().size() <= kMaxVendorBytes + kMaxClassBytes + 1) {
          entry.error.kind = v.get<std::string>();
        }
      }
    }
    return entry;
  }
  spec->priority = sig.priority;
  entry.spec = std::make_shared<const Spec>(*std::move(spec));
  return entry;
}

void Registry::RefreshLocked() {
  std::vector<FileSig> sigs = ScanLocked();
  bool same = scanned_ && sigs.size() == files_.size();
  for (size_t i = 0; same && i < sigs.size(); ++i) same = sigs[i] == files_[i].sig;
  if (same) return;
  std::vector<FileEntry> files;
  files.reserve(sigs.size());
  for (const FileSig& sig : sigs) {
    auto old = std::find_if(files_.begin(), files_.end(),
                            [&](const FileEntry& e) { return e.sig == sig; });
    if (old != files_.end()) {
      files.push_back(std::move(*old));
      continue;
    }
    FileEntry entry = Load(sig);
    if (entry.spec == nullptr) LOG(WARNING) << entry.error.message;
    files.push_back(std::move(entry));
  }
  files_ = std::move(files);
  scanned_ = true;
  RebuildIndexLocked();
}

void Registry::RebuildIndexLocked() {
  struct Slot {
    DeviceRef ref;
    int priority = 0;
    std::string conflict;  // set when two files of one directory define the name
  };
  std::map<std::string, Slot> slots;
  std::vector<SpecFileError> conflict_errors;
  for (const FileEntry& f : files_) {
    if (f.spec == nullptr) continue;
    for (const Device& d : f.spec->devices) {
      std::string name = absl::StrCat(f.spec->kind, "=", d.name);
      auto [it, fresh] = slots.try_emplace(name);
      Slot& slot = it->second;
      if (!fresh && slot.priority == f.sig.priority) {
        std::string other = slot.ref.spec->path;
        slot.conflict = absl::StrCat("defined in both ", other, " and ", f.spec->path);
        std::string message = absl::StrCat("CDI device ", name, " is ", slot.conflict,
                                           " (same directory): neither is used");
        conflict_errors.push_back({other, f.spec->kind, message});
        conflict_errors.push_back({f.spec->path, f.spec->kind, message});
        LOG(WARNING) << message;
        continue;
      }
      // Fresh, or a later directory: it wins, over a conflict below it too.
      slot = Slot{{f.spec, &d}, f.sig.priority, ""};
    }
  }
  devices_.clear();
  conflicts_.clear();
  for (auto& [name, slot] : slots) {
    if (slot.conflict.empty()) {
      devices_.emplace(name, std::move(slot.ref));
    } else {
      conflicts_.emplace(name, slot.conflict);
    }
  }
  conflict_errors_ = std::move(conflict_errors);
}

absl::StatusOr<std::vector<ResolvedDevice>> Registry::Resolve(
    const std::vector<std::string>& devices) {
  if (devices.size() > kMaxRequestedDevices) {
    return absl::InvalidArgumentError(
        absl::StrCat("more than ", kMaxRequestedDevices, " CDI devices requested"));
  }
  std::vector<QualifiedName> wanted;
  std::set<std::string> seen;
  for (const std::string& d : devices) {
    absl::StatusOr<QualifiedName> q = ParseQualifiedName(d);
    if (!q.ok()) return q.status();
    if (seen.insert(d).second) wanted.push_back(*std::move(q));
  }
  std::vector<ResolvedDevice> out;
  if (wanted.empty()) return out;

  absl::MutexLock lock(&mu_);
  RefreshLocked();
  std::vector<std::string> misses;
  for (const QualifiedName& q : wanted) {
    std::string name = q.String();
    auto it = devices_.find(name);
    if (it != devices_.end()) {
      out.push_back({name, it->second.spec, it->second.device});
      continue;
    }
    std::string why;
    if (auto c = conflicts_.find(name); c != conflicts_.end()) {
      why = absl::StrCat("unusable CDI device ", Quote(name), ": ", c->second);
    } else {
      std::string kind = q.Kind();
      bool kind_known = std::any_of(files_.begin(), files_.end(), [&](const FileEntry& f) {
        return f.spec != nullptr && f.spec->kind == kind;
      });
      why = absl::StrCat("unknown CDI device ", Quote(name));
      if (!kind_known) absl::StrAppend(&why, " (no spec file defines kind ", Quote(kind), ")");
      // The broken files that may have meant to define it.
      std::vector<std::string> broken;
      for (const FileEntry& f : files_) {
        if (f.spec == nullptr && (f.error.kind.empty() || f.error.kind == kind)) {
          broken.push_back(f.error.message);
        }
      }
      if (!broken.empty()) {
        constexpr size_t kMaxNamed = 3;
        size_t more = broken.size() > kMaxNamed ? broken.size() - kMaxNamed : 0;
        broken.resize(std::min(broken.size(), kMaxNamed));
        absl::StrAppend(&why, "; spec files that could not be used: ", absl::StrJoin(broken, "; "));
        if (more > 0) absl::StrAppend(&why, "; and ", more, " more");
      }
    }
    misses.push_back(std::move(why));
  }
  if (!misses.empty()) {
    std::string dirs = absl::StrJoin(dirs_, ", ");
    return absl::InvalidArgumentError(
        absl::StrCat(absl::StrJoin(misses, "; "), " [CDI spec directories: ", dirs, "]"));
  }
  return out;
}

absl::Status Registry::InjectDevices(const std::vector<std::string>& devices,
                                     nlohmann::json* oci_spec) {
  if (devices.empty()) return absl::OkStatus();
  absl::StatusOr<std::vector<ResolvedDevice>> resolved = Resolve(devices);
  if (!resolved.ok()) return resolved.status();
  return ApplyDevices(*resolved, oci_spec);
}

std::vector<std::string> Registry::ListDevices() {
  absl::MutexLock lock(&mu_);
  RefreshLocked();
  std::vector<std::string> out;
  for (const auto& [name, ref] : devices_) out.push_back(name);
  return out;
}

std::vector<SpecFileError> Registry::Errors() {
  absl::MutexLock lock(&mu_);
  RefreshLocked();
  std::vector<SpecFileError> out = dir_errors_;
  for (const FileEntry& f : files_) {
    if (f.spec == nullptr) out.push_back(f.error);
  }
  out.insert(out.end(), conflict_errors_.begin(), conflict_errors_.end());
  return out;
}

}  // namespace berth::cdi
