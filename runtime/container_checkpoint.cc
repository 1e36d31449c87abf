// CheckpointContainer: CRIU dump, writable layer and metadata into an archive.
#include <climits>

#include "runtime/engine_internal.h"

namespace berth::engine {

namespace {

// The archive goes to `location` by way of a temporary file beside it (WriteTar's
// "<name>.tmp-<8 hex>"), so its directory must exist and its name leave room for the suffix.
// Checked before CRIU dumps anything: a location that cannot be written is the caller's mistake,
// answered at once, not an internal error after the dump.
absl::Status CheckCheckpointLocation(const std::string& location) {
  const auto bad = [&location](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("location \"", location, "\" ", why));
  };
  if (location.empty() || location[0] != '/') return bad("is not an absolute path");
  if (location.find('\0') != std::string::npos) return bad("contains a NUL byte");
  const std::filesystem::path path(location);
  const std::string name = path.filename().string();
  if (name.empty() || name == "." || name == "..") return bad("does not name a file");
  constexpr size_t kTmpSuffix = sizeof(".tmp-12345678") - 1;
  if (name.size() + kTmpSuffix > NAME_MAX || location.size() + kTmpSuffix >= PATH_MAX) {
    return bad("is too long");
  }
  const std::string dir = path.parent_path().string();
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("location \"", location, "\": its directory ",
                                                      dir, " does not exist or is no directory"));
  }
  if (lstat(location.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("location \"", location, "\" is a directory"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Engine::CheckpointContainer(const std::string& id, const std::string& location,
                                         int64_t timeout_seconds) {
  if (timeout_seconds < 0) return absl::InvalidArgumentError("timeout must not be negative");
  if (absl::Status st = CheckCheckpointLocation(location); !st.ok()) return st;
  absl::StatusOr<ContainerView> c = GetContainer(id);
  if (!c.ok()) return c.status();
  if (absl::Status st = EnsureState(**c, Operation::kCheckpoint); !st.ok()) return st;
  absl::StatusOr<std::string> criu = criu_.Find();
  if (!criu.ok()) return criu.status();
  const std::string cid = (*c)->config().id();
  const std::string dir =
      absl::StrCat(options_.state_dir, "/exec/checkpoint-", NewId().substr(0, 12));
  const std::string images = absl::StrCat(dir, "/", kCheckpointImagesDir);
  if (absl::Status st = MakeDirs(images, 0700); !st.ok()) return st;
  auto cleanup = RemoveWhenDone(dir);
  const int64_t at = NowNs();
  if (absl::Status st = RuntimeOf((*c)->config())
                            ->Checkpoint({.id = cid,
                                          .criu_path = *criu,
                                          .image_path = images,
                                          .timeout = absl::Seconds(timeout_seconds)});
      !st.ok()) {
    std::string criu_errors = CriuLogErrors(images + "/dump.log");
    if (criu_errors.empty()) return st;
    return absl::InternalError(absl::StrCat(st.message(), " (CRIU: ", criu_errors, ")"));
  }
  // The writable layer goes along: the restored processes expect the files they left behind.
  // The container keeps running meanwhile (as with CRI-O), so late writes may be missed.
  if ((*c)->config().overlay_rootfs() && images_ != nullptr) {
    absl::StatusOr<std::string> upper = images_->WritableLayerDir(cid);
    if (!upper.ok()) return upper.status();
    if (absl::Status st = WriteRootfsDiff(*upper, absl::StrCat(dir, "/", kCheckpointRootfsDiff));
        !st.ok()) {
      return st;
    }
  }
  if (absl::Status st = WriteCheckpointMetadata(**c, at, dir); !st.ok()) return st;
  return WriteCheckpointArchive(dir, location);
}

}  // namespace berth::engine
