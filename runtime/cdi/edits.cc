// Applying CDI container edits to an OCI spec (berth's config.json as JSON): environment,
// device nodes and their cgroup rules, mounts, hooks and supplementary groups.
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "runtime/cdi/cdi.h"
#include "runtime/cdi/cdi_internal.h"

namespace berth::cdi {
namespace {

using internal::ErrnoText;
using internal::json;
using internal::kU32Max;
using internal::Quote;

// Lexically clean, for comparing mount destinations ("/a//b/" is "/a/b").
std::string CleanPath(absl::string_view p) {
  std::vector<absl::string_view> parts;
  for (absl::string_view part : absl::StrSplit(p, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  return absl::StrCat("/", absl::StrJoin(parts, "/"));
}

// Go's strings.Count(filepath.Clean(dst), "/"): "/" and "/a" are 1, "/a/b" 2.
size_t MountDepth(const json& m) {
  auto it = m.find("destination");
  if (it == m.end() || !it->is_string()) return 0;
  std::string clean = CleanPath(it->get_ref<const std::string&>());
  return std::count(clean.begin(), clean.end(), '/');
}

// The member `key` of object `parent`, created as `type` when missing or null.
absl::StatusOr<json*> Member(json& parent, const char* key, json::value_t type,
                             absl::string_view where) {
  json& v = parent[key];
  if (v.is_null()) v = json(type);
  if (v.type() != type) {
    return absl::InvalidArgumentError(absl::StrCat("OCI spec: ", where, " has the wrong type"));
  }
  return &v;
}

struct EditSource {
  std::string who;  // "CDI device vendor/class=name" or "CDI spec <path>"
  const ContainerEdits* edits;
};

// What lstat of a node says, filled into `d` as the CDI library does: a fully specified node
// (type, and major unless a FIFO) needs no host node; any other must exist and be a device.
absl::Status FillFromHost(const std::string& who, DeviceNode* d) {
  bool minimal = !d->type.empty() && (d->major != 0 || d->type == "p");
  std::string host = d->host_path.empty() ? d->path : d->host_path;
  struct stat st;
  if (lstat(host.c_str(), &st) != 0) {
    if (minimal) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": device node ", Quote(host), ": ", ErrnoText(errno)));
  }
  std::string host_type;
  if (S_ISCHR(st.st_mode)) {
    host_type = "c";
  } else if (S_ISBLK(st.st_mode)) {
    host_type = "b";
  } else if (S_ISFIFO(st.st_mode)) {
    host_type = "p";
  } else {
    if (minimal) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": ", Quote(host), " is not a device node"));
  }
  if (!d->file_mode) d->file_mode = st.st_mode & 07777;
  if (minimal) return absl::OkStatus();
  if (d->type.empty()) d->type = host_type;
  // "u" (unbuffered) is a character device to the kernel.
  bool same = d->type == host_type || (d->type == "u" && host_type == "c");
  if (!same) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": device node ", Quote(d->path),
                                                   " has type ", d->type, " but ", Quote(host),
                                                   " is of type ", host_type));
  }
  if (d->type != "p" && d->major == 0) {
    d->major = major(st.st_rdev);
    d->minor = minor(st.st_rdev);
  }
  return absl::OkStatus();
}

