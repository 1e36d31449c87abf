// Image volumes: resolve, mount read-only, bind from the bundle.
#include "runtime/image_volumes.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "util/fd.h"

namespace berth::engine {

absl::StatusOr<std::string> ResolveInsideImage(const std::string& root, const std::string& sub,
                                               const std::string& field) {
  if (sub.empty()) return root;
  const auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(field, " \"", sub, "\" ", why));
  };
  if (sub[0] == '/') return invalid("must be a relative path inside the image");
  if (sub.find('\0') != std::string::npos) return invalid("contains a NUL byte");
  if (sub.size() >= PATH_MAX) return invalid("is too long");
  for (absl::string_view part : absl::StrSplit(sub, '/')) {
    if (part == "..") return invalid("contains \"..\"");
  }
  UniqueFd dir(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) {
    return absl::InternalError(
        absl::StrCat("opening the image volume ", root, ": ", strerror(errno)));
  }
  // Links are followed as the container would see them, but only inside the image, and never
  // onto another filesystem or through /proc magic links.
  struct open_how how = {};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  UniqueFd fd(static_cast<int>(syscall(SYS_openat2, dir.get(), sub.c_str(), &how, sizeof(how))));
  if (!fd.valid()) {
    const int e = errno;
    if (e == ENOENT || e == ENOTDIR)
      return absl::NotFoundError(absl::StrCat(field, " \"", sub, "\" does not exist in the image"));
    if (e == EXDEV) return invalid("leads out of the image");
    if (e == ELOOP) return invalid("has too many levels of symbolic links");
    return absl::InternalError(absl::StrCat("resolving ", field, " \"", sub, "\": ", strerror(e)));
  }
  char buf[PATH_MAX];
  const std::string proc = absl::StrCat("/proc/self/fd/", fd.get());
  ssize_t n = readlink(proc.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) {
    return absl::InternalError(
        absl::StrCat("resolving ", field, " \"", sub, "\": ", strerror(errno)));
  }
  std::string real(buf, static_cast<size_t>(n));
  if (real != root && !absl::StartsWith(real, root + "/")) return invalid("leads out of the image");
  return real;
}

absl::Status PrepareImageVolumes(ImageProvider* images, const std::string& container_id,
                                 const std::string& volumes_dir,
                                 runtime::v1::ContainerConfig* config) {
  for (int i = 0; i < config->mounts_size(); ++i) {
    runtime::v1::Mount* m = config->mutable_mounts(i);
    if (m->image().image().empty()) {
      if (!m->image_sub_path().empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "mounts[", i, "].image_sub_path is set but mounts[", i, "].image names no image"));
      }
      continue;
    }
    const std::string ref = m->image().image();
    if (images == nullptr) return absl::FailedPreconditionError("berth has no image store");
    absl::StatusOr<berth::v1::Image> image = images->ResolveImage(ref);
    if (!image.ok()) {
      if (absl::IsNotFound(image.status())) {
        return absl::NotFoundError(
            absl::StrCat("mounts[", i, "].image \"", ref, "\" is not present: pull it first"));
      }
      return image.status();
    }
    const std::string target = absl::StrCat(volumes_dir, "/", i);
    if (absl::Status st = images->MountImageVolume(container_id, i, image->id(), target);
        !st.ok()) {
      return absl::Status(st.code(),
                          absl::StrCat("mounts[", i, "].image \"", ref, "\": ", st.message()));
    }
    absl::StatusOr<std::string> source = ResolveInsideImage(
        target, m->image_sub_path(), absl::StrCat("mounts[", i, "].image_sub_path"));
    if (!source.ok()) return source.status();
    // What kubelet documents for image volumes: read-only, and nothing in them runs.
    m->set_host_path(*source);
    m->set_readonly(true);
    for (const char* o : {"nosuid", "nodev", "noexec"}) m->add_mount_options(o);
  }
  return absl::OkStatus();
}

}  // namespace berth::engine
