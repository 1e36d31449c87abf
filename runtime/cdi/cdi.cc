// CDI spec files: strict parsing (JSON, YAML through JSON), name rules, the directory registry and
// the OCI spec edits.
#include "runtime/cdi/cdi.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "glog/logging.h"
#include "util/fd.h"
#include "yaml-cpp/yaml.h"

namespace berth::cdi {
namespace {

using json = nlohmann::json;

// Names and paths in messages come from files and requests: escaped and cut short.
std::string Quote(absl::string_view s) {
  constexpr size_t kMax = 160;
  std::string out = absl::StrCat("\"", absl::CHexEscape(s.substr(0, kMax)), "\"");
  if (s.size() > kMax) out += "...";
  return out;
}

std::string ErrnoText(int err) {
  char buf[128];
  return strerror_r(err, buf, sizeof(buf));  // the GNU form: returns the text
}

absl::Status Bad(absl::string_view where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

bool IsLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlnum(char c) { return IsLetter(c) || IsDigit(c); }

// Spec files are JSON, so config.json built from them must be valid UTF-8 too; refusing bad
// bytes here beats nlohmann replacing them later with U+FFFD in a path.
bool ValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      unsigned char cc = s[i + k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

// ---- versions --------------------------------------------------------------------------------

// Released spec versions berth reads, oldest first. 0.1.0 and 0.2.0 predate the current schema;
// 1.0.0 changed no field; 1.1.0 added netDevices and two intelRdt fields (refused when applied).
constexpr std::array<absl::string_view, 8> kVersions = {"0.3.0", "0.4.0", "0.5.0", "0.6.0",
                                                        "0.7.0", "0.8.0", "1.0.0", "1.1.0"};
enum VersionIndex { v030 = 0, v040, v050, v060, v070, v080, v100, v110 };

int FindVersion(absl::string_view v) {
  if (!v.empty() && v[0] == 'v') v.remove_prefix(1);
  for (size_t i = 0; i < kVersions.size(); ++i) {
    if (kVersions[i] == v) return static_cast<int>(i);
  }
  return -1;
}

// ---- names -----------------------------------------------------------------------------------

absl::Status CheckVendorOrClass(absl::string_view what, absl::string_view name, size_t max_len) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  if (name.size() > max_len) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", Quote(name), " is longer than ", max_len, " characters"));
  }
  if (!IsLetter(name[0])) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", Quote(name), " must start with a letter"));
  }
  for (size_t i = 1; i + 1 < name.size(); ++i) {
    char c = name[i];
    if (!IsAlnum(c) && c != '_' && c != '-' && c != '.') {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " ", Quote(name), " has an invalid character ", Quote(name.substr(i, 1))));
    }
  }
  if (!IsAlnum(name.back())) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", Quote(name), " must end with a letter or digit"));
  }
  return absl::OkStatus();
}

// The spec bounds the kind's prefix (a DNS subdomain) at 253 and its name at 63 characters; it
// sets no bound on device names, berth's 253 keeps messages and annotations sane.
constexpr size_t kMaxVendorBytes = 253;
constexpr size_t kMaxClassBytes = 63;
constexpr size_t kMaxDeviceNameBytes = 253;

// ---- the JSON the validator reads ------------------------------------------------------------

struct Ctx {
  bool yaml = false;  // scalars came from YAML: ints and bools read as strings where one is due
  int need = v030;    // the lowest cdiVersion the fields seen need
};

// The members of `obj`, matched to `known` case-insensitively as Go's encoding/json does (the
// spec's own example spells "additionalGIDs"). Null values count as absent, as in Go.
class Fields {
 public:
  static absl::StatusOr<Fields> Of(const json& obj, std::initializer_list<absl::string_view> known,
                                   const std::string& where) {
    if (!obj.is_object()) return Bad(where, "must be an object");
    Fields f;
    std::set<absl::string_view> seen;
    for (const auto& [key, value] : obj.items()) {
      absl::string_view match;
      for (absl::string_view k : known) {
        if (absl::EqualsIgnoreCase(k, key)) match = k;
      }
      if (match.empty()) return Bad(where, absl::StrCat("unknown field ", Quote(key)));
      if (!seen.insert(match).second) {
        return Bad(where, absl::StrCat("field ", Quote(match), " is given twice"));
      }
      if (!value.is_null()) f.values_.emplace_back(match, &value);
    }
    return f;
  }
  const json* Get(absl::string_view name) const {
    for (const auto& [k, v] : values_) {
      if (k == name) return v;
    }
    return nullptr;
  }

 private:
  std::vector<std::pair<absl::string_view, const json*>> values_;
};

std::string Join(const std::string& where, absl::string_view field) {
  return where.empty() ? std::string(field) : absl::StrCat(where, ".", field);
}
std::string Index(const std::string& where, size_t i) { return absl::StrCat(where, "[", i, "]"); }

