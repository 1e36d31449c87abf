// Socket path preparation: a connect() probe tells a stale socket from a live one.
#include "server/socket.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "util/fd.h"
#include "util/fs.h"

namespace berth::server {

absl::StatusOr<std::string> SocketPath(const std::string& listen) {
  constexpr absl::string_view kPrefix = "unix://";
  if (!absl::StartsWith(listen, kPrefix) || listen.size() <= kPrefix.size() + 1 ||
      listen[kPrefix.size()] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address \"", listen, "\" is not unix:///absolute/path"));
  }
  std::string path = listen.substr(kPrefix.size());
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path \"", path, "\" is too long"));
  }
  return path;
}

absl::Status PrepareSocketPath(const std::string& path) {
  std::string dir = path.substr(0, path.rfind('/'));
  if (!dir.empty()) {
    if (absl::Status st = MakeDirs(dir, 0711); !st.ok()) return st;
  }
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return absl::OkStatus();
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists and is not a socket: refusing to replace it"));
  }
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("another process is serving on ", path, " (is berthd already running?)"));
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::InternalError(absl::StrCat("removing stale socket ", path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace berth::server
