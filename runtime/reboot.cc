// The boot marker (state dir) and the clean-shutdown marker (root), read once at start.
#include "runtime/reboot.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "util/fd.h"
#include "util/fs.h"

namespace berth::engine {
namespace {

// Whether dir holds any entry but . and .. (absent: no).
bool HasEntries(const std::string& dir) {
  UniqueDir d(opendir(dir.c_str()));
  if (!d) return false;
  while (dirent* e = readdir(d.get())) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) return true;
  }
  return false;
}

absl::Status SyncDir(const std::string& dir) {
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return Errno(absl::StrCat("opening ", dir));
  if (fsync(fd.get()) != 0) return Errno(absl::StrCat("fsync ", dir));
  return absl::OkStatus();
}

}  // namespace

std::string BootMarkerPath(const BootFiles& files) {
  return absl::StrCat(files.state_dir, "/boot-id");
}

std::string CleanShutdownPath(const BootFiles& files) {
  return absl::StrCat(files.root, "/clean-shutdown");
}

absl::StatusOr<BootCheck> CheckBoot(const BootFiles& files) {
  BootCheck out;
  if (absl::StatusOr<std::string> id = ReadFile(files.kernel_boot_id); id.ok()) {
    out.boot_id = std::string(absl::StripAsciiWhitespace(*id));
  }
  absl::StatusOr<std::string> marker = ReadFile(BootMarkerPath(files));
  if (marker.ok()) {
    const std::string recorded(absl::StripAsciiWhitespace(*marker));
    if (!out.boot_id.empty() && recorded != out.boot_id) {
      out.rebooted = true;
      out.reason = absl::StrCat("the node rebooted: the state dir ", files.state_dir,
                                " was written in boot ", recorded, ", this is boot ", out.boot_id);
    }
  } else if (absl::IsNotFound(marker.status())) {
    if (HasEntries(absl::StrCat(files.state_dir, "/runc"))) {
      // runc still knows containers: this state survived, a berthd without markers wrote it.
    } else {
      out.rebooted = true;
      out.reason = absl::StrCat("the state dir ", files.state_dir,
                                " has no boot marker and no runc state: the node rebooted or "
                                "the dir was emptied");
    }
  } else {
    return marker.status();
  }
  const std::string clean = CleanShutdownPath(files);
  out.clean_shutdown = PathExists(clean);
  if (out.clean_shutdown) {
    if (unlink(clean.c_str()) != 0 && errno != ENOENT)
      return Errno(absl::StrCat("removing ", clean));
    if (absl::Status st = SyncDir(files.root); !st.ok()) return st;
  }
  return out;
}

absl::Status RecordBoot(const BootFiles& files, const std::string& boot_id) {
  // Without a kernel boot id the marker still tells a state dir that survived from an empty one.
  return WriteFileAtomic(BootMarkerPath(files),
                         absl::StrCat(boot_id.empty() ? "unknown" : boot_id, "\n"), 0644);
}

absl::Status RecordCleanShutdown(const BootFiles& files) {
  if (absl::Status st = WriteFileAtomic(CleanShutdownPath(files), "clean\n", 0644, /*sync=*/true);
      !st.ok()) {
    return st;
  }
  return SyncDir(files.root);
}

}  // namespace berth::engine