absl::Status GetString(const Ctx& ctx, const json* v, const std::string& where, std::string* out) {
  if (v == nullptr) return absl::OkStatus();
  if (v->is_string()) {
    *out = v->get_ref<const std::string&>();
  } else if (ctx.yaml && v->is_number_integer()) {
    // sigs.k8s.io/yaml (the CDI library's reader) gives a string field an int's decimal form.
    *out = v->is_number_unsigned() ? std::to_string(v->get<uint64_t>())
                                   : std::to_string(v->get<int64_t>());
  } else if (ctx.yaml && v->is_boolean()) {
    *out = v->get<bool>() ? "true" : "false";
  } else {
    return Bad(where, "must be a string");
  }
  if (out->size() > kMaxStringBytes) {
    return Bad(where, absl::StrCat("is longer than ", kMaxStringBytes, " bytes"));
  }
  if (out->find('\0') != std::string::npos) return Bad(where, "contains a NUL byte");
  if (!ValidUtf8(*out)) return Bad(where, "is not valid UTF-8");
  return absl::OkStatus();
}

absl::Status GetStringList(const Ctx& ctx, const json* v, const std::string& where,
                           std::vector<std::string>* out) {
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_array()) return Bad(where, "must be a list of strings");
  if (v->size() > kMaxEditsPerList) {
    return Bad(where, absl::StrCat("has more than ", kMaxEditsPerList, " entries"));
  }
  out->reserve(v->size());
  for (size_t i = 0; i < v->size(); ++i) {
    std::string s;
    if (absl::Status st = GetString(ctx, &(*v)[i], Index(where, i), &s); !st.ok()) return st;
    out->push_back(std::move(s));
  }
  return absl::OkStatus();
}

absl::Status GetInt(const json* v, const std::string& where, int64_t min, int64_t max,
                    int64_t* out) {
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_number_integer()) return Bad(where, "must be an integer");
  if (v->is_number_unsigned()) {
    uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(max) || static_cast<int64_t>(u) < min) {
      return Bad(where, absl::StrCat("must be between ", min, " and ", max));
    }
    *out = static_cast<int64_t>(u);
    return absl::OkStatus();
  }
  int64_t i = v->get<int64_t>();
  if (i < min || i > max) return Bad(where, absl::StrCat("must be between ", min, " and ", max));
  *out = i;
  return absl::OkStatus();
}

constexpr int64_t kU32Max = std::numeric_limits<uint32_t>::max();

absl::Status GetU32(const json* v, const std::string& where, std::optional<uint32_t>* out) {
  if (v == nullptr) return absl::OkStatus();
  int64_t i = 0;
  if (absl::Status st = GetInt(v, where, 0, kU32Max, &i); !st.ok()) return st;
  *out = static_cast<uint32_t>(i);
  return absl::OkStatus();
}

absl::Status CheckAbsolute(const std::string& path, const std::string& where) {
  if (path.empty()) return Bad(where, "is required");
  if (path[0] != '/') return Bad(where, absl::StrCat(Quote(path), " is not an absolute path"));
  return absl::OkStatus();
}

absl::Status CheckEnv(const std::string& entry, const std::string& where) {
  size_t eq = entry.find('=');
  if (eq == std::string::npos || eq == 0) {
    return Bad(where, absl::StrCat(Quote(entry), " is not KEY=VALUE"));
  }
  return absl::OkStatus();
}

// Kubernetes' annotation-key rule (a qualified name, case ignored), as the CDI library applies.
bool IsDnsSubdomain(absl::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (absl::string_view label : absl::StrSplit(s, '.')) {
    if (label.empty() || label.size() > 63) return false;
    if (!IsAlnum(label.front()) || !IsAlnum(label.back())) return false;
    for (char c : label) {
      if (!(c >= 'a' && c <= 'z') && !IsDigit(c) && c != '-') return false;
    }
  }
  return true;
}

bool IsAnnotationKey(std::string key) {
  key = absl::AsciiStrToLower(key);
  absl::string_view name = key;
  size_t slash = name.find('/');
  if (slash != absl::string_view::npos) {
    if (!IsDnsSubdomain(name.substr(0, slash))) return false;
    name = name.substr(slash + 1);
  }
  if (name.empty() || name.size() > 63 || !IsAlnum(name.front()) || !IsAlnum(name.back())) {
    return false;
  }
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return IsAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

absl::Status CheckAnnotations(const Ctx& ctx, const json* v, const std::string& where,
                              bool* present) {
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_object()) return Bad(where, "must be a map of strings");
  size_t total = 0;
  for (const auto& [k, value] : v->items()) {
    std::string s;
    if (absl::Status st = GetString(ctx, &value, Join(where, Quote(k)), &s); !st.ok()) return st;
    if (!IsAnnotationKey(k)) return Bad(where, absl::StrCat("invalid key ", Quote(k)));
    total += k.size() + s.size();
  }
  if (total > 256 * 1024) return Bad(where, "are larger than 256 KiB");
  *present = !v->empty();
  return absl::OkStatus();
}

