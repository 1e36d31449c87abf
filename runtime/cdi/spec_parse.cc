// CDI spec parsing: the schema of a spec (as JSON, whichever format it was written in) checked
// strictly as the CDI library's validator does, with the cdiVersion each field needs.
#include <algorithm>
#include <array>
#include <initializer_list>
#include <limits>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/cdi/cdi.h"
#include "runtime/cdi/cdi_internal.h"
#include "util/utf8.h"

namespace berth::cdi {
namespace {

using internal::IsAlnum;
using internal::IsDigit;
using internal::json;
using internal::kU32Max;
using internal::ParseJsonText;
using internal::Quote;

absl::Status Bad(absl::string_view where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
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
  // Spec files are JSON, so config.json built from them must be valid UTF-8 too; refusing bad
  // bytes here beats nlohmann replacing them later with U+FFFD in a path.
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

const std::set<absl::string_view> kHookNames = {
    "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"};

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
  if (st = GetInt(f->Get("major"), Join(where, "major"), 0, kU32Max, &d->major); !st.ok())
    return st;
  if (st = GetInt(f->Get("minor"), Join(where, "minor"), 0, kU32Max, &d->minor); !st.ok())
    return st;
  if (const json* m = f->Get("fileMode")) {
    int64_t mode = 0;
    if (st = GetInt(m, Join(where, "fileMode"), 0, 07777, &mode); !st.ok()) return st;
    d->file_mode = static_cast<uint32_t>(mode);
  }
  if (st = GetString(ctx, f->Get("permissions"), Join(where, "permissions"), &d->permissions);
      !st.ok()) {
    return st;
  }
  if (d->permissions != "none" && d->permissions.find_first_not_of("rwm") != std::string::npos) {
    return Bad(Join(where, "permissions"),
               absl::StrCat(Quote(d->permissions), " is not made of r, w, m (or \"none\")"));
  }
  if (st = GetU32(f->Get("uid"), Join(where, "uid"), &d->uid); !st.ok()) return st;
  return GetU32(f->Get("gid"), Join(where, "gid"), &d->gid);
}

absl::Status ParseMount(Ctx& ctx, const json& v, const std::string& where, Mount* m) {
  absl::StatusOr<Fields> f = Fields::Of(v, {"hostPath", "containerPath", "type", "options"}, where);
  if (!f.ok()) return f.status();
  absl::Status st;
  if (st = GetString(ctx, f->Get("hostPath"), Join(where, "hostPath"), &m->host_path); !st.ok()) {
    return st;
  }
  if (st =
          GetString(ctx, f->Get("containerPath"), Join(where, "containerPath"), &m->container_path);
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
  if (clos != "/" &&
      (clos == "." || clos == ".." || clos.find_first_of("/\n") != std::string::npos)) {
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
  absl::StatusOr<Fields> f = Fields::Of(
      v, {"env", "deviceNodes", "netDevices", "hooks", "mounts", "intelRdt", "additionalGids"},
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
    return Bad("cdiVersion",
               absl::StrCat(Quote(spec.version), " is not a CDI version berth reads (",
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

}  // namespace

const Device* Spec::FindDevice(absl::string_view name) const {
  for (const Device& d : devices) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

absl::StatusOr<Spec> ParseSpec(absl::string_view text, SpecFormat format,
                               absl::string_view origin) {
  auto fail = [&](const absl::Status& st) {
    return absl::InvalidArgumentError(absl::StrCat("CDI spec ", origin, ": ", st.message()));
  };
  if (text.size() > kMaxSpecFileBytes) {
    return fail(
        absl::InvalidArgumentError(absl::StrCat("larger than ", kMaxSpecFileBytes, " bytes")));
  }
  absl::StatusOr<json> root = format == SpecFormat::kJson ? ParseJsonText(text) : YamlToJson(text);
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

}  // namespace berth::cdi
