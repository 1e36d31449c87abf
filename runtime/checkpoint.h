// Checkpoint archives (what CheckpointContainer writes, what a restore reads back); CRIU itself is
// runtime/criu.h.
//
// An archive is a gzip'ed tar laid out as CRI-O's, plus berth's own record of the container:
//   checkpoint/       CRIU's images from `runc checkpoint`
//   config.dump       JSON: what was checkpointed (berthCheckpointVersion, id, name, image, times)
//   spec.dump         the OCI config.json the container ran with
//   container.pb      berth's record (berth.v1.Container): the CRI config and the image
//   rootfs-diff.tar   the container's writable layer as an OCI layer tar (".wh." whiteouts)
#ifndef BERTH_RUNTIME_CHECKPOINT_H_
#define BERTH_RUNTIME_CHECKPOINT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/berth/v1/records.pb.h"
#include "proto/runtime/v1/api.pb.h"
#include "runtime/criu.h"  // CriuProbe, CriuLogErrors
#include "util/fd.h"

namespace berth::engine {

inline constexpr char kCheckpointImagesDir[] = "checkpoint";
inline constexpr char kCheckpointConfigDump[] = "config.dump";
inline constexpr char kCheckpointSpecDump[] = "spec.dump";
inline constexpr char kCheckpointRecord[] = "container.pb";
inline constexpr char kCheckpointRootfsDiff[] = "rootfs-diff.tar";
inline constexpr int kCheckpointFormatVersion = 1;

// What an archive says about the container it holds, read without unpacking it.
struct CheckpointArchive {
  std::string path;
  berth::v1::Container container;  // the checkpointed container's record
  std::string record_bytes;        // container.pb as stored: recognises the archive once unpacked
  std::string spec;                // spec.dump
  int64_t checkpointed_at_ns = 0;
  bool has_rootfs_diff = false;
  // The archive as ReadCheckpointArchive opened it: UnpackCheckpointArchive reads this, never
  // the path again, so another file renamed over the path later is never looked at.
  std::shared_ptr<const UniqueFd> fd;
};

// Whether a CreateContainer image names a checkpoint archive instead of an image: an absolute
// path, which no image reference is (CRI-O takes config.image.image the same way).
bool IsCheckpointArchiveRef(absl::string_view image);

// Opens the archive (O_NOFOLLOW: the path must name a regular file, not a symlink to one) and
// reads and checks its metadata. InvalidArgument naming `field` when the file is missing or
// unreadable, is not a tar, holds entries other than the layout above (absolute or ".." names,
// links, devices, duplicates), is larger than berth restores (bytes or entries, counted as the
// stream is decompressed) or is not a berth checkpoint.
absl::StatusOr<CheckpointArchive> ReadCheckpointArchive(
    const std::string& path, absl::string_view field = "config.image.image");

// Unpacks `archive` from the descriptor ReadCheckpointArchive opened into `dest` (an existing,
// empty directory of berth's), checking every entry again as it goes: only files (0600) and
// directories (0700) are made, never through a symlink, never outside `dest`. InvalidArgument
// when the archive no longer passes the checks or no longer holds the metadata that was read.
absl::Status UnpackCheckpointArchive(const CheckpointArchive& archive, const std::string& dest,
                                     absl::string_view field = "config.image.image");

// Unpacks the rootfs-diff.tar of an unpacked archive into a new container's writable layer
// (`upper_dir`, created if missing, empty) before its overlay is mounted, with the layer
// unpacker's rules. InvalidArgument if it holds device nodes, FIFOs or sockets, which
// WriteRootfsDiff never writes.
absl::Status UnpackRootfsDiff(const CheckpointArchive& archive, const std::string& unpacked_dir,
                              const std::string& upper_dir,
                              absl::string_view field = "config.image.image");

// Writes config.dump, spec.dump and container.pb of `container` into `dir`.
absl::Status WriteCheckpointMetadata(const berth::v1::Container& container,
                                     int64_t checkpointed_at_ns, const std::string& dir);

// Writes an overlayfs upper directory as an OCI layer tar: 0/0 character devices become ".wh."
// files, opaque directories get ".wh..wh..opq", trusted.overlay.* xattrs are dropped, holes of
// sparse files stay holes. This is what images::UnpackLayer turns back into an upper directory.
// The container may still be running: the walk goes by descriptors from `upper_dir` down and
// never follows a symlink, so nothing outside `upper_dir` is ever read. Sockets are left out
// (CRIU binds them again); FailedPrecondition naming the path for FIFOs and device nodes (berth
// does not checkpoint them), mount points, and trees beyond what a restore accepts.
absl::Status WriteRootfsDiff(const std::string& upper_dir, const std::string& tar_path);

// Archives the layout above from `dir` into `location` (gzip'ed tar) through a temporary file
// beside it, renamed into place when complete.
absl::Status WriteCheckpointArchive(const std::string& dir, const std::string& location);

// The CRI config a restored container runs with: the request's, but for what the checkpointed
// process was (image, command, args, envs, working_dir), which the archive supplies. Mounts,
// devices, log path, annotations, linux resources and security context (privileges,
// namespaces) come only from the request, never from the archive; the mounts are the request's
// at the container paths the checkpointed container had mounts at. See checkpoint.cc for why.
runtime::v1::ContainerConfig MergeRestoreConfig(const runtime::v1::ContainerConfig& checkpointed,
                                                const runtime::v1::ContainerConfig& request);

// InvalidArgument naming config.mounts when the request lacks a mount at a container path the
// checkpointed container had one at (CRIU restores exactly those mounts, as in CRI-O).
absl::Status CheckRestoreMounts(const runtime::v1::ContainerConfig& checkpointed,
                                const runtime::v1::ContainerConfig& request);

// A restored container that StartContainer has not restored yet: runc does not know it.
bool AwaitingRestore(const berth::v1::Container& container);

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_CHECKPOINT_H_