absl::Status ApplyEdits(const std::vector<EditSource>& sources, json& spec) {
  if (!spec.is_object()) return absl::InvalidArgumentError("OCI spec is not an object");
  bool touches_process = false, touches_linux = false;
  for (const auto& s : sources) {
    touches_process |= !s.edits->env.empty() || !s.edits->additional_gids.empty();
    touches_linux |= !s.edits->device_nodes.empty();
  }
  json* process = nullptr;
  if (touches_process) {
    absl::StatusOr<json*> p = Member(spec, "process", json::value_t::object, "process");
    if (!p.ok()) return p.status();
    process = *p;
  }
  json* lx = nullptr;
  if (touches_linux) {
    absl::StatusOr<json*> l = Member(spec, "linux", json::value_t::object, "linux");
    if (!l.ok()) return l.status();
    lx = *l;
  }

  // Environment: by key, in place when the key is already set.
  std::map<std::string, size_t> env_index;
  json* env = nullptr;
  for (const auto& s : sources) {
    for (const std::string& entry : s.edits->env) {
      if (env == nullptr) {
        absl::StatusOr<json*> e = Member(*process, "env", json::value_t::array, "process.env");
        if (!e.ok()) return e.status();
        env = *e;
        for (size_t i = 0; i < env->size(); ++i) {
          if ((*env)[i].is_string()) {
            const std::string& v = (*env)[i].get_ref<const std::string&>();
            env_index[v.substr(0, v.find('='))] = i;
          }
        }
      }
      std::string key = entry.substr(0, entry.find('='));
      auto it = env_index.find(key);
      if (it != env_index.end()) {
        (*env)[it->second] = entry;
      } else {
        env_index[key] = env->size();
        env->push_back(entry);
      }
    }
  }

  // Device nodes and their cgroup rules.
  for (const auto& s : sources) {
    for (DeviceNode d : s.edits->device_nodes) {
      if (absl::Status st = FillFromHost(s.who, &d); !st.ok()) return st;
      if (!d.uid || !d.gid) {
        // As the CDI library: a node belongs to the container's user unless the spec says.
        auto id = [&](const char* k) -> std::optional<uint32_t> {
          auto proc = spec.find("process");
          if (proc == spec.end() || !proc->is_object()) return {};
          auto user = proc->find("user");
          if (user == proc->end() || !user->is_object()) return {};
          auto v = user->find(k);
          if (v == user->end() || !v->is_number_integer()) return {};
          int64_t i =
              v->is_number_unsigned() && v->get<uint64_t>() > kU32Max ? 0 : v->get<int64_t>();
          if (i <= 0 || i > kU32Max) return {};
          return static_cast<uint32_t>(i);
        };
        if (!d.uid) d.uid = id("uid");
        if (!d.gid) d.gid = id("gid");
      }
      json node = {{"path", d.path}, {"type", d.type}};
      if (d.type != "p") {
        node["major"] = d.major;
        node["minor"] = d.minor;
      }
      if (d.file_mode) node["fileMode"] = *d.file_mode;
      if (d.uid) node["uid"] = *d.uid;
      if (d.gid) node["gid"] = *d.gid;
      absl::StatusOr<json*> devices = Member(*lx, "devices", json::value_t::array, "linux.devices");
      if (!devices.ok()) return devices.status();
      json kept = json::array();
      for (json& existing : **devices) {
        if (!(existing.is_object() && existing.value("path", json()) == d.path)) {
          kept.push_back(std::move(existing));
        }
      }
      kept.push_back(std::move(node));
      **devices = std::move(kept);
      if (d.type == "p" || d.permissions == "none") continue;
      absl::StatusOr<json*> resources =
          Member(*lx, "resources", json::value_t::object, "linux.resources");
      if (!resources.ok()) return resources.status();
      absl::StatusOr<json*> rules =
          Member(**resources, "devices", json::value_t::array, "linux.resources.devices");
      if (!rules.ok()) return rules.status();
      (*rules)->push_back({{"allow", true},
                           {"type", d.type == "u" ? "c" : d.type},
                           {"major", d.major},
                           {"minor", d.minor},
                           {"access", d.permissions.empty() ? "rwm" : d.permissions}});
    }
  }

  // Mounts: one per destination, then parents before children.
  bool mounted = false;
  for (const auto& s : sources) {
    for (const Mount& m : s.edits->mounts) {
      absl::StatusOr<json*> mounts = Member(spec, "mounts", json::value_t::array, "mounts");
      if (!mounts.ok()) return mounts.status();
      std::string dest = CleanPath(m.container_path);
      json kept = json::array();
      for (json& existing : **mounts) {
        bool same = existing.is_object() && existing.contains("destination") &&
                    existing["destination"].is_string() &&
                    CleanPath(existing["destination"].get_ref<const std::string&>()) == dest;
        if (!same) kept.push_back(std::move(existing));
      }
      json mount = {{"destination", m.container_path}, {"source", m.host_path}};
      if (!m.type.empty()) mount["type"] = m.type;
      if (!m.options.empty()) mount["options"] = m.options;
      kept.push_back(std::move(mount));
      **mounts = std::move(kept);
      mounted = true;
    }
  }
  if (mounted) {
    json& mounts = spec["mounts"];
    std::vector<json> sorted(std::make_move_iterator(mounts.begin()),
                             std::make_move_iterator(mounts.end()));
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const json& a, const json& b) { return MountDepth(a) < MountDepth(b); });
    mounts = json(std::move(sorted));
  }

  // Hooks, appended per stage.
  for (const auto& s : sources) {
    for (const Hook& h : s.edits->hooks) {
      absl::StatusOr<json*> hooks = Member(spec, "hooks", json::value_t::object, "hooks");
      if (!hooks.ok()) return hooks.status();
      absl::StatusOr<json*> stage = Member(**hooks, h.hook_name.c_str(), json::value_t::array,
                                           absl::StrCat("hooks.", h.hook_name));
      if (!stage.ok()) return stage.status();
      json hook = {{"path", h.path}};
      if (!h.args.empty()) hook["args"] = h.args;
      if (!h.env.empty()) hook["env"] = h.env;
      if (h.timeout) hook["timeout"] = *h.timeout;
      (*stage)->push_back(std::move(hook));
    }
  }

  // Supplementary groups; 0 means nothing, as the spec says.
  for (const auto& s : sources) {
    for (uint32_t gid : s.edits->additional_gids) {
      if (gid == 0) continue;
      absl::StatusOr<json*> user = Member(*process, "user", json::value_t::object, "process.user");
      if (!user.ok()) return user.status();
      absl::StatusOr<json*> gids =
          Member(**user, "additionalGids", json::value_t::array, "process.user.additionalGids");
      if (!gids.ok()) return gids.status();
      if (std::find((*gids)->begin(), (*gids)->end(), json(gid)) == (*gids)->end()) {
        (*gids)->push_back(gid);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyDevices(const std::vector<ResolvedDevice>& devices, nlohmann::json* oci_spec) {
  if (oci_spec == nullptr) return absl::InvalidArgumentError("no OCI spec");
  std::vector<EditSource> sources;
  std::set<const Spec*> specs_seen;
  for (const ResolvedDevice& d : devices) {
    if (d.spec == nullptr || d.device == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("CDI device ", Quote(d.qualified_name), " is not resolved"));
    }
    if (specs_seen.insert(d.spec.get()).second) {
      sources.push_back({absl::StrCat("CDI spec ", d.spec->path), &d.spec->edits});
    }
    sources.push_back({absl::StrCat("CDI device ", d.qualified_name), &d.device->edits});
  }
  for (const EditSource& s : sources) {
    if (s.edits->has_intel_rdt) {
      return absl::UnimplementedError(
          absl::StrCat(s.who, ": intelRdt edits are not supported by berth"));
    }
    if (s.edits->has_net_devices) {
      return absl::UnimplementedError(
          absl::StrCat(s.who, ": netDevices edits are not supported by berth"));
    }
  }
  try {
    json edited = *oci_spec;
    if (absl::Status st = ApplyEdits(sources, edited); !st.ok()) return st;
    *oci_spec = std::move(edited);
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("CDI edits: ", absl::CHexEscape(e.what())));
  }
}

}  // namespace berth::cdi