const std::set<absl::string_view> kHookNames = {"prestart",       "createRuntime", "createContainer",
                                               "startContainer", "poststart",     "poststop"};

bool IsBindMount(const Mount& m) {
  if (m.type.empty() || m.type == "bind" || m.type == "rbind" || m.type == "none") return true;
  return std::any_of(m.options.begin(), m.options.end(),
                     [](const std::string& o) { return o == "bind" || o == "rbind"; });
}

const json* CheckedList(const json* v, const std::string& where, absl::Status* st) {
  if (v == nullptr) return nullptr;
  if (!v->is_array()) {
    *st = Bad(where, "must be a list");
    return nullptr;
  }
  if (v->size() > kMaxEditsPerList) {
    *st = Bad(where, absl::StrCat("has more than ", kMaxEditsPerList, " entries"));
    return nullptr;
  }
  return v;
}

absl::Status ParseDeviceNode(Ctx& ctx, const json& v, const std::string& where, DeviceNode* d) {
  absl::StatusOr<Fields> f = Fields::Of(
      v, {"path", "hostPath", "type", "major", "minor", "fileMode", "permissions", "uid", "gid"},
      where);
  if (!f.ok()) return f.status();
  absl::Status st;
  if (st = GetString(ctx, f->Get("path"), Join(where, "path"), &d->path); !st.ok()) return st;
  if (st = CheckAbsolute(d->path, Join(where, "path")); !st.ok()) return st;
  if (st = GetString(ctx, f->Get("hostPath"), Join(where, "hostPath"), &d->host_path); !st.ok()) {
    return st;
  }
  if (!d->host_path.empty()) {
    ctx.need = std::max(ctx.need, int{v050});
    if (st = CheckAbsolute(d->host_path, Join(where, "hostPath")); !st.ok()) return st;
  }
  if (st = GetString(ctx, f->Get("type"), Join(where, "type"), &d->type); !st.ok()) return st;
  if (!d->type.empty() && d->type != "b" && d->type != "c" && d->type != "u" && d->type != "p") {
    return Bad(Join(where, "type"), absl::StrCat(Quote(d->type), " is not one of b, c, u, p"));
  }
  if (st = GetInt(f->Get("major"), Join(where, "major"), 0, kU32Max, &d->major); !st.ok()) return st;
  if (st = GetInt(f->Get("minor"), Join(where, "minor"), 0, kU32Max, &d->minor); !st.ok()) return st;
  if (const json* m = f->Get("fileMode")) {
    int64_t mode = 0;
    if (st = GetInt(m, Join(where, "fileMode"), 0, 07777, &mode); !st.ok()) return st;
    d->file_mode = static_cast<uint32_t>(mode);
  }
  if (st = GetString(ctx, f->Get("permissions"), Join(where, "permissions"), &d->permissions);
      !st.ok()) {
    return st;
  }
  if (d->permissions != "none" &&
      d->permissions.find_first_not_of("rwm") != std::string::npos) {
    return Bad(Join(where, "permissions"),
               absl::StrCat(Quote(d->permissions), " is not made of r, w, m (or \"none\")"));
  }
  if (st = GetU32(f->Get("uid"), Join(where, "uid"), &d->uid); !st.ok()) return st;
  return GetU32(f->Get("gid"), Join(where, "gid"), &d->gid);
}

absl::Status ParseMount(Ctx& ctx, const json& v, const std::string& where, Mount* m) {
  absl::StatusOr<Fields> f =
      Fields::Of(v, {"hostPath", "containerPath", "type", "options"}, where);
  if (!f.ok()) return f.status();
  absl::Status st;
  if (st = GetString(ctx, f->Get("hostPath"), Join(where, "hostPath"), &m->host_path); !st.ok()) {
    return st;
  }
  if (st = GetString(ctx, f->Get("containerPath"), Join(where, "containerPath"),
                     &m->container_path);
      !st.ok()) {
    return st;
  }
  if (st = GetString(ctx, f->Get("type"), Join(where, "type"), &m->type); !st.ok()) return st;
  if (!m->type.empty()) ctx.need = std::max(ctx.need, int{v040});
  if (st = GetStringList(ctx, f->Get("options"), Join(where, "options"), &m->options); !st.ok()) {
    return st;
  }
  if (st = CheckAbsolute(m->container_path, Join(where, "containerPath")); !st.ok()) return st;
  // A filesystem mount's source may be a name ("tmpfs"); a bind's is a host path.
  if (IsBindMount(*m)) return CheckAbsolute(m->host_path, Join(where, "hostPath"));
  if (m->host_path.empty()) return Bad(Join(where, "hostPath"), "is required");
  return absl::OkStatus();
}

