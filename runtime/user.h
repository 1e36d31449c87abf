// Resolving a container's user: numeric or named, from the image's /etc/passwd and /etc/group.
#ifndef BERTH_RUNTIME_USER_H_
#define BERTH_RUNTIME_USER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::engine {

struct ResolvedUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;  // from /etc/group membership
  std::string home = "/";
};

struct UserRequest {
  // "uid", "name", "uid:gid", "name:group" (the image's USER), overridden by the fields below.
  std::string image_user;
  bool has_uid = false;
  int64_t uid = 0;
  std::string username;
  bool has_gid = false;
  int64_t gid = 0;
  std::vector<int64_t> supplemental_groups;
  // KEP-3619 Strict: only the primary gid and supplemental_groups, not the image's /etc/group
  // memberships of the user (Merge, the default, adds those).
  bool strict_supplemental_groups = false;
};

// Reads a file under `root` with every path component resolved inside it (openat2 RESOLVE_IN_ROOT),
// so a symlink in an image cannot make berth read a host file.
absl::StatusOr<std::string> ReadFileInRoot(const std::string& root, const std::string& path);

// Resolves against the files of `rootfs`; a named user absent from /etc/passwd is InvalidArgument.
absl::StatusOr<ResolvedUser> ResolveUser(const std::string& rootfs, const UserRequest& request);

// Parsers for the two files, exposed for tests.
struct PasswdEntry {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string home;
};
struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
};
std::vector<PasswdEntry> ParsePasswd(const std::string& content);
std::vector<GroupEntry> ParseGroup(const std::string& content);

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_USER_H_
