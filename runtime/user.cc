// User and group resolution inside a container rootfs, never following links out of it.
#include "runtime/user.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "util/fd.h"

namespace berth::engine {
namespace {

// /etc/passwd and /etc/group of real images are kilobytes; a bigger one is an attack.
constexpr off_t kMaxImageFileBytes = 4 << 20;

}  // namespace

absl::StatusOr<std::string> ReadFileInRoot(const std::string& root, const std::string& path) {
  UniqueFd dir(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid())
    return absl::NotFoundError(absl::StrCat("rootfs ", root, ": ", strerror(errno)));
  open_how how{};
  // O_NONBLOCK: an image's /etc/passwd may be a FIFO, and a blocking open would wait forever.
  // Links are followed, but only inside the rootfs (RESOLVE_IN_ROOT).
  how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string rel = path;
  while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
  UniqueFd fd(static_cast<int>(syscall(SYS_openat2, dir.get(), rel.c_str(), &how, sizeof(how))));
  if (!fd.valid()) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, " not in rootfs"));
    return absl::InternalError(absl::StrCat("opening ", path, " in rootfs: ", strerror(errno)));
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) {
    return absl::InternalError(absl::StrCat("stat ", path, " in rootfs: ", strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " in the image is not a regular file"));
  }
  if (st.st_size > kMaxImageFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " in the image is larger than ", kMaxImageFileBytes, " bytes"));
  }
  std::string out;
  char buf[8192];
  ssize_t r;
  while ((r = read(fd.get(), buf, sizeof(buf))) > 0) {
    out.append(buf, r);
    if (out.size() > kMaxImageFileBytes) {
      return absl::InvalidArgumentError(absl::StrCat(path, " in the image is too large"));
    }
  }
  if (r < 0)
    return absl::InternalError(absl::StrCat("reading ", path, " in rootfs: ", strerror(errno)));
  return out;
}

std::vector<PasswdEntry> ParsePasswd(const std::string& content) {
  std::vector<PasswdEntry> out;
  for (absl::string_view line : absl::StrSplit(content, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f = absl::StrSplit(line, ':');
    if (f.size() < 7) continue;
    PasswdEntry e;
    e.name = f[0];
    if (!absl::SimpleAtoi(f[2], &e.uid) || !absl::SimpleAtoi(f[3], &e.gid)) continue;
    e.home = f[5];
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<GroupEntry> ParseGroup(const std::string& content) {
  std::vector<GroupEntry> out;
  for (absl::string_view line : absl::StrSplit(content, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f = absl::StrSplit(line, ':');
    if (f.size() < 4) continue;
    GroupEntry e;
    e.name = f[0];
    if (!absl::SimpleAtoi(f[2], &e.gid)) continue;
    e.members = absl::StrSplit(f[3], ',', absl::SkipEmpty());
    out.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<ResolvedUser> ResolveUser(const std::string& rootfs, const UserRequest& req) {
  std::vector<PasswdEntry> passwd;
  std::vector<GroupEntry> groups;
  if (auto p = ReadFileInRoot(rootfs, "/etc/passwd"); p.ok()) passwd = ParsePasswd(*p);
  if (auto g = ReadFileInRoot(rootfs, "/etc/group"); g.ok()) groups = ParseGroup(*g);

  std::string user_part = req.image_user, group_part;
  if (size_t colon = user_part.find(':'); colon != std::string::npos) {
    group_part = user_part.substr(colon + 1);
    user_part = user_part.substr(0, colon);
  }
  if (req.has_uid) {
    user_part = absl::StrCat(req.uid);
    if (!req.has_gid) group_part.clear();
  } else if (!req.username.empty()) {
    user_part = req.username;
    if (!req.has_gid) group_part.clear();
  }

  if (user_part.empty()) user_part = "0";  // no USER in the image: root
  ResolvedUser out;
  const PasswdEntry* entry = nullptr;
  if (!user_part.empty()) {
    uint32_t uid;
    if (absl::SimpleAtoi(user_part, &uid)) {
      out.uid = uid;
      for (const auto& p : passwd) {
        if (p.uid == uid) {
          entry = &p;
          break;
        }
      }
    } else {
      for (const auto& p : passwd) {
        if (p.name == user_part) {
          entry = &p;
          break;
        }
      }
      if (!entry) {
        return absl::InvalidArgumentError(
            absl::StrCat("user \"", user_part, "\" is not in the image's /etc/passwd"));
      }
      out.uid = entry->uid;
    }
  }
  if (entry) {
    out.gid = entry->gid;
    if (!entry->home.empty()) out.home = entry->home;
  }
  if (req.has_gid) {
    out.gid = static_cast<uint32_t>(req.gid);
  } else if (!group_part.empty()) {
    uint32_t gid;
    if (absl::SimpleAtoi(group_part, &gid)) {
      out.gid = gid;
    } else {
      bool found = false;
      for (const auto& g : groups) {
        if (g.name == group_part) {
          out.gid = g.gid;
          found = true;
          break;
        }
      }
      if (!found) {
        return absl::InvalidArgumentError(
            absl::StrCat("group \"", group_part, "\" is not in the image's /etc/group"));
      }
    }
  }
  if (entry && !req.strict_supplemental_groups) {
    for (const auto& g : groups) {
      if (g.gid != out.gid &&
          std::find(g.members.begin(), g.members.end(), entry->name) != g.members.end()) {
        out.additional_gids.push_back(g.gid);
      }
    }
  }
  for (int64_t g : req.supplemental_groups) {
    uint32_t gid = static_cast<uint32_t>(g);
    if (std::find(out.additional_gids.begin(), out.additional_gids.end(), gid) ==
        out.additional_gids.end()) {
      out.additional_gids.push_back(gid);
    }
  }
  return out;
}

}  // namespace berth::engine