absl::Status ParseHook(Ctx& ctx, const json& v, const std::string& where, Hook* h) {
  absl::StatusOr<Fields> f = Fields::Of(v, {"hookName", "path", "args", "env", "timeout"}, where);
  if (!f.ok()) return f.status();
  absl::Status st;
  if (st = GetString(ctx, f->Get("hookName"), Join(where, "hookName"), &h->hook_name); !st.ok()) {
    return st;
  }
  if (!kHookNames.contains(h->hook_name)) {
    return Bad(Join(where, "hookName"), absl::StrCat(Quote(h->hook_name), " is not an OCI hook"));
  }
  if (st = GetString(ctx, f->Get("path"), Join(where, "path"), &h->path); !st.ok()) return st;
  if (st = CheckAbsolute(h->path, Join(where, "path")); !st.ok()) return st;
  if (st = GetStringList(ctx, f->Get("args"), Join(where, "args"), &h->args); !st.ok()) return st;
  if (st = GetStringList(ctx, f->Get("env"), Join(where, "env"), &h->env); !st.ok()) return st;
  for (size_t i = 0; i < h->env.size(); ++i) {
    if (st = CheckEnv(h->env[i], Index(Join(where, "env"), i)); !st.ok()) return st;
  }
  if (const json* t = f->Get("timeout")) {
    int64_t timeout = 0;
    if (st = GetInt(t, Join(where, "timeout"), 1, std::numeric_limits<int32_t>::max(), &timeout);
        !st.ok()) {
      return st;
    }
    h->timeout = timeout;
  }
  return absl::OkStatus();
}

absl::Status ParseIntelRdt(Ctx& ctx, const json& v, const std::string& where) {
  absl::StatusOr<Fields> f = Fields::Of(
      v, {"closID", "l3CacheSchema", "memBwSchema", "schemata", "enableMonitoring"}, where);
  if (!f.ok()) return f.status();
  ctx.need = std::max(ctx.need, int{v070});
  std::string clos, l3, mb;
  std::vector<std::string> schemata;
  absl::Status st;
  if (st = GetString(ctx, f->Get("closID"), Join(where, "closID"), &clos); !st.ok()) return st;
  // The CLOS is a resctrl directory: a file name, or "/" for the root group.
  if (clos != "/" && (clos == "." || clos == ".." || clos.find_first_of("/\n") != std::string::npos)) {
    return Bad(Join(where, "closID"), absl::StrCat(Quote(clos), " is not a valid CLOS name"));
  }
  if (st = GetString(ctx, f->Get("l3CacheSchema"), Join(where, "l3CacheSchema"), &l3); !st.ok()) {
    return st;
  }
  if (st = GetString(ctx, f->Get("memBwSchema"), Join(where, "memBwSchema"), &mb); !st.ok()) {
    return st;
  }
  if (const json* s = f->Get("schemata")) {
    ctx.need = std::max(ctx.need, int{v110});
    if (st = GetStringList(ctx, s, Join(where, "schemata"), &schemata); !st.ok()) return st;
  }
  if (const json* m = f->Get("enableMonitoring")) {
    if (!m->is_boolean()) return Bad(Join(where, "enableMonitoring"), "must be true or false");
    if (m->get<bool>()) ctx.need = std::max(ctx.need, int{v110});
  }
  return absl::OkStatus();
}

absl::Status ParseNetDevices(Ctx& ctx, const json& list, const std::string& where) {
  std::set<std::string> hosts, names;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string w = Index(where, i);
    absl::StatusOr<Fields> f = Fields::Of(list[i], {"hostInterfaceName", "name"}, w);
    if (!f.ok()) return f.status();
    std::string host, name;
    absl::Status st;
    if (st = GetString(ctx, f->Get("hostInterfaceName"), Join(w, "hostInterfaceName"), &host);
        !st.ok()) {
      return st;
    }
    if (st = GetString(ctx, f->Get("name"), Join(w, "name"), &name); !st.ok()) return st;
    if (host.empty()) return Bad(Join(w, "hostInterfaceName"), "is required");
    if (name.empty()) return Bad(Join(w, "name"), "is required");
    if (!hosts.insert(host).second) {
      return Bad(w, absl::StrCat("host interface ", Quote(host), " is listed twice"));
    }
    if (!names.insert(name).second) {
      return Bad(w, absl::StrCat("interface name ", Quote(name), " is listed twice"));
    }
  }
  if (!list.empty()) ctx.need = std::max(ctx.need, int{v110});
  return absl::OkStatus();
}

absl::Status ParseEdits(Ctx& ctx, const json& v, const std::string& where, ContainerEdits* e) {
  absl::StatusOr<Fields> f = Fields::Of(v,
                                        {"env", "deviceNodes", "netDevices", "hooks", "mounts",
                                         "intelRdt", "additionalGids"},
                                        where);
  if (!f.ok()) return f.status();
  absl::Status st;
  if (st = GetStringList(ctx, f->Get("env"), Join(where, "env"), &e->env); !st.ok()) return st;
  for (size_t i = 0; i < e->env.size(); ++i) {
    if (st = CheckEnv(e->env[i], Index(Join(where, "env"), i)); !st.ok()) return st;
  }
  if (const json* l = CheckedList(f->Get("deviceNodes"), Join(where, "deviceNodes"), &st)) {
    e->device_nodes.resize(l->size());
    for (size_t i = 0; i < l->size(); ++i) {
      st = ParseDeviceNode(ctx, (*l)[i], Index(Join(where, "deviceNodes"), i), &e->device_nodes[i]);
      if (!st.ok()) return st;
    }
  }
  if (!st.ok()) return st;
  if (const json* l = CheckedList(f->Get("mounts"), Join(where, "mounts"), &st)) {
    e->mounts.resize(l->size());
    for (size_t i = 0; i < l->size(); ++i) {
      if (st = ParseMount(ctx, (*l)[i], Index(Join(where, "mounts"), i), &e->mounts[i]); !st.ok()) {
        return st;
      }
    }
  }
  if (!st.ok()) return st;
  if (const json* l = CheckedList(f->Get("hooks"), Join(where, "hooks"), &st)) {
    e->hooks.resize(l->size());
    for (size_t i = 0; i < l->size(); ++i) {
      if (st = ParseHook(ctx, (*l)[i], Index(Join(where, "hooks"), i), &e->hooks[i]); !st.ok()) {
        return st;
      }
    }
  }
  if (!st.ok()) return st;
  if (const json* l = CheckedList(f->Get("additionalGids"), Join(where, "additionalGids"), &st)) {
    for (size_t i = 0; i < l->size(); ++i) {
      std::optional<uint32_t> gid;
      if (st = GetU32(&(*l)[i], Index(Join(where, "additionalGids"), i), &gid); !st.ok()) return st;
      if (!gid) return Bad(Index(Join(where, "additionalGids"), i), "must be an integer");
      e->additional_gids.push_back(*gid);
    }
    if (!l->empty()) ctx.need = std::max(ctx.need, int{v070});
  }
  if (!st.ok()) return st;
  if (const json* r = f->Get("intelRdt")) {
    if (st = ParseIntelRdt(ctx, *r, Join(where, "intelRdt")); !st.ok()) return st;
    e->has_intel_rdt = true;
  }
  if (const json* l = CheckedList(f->Get("netDevices"), Join(where, "netDevices"), &st)) {
    if (st = ParseNetDevices(ctx, *l, Join(where, "netDevices")); !st.ok()) return st;
    e->has_net_devices = !l->empty();
  }
  return st;
}

absl::StatusOr<Spec> SpecFromJson(const json& root, bool from_yaml) {
  Ctx ctx;
  ctx.yaml = from_yaml;
  absl::StatusOr<Fields> f =
      Fields::Of(root, {"cdiVersion", "kind", "annotations", "devices", "containerEdits"}, "spec");
  if (!f.ok()) return f.status();
  Spec spec;
  absl::Status st;
  if (st = GetString(ctx, f->Get("cdiVersion"), "cdiVersion", &spec.version); !st.ok()) return st;
  if (spec.version.empty()) return Bad("cdiVersion", "is required");
  int version = FindVersion(spec.version);
  if (version < 0) {
    return Bad("cdiVersion", absl::StrCat(Quote(spec.version), " is not a CDI version berth reads (",
                                          kVersions.front(), " to ", kVersions.back(), ")"));
  }
  if (st = GetString(ctx, f->Get("kind"), "kind", &spec.kind); !st.ok()) return st;
  if (spec.kind.empty()) return Bad("kind", "is required");
  size_t slash = spec.kind.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == spec.kind.size()) {
    return Bad("kind", absl::StrCat(Quote(spec.kind), " is not vendor.com/class"));
  }
  spec.vendor = spec.kind.substr(0, slash);
  spec.cls = spec.kind.substr(slash + 1);
  if (st = ValidateVendorName(spec.vendor); !st.ok()) return Bad("kind", st.message());
  if (st = ValidateClassName(spec.cls); !st.ok()) return Bad("kind", st.message());
  if (spec.cls.find('.') != std::string::npos) ctx.need = std::max(ctx.need, int{v060});
  bool annotated = false;
  if (st = CheckAnnotations(ctx, f->Get("annotations"), "annotations", &annotated); !st.ok()) {
    return st;
  }
  if (annotated) ctx.need = std::max(ctx.need, int{v060});
  if (const json* e = f->Get("containerEdits")) {
    if (st = ParseEdits(ctx, *e, "containerEdits", &spec.edits); !st.ok()) return st;
  }
  const json* devices = f->Get("devices");
  if (devices == nullptr || !devices->is_array() || devices->empty()) {
    return Bad("devices", "must list at least one device");
  }
  if (devices->size() > kMaxDevicesPerSpec) {
    return Bad("devices", absl::StrCat("has more than ", kMaxDevicesPerSpec, " entries"));
  }
  std::set<std::string> names;
  spec.devices.resize(devices->size());
  for (size_t i = 0; i < devices->size(); ++i) {
    std::string where = Index("devices", i);
    Device& d = spec.devices[i];
    absl::StatusOr<Fields> df =
        Fields::Of((*devices)[i], {"name", "annotations", "containerEdits"}, where);
    if (!df.ok()) return df.status();
    if (st = GetString(ctx, df->Get("name"), Join(where, "name"), &d.name); !st.ok()) return st;
    if (st = ValidateDeviceName(d.name); !st.ok()) return Bad(Join(where, "name"), st.message());
    if (IsDigit(d.name[0])) ctx.need = std::max(ctx.need, int{v050});
    if (!names.insert(d.name).second) {
      return Bad(Join(where, "name"), absl::StrCat("device ", Quote(d.name), " is defined twice"));
    }
    bool dev_annotated = false;
    if (st = CheckAnnotations(ctx, df->Get("annotations"), Join(where, "annotations"),
                              &dev_annotated);
        !st.ok()) {
      return st;
    }
    if (dev_annotated) ctx.need = std::max(ctx.need, int{v060});
    const json* e = df->Get("containerEdits");
    if (e != nullptr) {
      if (st = ParseEdits(ctx, *e, Join(where, "containerEdits"), &d.edits); !st.ok()) return st;
    }
    if (d.edits.empty()) {
      return Bad(where, absl::StrCat("device ", Quote(d.name), " has no containerEdits"));
    }
  }
  if (ctx.need > version) {
    return Bad("cdiVersion", absl::StrCat(Quote(spec.version), " is too old for the fields used (",
                                          kVersions[ctx.need], " or later needed)"));
  }
  return spec;
}

// nlohmann's parser keeps its own stack, but everything after it recurses: bound the depth
// before parsing, counting brackets outside strings.
absl::Status CheckJsonDepth(absl::string_view text) {
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxNestingDepth) {
        return absl::InvalidArgumentError(
            absl::StrCat("nested deeper than ", kMaxNestingDepth, " levels"));
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<json> ParseJsonText(absl::string_view text) {
  if (absl::Status st = CheckJsonDepth(text); !st.ok()) return st;
  // The CDI library reads JSON files with its strict YAML reader too, which refuses a repeated
  // key; nlohmann would keep the last one silently.
  std::vector<std::set<std::string>> keys;
  std::string repeated;
  json::parser_callback_t track = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      keys.emplace_back();
    } else if (event == json::parse_event_t::object_end && !keys.empty()) {
      keys.pop_back();
    } else if (event == json::parse_event_t::key && !keys.empty() && parsed.is_string() &&
               !keys.back().insert(parsed.get<std::string>()).second && repeated.empty()) {
      repeated = parsed.get<std::string>();
    }
    return true;
  };
  try {
    json j = json::parse(text.begin(), text.end(), track);
    if (!repeated.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("JSON key ", Quote(repeated), " is repeated"));
    }
    return j;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not JSON: ", absl::CHexEscape(e.what())));
  } catch (...) {
    return absl::InvalidArgumentError("not JSON");
  }
}

// ---- YAML ------------------------------------------------------------------------------------

// Integers as Go's yaml.v2 resolves plain scalars (strconv.ParseInt base 0 after dropping '_'):
// 0x hex, 0o and leading-0 octal, 0b binary, optional sign.
std::optional<json> YamlInt(absl::string_view text) {
  std::string s;
  for (char c : text) {
    if (c != '_') s.push_back(c);
  }
  if (s.empty()) return std::nullopt;
  bool negative = false;
  size_t i = 0;
  if (s[0] == '+' || s[0] == '-') {
    negative = s[0] == '-';
    i = 1;
  }
  int base = 10;
  if (s.size() - i >= 2 && s[i] == '0') {
    char p = s[i + 1];
    if (p == 'x' || p == 'X') {
      base = 16, i += 2;
    } else if (p == 'o' || p == 'O') {
      base = 8, i += 2;
    } else if (p == 'b' || p == 'B') {
      base = 2, i += 2;
    } else {
      base = 8, i += 1;
    }
  }
  if (i >= s.size()) return std::nullopt;
  uint64_t value = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    int d;
    if (IsDigit(c)) {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return std::nullopt;
    }
    if (d >= base) return std::nullopt;
    if (value > (std::numeric_limits<uint64_t>::max() - d) / base) return std::nullopt;
    value = value * base + d;
  }
  if (negative) {
    if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1) return std::nullopt;
    return json(value == 0 ? int64_t{0} : static_cast<int64_t>(0 - value));
  }
  return json(value);
}

absl::StatusOr<json> YamlScalar(const YAML::Node& n) {
  const std::string& tag = n.Tag();
  const std::string& text = n.Scalar();
  static const std::string kStr = "tag:yaml.org,2002:str", kInt = "tag:yaml.org,2002:int",
                           kBool = "tag:yaml.org,2002:bool", kNull = "tag:yaml.org,2002:null";
  if (tag == "!" || tag == kStr) return json(text);  // quoted, block, or tagged string
  bool plain = tag == "?" || tag.empty();
  if (plain || tag == kNull) {
    if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
      return json(nullptr);
    }
    if (!plain) return absl::InvalidArgumentError(absl::StrCat("bad !!null ", Quote(text)));
  }
  if (plain || tag == kBool) {
    if (text == "true" || text == "True" || text == "TRUE") return json(true);
    if (text == "false" || text == "False" || text == "FALSE") return json(false);
    if (!plain) return absl::InvalidArgumentError(absl::StrCat("bad !!bool ", Quote(text)));
  }
  if (plain || tag == kInt) {
    if (!text.empty() && (IsDigit(text[0]) || text[0] == '+' || text[0] == '-')) {
      if (std::optional<json> i = YamlInt(text)) return *i;
    }
    if (!plain) return absl::InvalidArgumentError(absl::StrCat("bad !!int ", Quote(text)));
  }
  if (plain) return json(text);
  return absl::InvalidArgumentError(absl::StrCat("unsupported YAML tag ", Quote(tag)));
}

struct YamlBudget {
  size_t nodes = 0;
  size_t bytes = 0;  // of scalars: an alias of a long string must not copy it a million times
};

absl::StatusOr<json> YamlNode(const YAML::Node& n, size_t depth, YamlBudget* budget) {
  if (++budget->nodes > kMaxYamlNodes) {
    return absl::InvalidArgumentError(
        absl::StrCat("more than ", kMaxYamlNodes, " YAML nodes (aliases included)"));
  }
  if (depth > kMaxNestingDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("nested deeper than ", kMaxNestingDepth, " levels"));
  }
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return json(nullptr);
    case YAML::NodeType::Scalar:
      budget->bytes += n.Scalar().size();
      if (budget->bytes > kMaxYamlScalarBytes) {
        return absl::InvalidArgumentError(absl::StrCat(
            "more than ", kMaxYamlScalarBytes, " bytes of YAML scalars (aliases included)"));
      }
      return YamlScalar(n);
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const YAML::Node& item : n) {
        absl::StatusOr<json> v = YamlNode(item, depth + 1, budget);
        if (!v.ok()) return v.status();
        out.push_back(*std::move(v));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) return absl::InvalidArgumentError("a YAML key is not a string");
        const std::string& key = kv.first.Scalar();
        if (out.contains(key)) {
          return absl::InvalidArgumentError(absl::StrCat("YAML key ", Quote(key), " is repeated"));
        }
        absl::StatusOr<json> v = YamlNode(kv.second, depth + 1, budget);
        if (!v.ok()) return v.status();
        out[key] = *std::move(v);
      }
      return out;
    }
    default:
      return absl::InvalidArgumentError("undefined YAML node");
  }
}

// ---- applying --------------------------------------------------------------------------------

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
          int64_t i = v->is_number_unsigned() && v->get<uint64_t>() > kU32Max ? 0 : v->get<int64_t>();
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
      absl::StatusOr<json*> devices =
          Member(*lx, "devices", json::value_t::array, "linux.devices");
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
    std::stable_sort(sorted.begin(), sorted.end(), [](const json& a, const json& b) {
      return MountDepth(a) < MountDepth(b);
    });
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

std::string Extension(absl::string_view name) {
  size_t dot = name.rfind('.');
  return dot == absl::string_view::npos ? "" : std::string(name.substr(dot));
}

int64_t Nanos(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};

}  // namespace

// ---- public: names ---------------------------------------------------------------------------

std::vector<std::string> DefaultSpecDirs() { return {"/etc/cdi", "/var/run/cdi"}; }

absl::Status ValidateVendorName(absl::string_view vendor) {
  return CheckVendorOrClass("vendor", vendor, kMaxVendorBytes);
}

absl::Status ValidateClassName(absl::string_view cls) {
  return CheckVendorOrClass("class", cls, kMaxClassBytes);
}

absl::Status ValidateDeviceName(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("device name is empty");
  if (name.size() > kMaxDeviceNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("device name ", Quote(name), " is longer than ",
                                                   kMaxDeviceNameBytes, " characters"));
  }
  if (!IsAlnum(name[0])) {
    return absl::InvalidArgumentError(
        absl::StrCat("device name ", Quote(name), " must start with a letter or digit"));
  }
  for (size_t i = 1; i + 1 < name.size(); ++i) {
    char c = name[i];
    if (!IsAlnum(c) && c != '_' && c != '-' && c != '.' && c != ':') {
      return absl::InvalidArgumentError(absl::StrCat("device name ", Quote(name),
                                                     " has an invalid character ",
                                                     Quote(name.substr(i, 1))));
    }
  }
  if (!IsAlnum(name.back())) {
    return absl::InvalidArgumentError(
        absl::StrCat("device name ", Quote(name), " must end with a letter or digit"));
  }
  return absl::OkStatus();
}

absl::StatusOr<QualifiedName> ParseQualifiedName(absl::string_view device) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("CDI device ", Quote(device), ": ", why));
  };
  size_t eq = device.find('=');
  size_t slash = device.find('/');
  if (device.empty() || device[0] == '/' || eq == absl::string_view::npos || eq == 0 ||
      eq + 1 == device.size() || slash == absl::string_view::npos || slash == 0 || slash > eq ||
      slash + 1 == eq) {
    return bad("not a fully qualified name (vendor.com/class=name)");
  }
  QualifiedName q{std::string(device.substr(0, slash)),
                  std::string(device.substr(slash + 1, eq - slash - 1)),
                  std::string(device.substr(eq + 1))};
  if (absl::Status st = ValidateVendorName(q.vendor); !st.ok()) return bad(st.message());
  if (absl::Status st = ValidateClassName(q.cls); !st.ok()) return bad(st.message());
  if (absl::Status st = ValidateDeviceName(q.name); !st.ok()) return bad(st.message());
  return q;
}

absl::StatusOr<std::vector<std::string>> CollectDeviceNames(
    const std::vector<std::string>& cri_devices,
    const std::map<std::string, std::string>& annotations) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](absl::string_view name, absl::string_view from) -> absl::Status {
    absl::StatusOr<QualifiedName> q = ParseQualifiedName(name);
    if (!q.ok()) return absl::InvalidArgumentError(absl::StrCat(from, ": ", q.status().message()));
    if (seen.insert(std::string(name)).second) out.emplace_back(name);
    if (out.size() > kMaxRequestedDevices) {
      return absl::InvalidArgumentError(
          absl::StrCat("more than ", kMaxRequestedDevices, " CDI devices requested"));
    }
    return absl::OkStatus();
  };
  for (const std::string& d : cri_devices) {
    if (absl::Status st = add(d, "CDI_devices"); !st.ok()) return st;
  }
  for (const auto& [key, value] : annotations) {
    if (!absl::StartsWith(key, kAnnotationPrefix)) continue;
    for (absl::string_view d : absl::StrSplit(value, ',')) {
      if (absl::Status st = add(d, absl::StrCat("annotation ", Quote(key))); !st.ok()) return st;
    }
  }
  return out;
}

// ---- public: specs ---------------------------------------------------------------------------

const Device* Spec::FindDevice(absl::string_view name) const {
  for (const Device& d : devices) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

absl::StatusOr<nlohmann::json> YamlToJson(absl::string_view text) {
  if (text.size() > kMaxSpecFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat("larger than ", kMaxSpecFileBytes, " bytes"));
  }
  try {
    YAML::Node root = YAML::Load(std::string(text));
    YamlBudget budget;
    return YamlNode(root, 0, &budget);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not YAML: ", absl::CHexEscape(e.what())));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not YAML: ", absl::CHexEscape(e.what())));
  } catch (...) {
    return absl::InvalidArgumentError("not YAML");
  }
}

absl::StatusOr<Spec> ParseSpec(absl::string_view text, SpecFormat format, absl::string_view origin) {
  auto fail = [&](const absl::Status& st) {
    return absl::InvalidArgumentError(absl::StrCat("CDI spec ", origin, ": ", st.message()));
  };
  if (text.size() > kMaxSpecFileBytes) {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("larger than ", kMaxSpecFileBytes, " bytes")));
  }
  absl::StatusOr<json> root =
      format == SpecFormat::kJson ? ParseJsonText(text) : YamlToJson(text);
  if (!root.ok()) return fail(root.status());
  try {
    absl::StatusOr<Spec> spec = SpecFromJson(*root, format == SpecFormat::kYaml);
    if (!spec.ok()) return fail(spec.status());
    spec->path = std::string(origin);
    return spec;
  } catch (const std::exception& e) {
    // Nothing above should throw; this keeps a surprise from escaping into the engine.
    return fail(absl::InternalError(absl::CHexEscape(e.what())));
  }
}

// ---- public: applying ------------------------------------------------------------------------

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

// ---- public: registry ------------------------------------------------------------------------

Registry::Registry(std::vector<std::string> spec_dirs) : dirs_(std::move(spec_dirs)) {}

std::vector<Registry::FileSig> Registry::ScanLocked() {
  std::vector<FileSig> sigs;
  std::vector<SpecFileError> dir_errors;
  for (size_t priority = 0; priority < dirs_.size(); ++priority) {
    const std::string& dir = dirs_[priority];
    std::unique_ptr<DIR, DirCloser> d(opendir(dir.c_str()));
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
      dir_errors.push_back({dir, "", absl::StrCat("more than ", kMaxSpecFilesPerDir,
                                                  " spec files; the rest are ignored")});
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
