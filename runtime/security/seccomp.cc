// Seccomp profiles: berth's compiled-in default, Localhost files (OCI or Docker form), CRI names.
#include "runtime/security/seccomp.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/utsname.h>

#include <charconv>
#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "glog/logging.h"
#include "proto/runtime/v1/api.pb.h"
#include "runtime/security/seccomp_default_profile.h"

namespace berth::security {
namespace {

using nlohmann::json;

// libseccomp's architecture names, their tokens, and the other spellings profiles use for the
// same architecture (Go's GOARCH values in Docker's includes/excludes, uname -m).
struct ArchInfo {
  const char* name;
  uint32_t token;
  std::vector<absl::string_view> aliases;
};

const std::vector<ArchInfo>& Arches() {
  static const auto* arches = new std::vector<ArchInfo>{
      {"SCMP_ARCH_X86", SCMP_ARCH_X86, {"x86", "386", "i386", "i686"}},
      {"SCMP_ARCH_X86_64", SCMP_ARCH_X86_64, {"amd64", "x86_64"}},
      {"SCMP_ARCH_X32", SCMP_ARCH_X32, {"x32"}},
      {"SCMP_ARCH_ARM", SCMP_ARCH_ARM, {"arm"}},
      {"SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64, {"arm64", "aarch64"}},
      {"SCMP_ARCH_MIPS", SCMP_ARCH_MIPS, {"mips"}},
      {"SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64, {"mips64"}},
      {"SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32, {"mips64n32"}},
      {"SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL, {"mipsel", "mipsle"}},
      {"SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64, {"mipsel64", "mips64le"}},
      {"SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32, {"mipsel64n32", "mips64len32"}},
      {"SCMP_ARCH_PPC", SCMP_ARCH_PPC, {"ppc"}},
      {"SCMP_ARCH_PPC64", SCMP_ARCH_PPC64, {"ppc64"}},
      {"SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE, {"ppc64le"}},
      {"SCMP_ARCH_S390", SCMP_ARCH_S390, {"s390"}},
      {"SCMP_ARCH_S390X", SCMP_ARCH_S390X, {"s390x"}},
      {"SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64, {"riscv64"}},
  };
  return *arches;
}

const ArchInfo* FindArch(absl::string_view name) {
  for (const ArchInfo& a : Arches()) {
    if (name == a.name) return &a;
  }
  return nullptr;
}

const ArchInfo& NativeArch() {
  static const ArchInfo* native = [] {
    uint32_t token = seccomp_arch_native();
    for (const ArchInfo& a : Arches()) {
      if (a.token == token) return &a;
    }
    LOG(FATAL) << "libseccomp reports a native architecture berth does not know: " << token;
    return &Arches().front();
  }();
  return *native;
}

bool ArchMatches(const ArchInfo& host, absl::string_view entry) {
  if (entry == host.name) return true;
  for (absl::string_view alias : host.aliases) {
    if (absl::EqualsIgnoreCase(entry, alias)) return true;
  }
  return false;
}

// Kernel version as (major, minor), from uname's release ("6.1.0-18-amd64").
std::pair<int, int> ParseKernelVersion(absl::string_view release) {
  std::pair<int, int> v{0, 0};
  std::vector<absl::string_view> parts = absl::StrSplit(release, absl::MaxSplits('.', 2));
  if (!parts.empty()) std::from_chars(parts[0].data(), parts[0].data() + parts[0].size(), v.first);
  if (parts.size() > 1) {
    std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), v.second);
  }
  return v;
}

std::pair<int, int> HostKernelVersion() {
  static const std::pair<int, int> version = [] {
    struct utsname u;
    if (uname(&u) != 0) return std::pair<int, int>{0, 0};
    return ParseKernelVersion(u.release);
  }();
  return version;
}

const absl::flat_hash_set<absl::string_view>& ValidActions() {
  static const auto* actions = new absl::flat_hash_set<absl::string_view>{
      "SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
      "SCMP_ACT_TRAP",  "SCMP_ACT_ERRNO",        "SCMP_ACT_TRACE",
      "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",          "SCMP_ACT_NOTIFY"};
  return *actions;
}

const absl::flat_hash_set<absl::string_view>& ValidOps() {
  static const auto* ops = new absl::flat_hash_set<absl::string_view>{
      "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",       "SCMP_CMP_EQ",
      "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"};
  return *ops;
}

// Everything a rule's conditions are checked against.
struct HostContext {
  const ArchInfo* native;
  std::pair<int, int> kernel;
  absl::flat_hash_set<std::string> caps;
  std::vector<uint32_t> arch_tokens;  // the profile's architectures, for name resolution
};

// When a rule applies. Both berth's `when` and Docker's `includes`/`excludes` map onto this.
struct Condition {
  std::vector<std::string> caps;          // all present
  std::vector<std::string> without_caps;  // none present
  std::vector<std::string> arches;        // host arch among them
  std::vector<std::string> not_arches;    // host arch not among them
  std::optional<std::pair<int, int>> min_kernel;

  bool Holds(const HostContext& host) const {
    for (const auto& c : caps) {
      if (!host.caps.contains(c)) return false;
    }
    for (const auto& c : without_caps) {
      if (host.caps.contains(c)) return false;
    }
    if (!arches.empty()) {
      bool any = false;
      for (const auto& a : arches) any = any || ArchMatches(*host.native, a);
      if (!any) return false;
    }
    for (const auto& a : not_arches) {
      if (ArchMatches(*host.native, a)) return false;
    }
    if (min_kernel && host.kernel < *min_kernel) return false;
    return true;
  }
};

std::string CapName(absl::string_view cap) {
  std::string upper = absl::AsciiStrToUpper(cap);
  if (!absl::StartsWith(upper, "CAP_")) upper = absl::StrCat("CAP_", upper);
  return upper;
}

// Reads profile JSON for one source (berth's default or a Localhost file) and reports problems
// with the source's name in every message.
class ProfileReader {
 public:
  ProfileReader(std::string source, HostContext host)
      : source_(std::move(source)), host_(std::move(host)) {}

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": ", what));
  }

  std::vector<std::string> Strings(const json& parent, const char* key) const {
    std::vector<std::string> out;
    if (!parent.is_object() || !parent.contains(key) || parent[key].is_null()) return out;
    for (const json& v : parent.at(key)) out.push_back(v.get<std::string>());
    return out;
  }

  absl::StatusOr<std::optional<std::pair<int, int>>> MinKernel(const json& parent) const {
    if (!parent.is_object() || !parent.contains("minKernel") || parent["minKernel"].is_null()) {
      return std::optional<std::pair<int, int>>();
    }
    std::string text = parent["minKernel"].get<std::string>();
    if (text.empty()) return std::optional<std::pair<int, int>>();
    std::pair<int, int> v = ParseKernelVersion(text);
    if (v.first == 0)
      return Error(absl::StrCat("minKernel \"", text, "\" is not a kernel version"));
    return std::optional<std::pair<int, int>>(v);
  }

  absl::StatusOr<json> Args(const json& rule) const {
    json out = json::array();
    if (!rule.contains("args") || rule["args"].is_null()) return out;
    for (const json& a : rule["args"]) {
      if (!a.contains("index") || !a.contains("value") || !a.contains("op")) {
        return Error("every syscall argument needs index, value and op");
      }
      unsigned index = a["index"].get<unsigned>();
      if (index > 5) return Error(absl::StrCat("syscall argument index ", index, " is above 5"));
      std::string op = a["op"].get<std::string>();
      if (!ValidOps().contains(op)) return Error(absl::StrCat("unknown operator \"", op, "\""));
      json arg = {{"index", index}, {"value", a["value"].get<uint64_t>()}, {"op", op}};
      if (a.contains("valueTwo") && !a["valueTwo"].is_null()) {
        arg["valueTwo"] = a["valueTwo"].get<uint64_t>();
      }
      out.push_back(std::move(arg));
    }
    return out;
  }

  // One OCI syscall entry from a rule whose condition holds, or nullopt when no name is left
  // after dropping the ones this host's libseccomp cannot resolve.
  absl::StatusOr<std::optional<json>> Entry(const json& rule,
                                            const std::vector<std::string>& names) const {
    if (!rule.contains("action")) return Error("a syscall rule has no action");
    std::string action = rule["action"].get<std::string>();
    if (!ValidActions().contains(action)) {
      return Error(absl::StrCat("unknown action \"", action, "\""));
    }
    json kept = json::array();
    for (const std::string& name : names) {
      if (Resolvable(name)) {
        kept.push_back(name);
      } else {
        VLOG(1) << source_ << ": dropping syscall \"" << name
                << "\", unknown to this host's libseccomp";
      }
    }
    if (kept.empty()) return std::optional<json>();
    json entry = {{"names", std::move(kept)}, {"action", action}};
    absl::StatusOr<json> args = Args(rule);
    if (!args.ok()) return args.status();
    if (!args->empty()) entry["args"] = *std::move(args);
    if (rule.contains("errnoRet") && !rule["errnoRet"].is_null()) {
      entry["errnoRet"] = rule["errnoRet"].get<unsigned>();
    }
    return std::optional<json>(std::move(entry));
  }

  bool Resolvable(const std::string& name) const {
    for (uint32_t token : host_.arch_tokens) {
      if (seccomp_syscall_resolve_name_arch(token, name.c_str()) != __NR_SCMP_ERROR) return true;
    }
    return false;
  }

  // defaultAction and defaultErrnoRet, checked, into `out`.
  absl::Status Defaults(const json& in, json& out) const {
    if (!in.contains("defaultAction")) return Error("defaultAction is missing");
    std::string action = in["defaultAction"].get<std::string>();
    if (!ValidActions().contains(action)) {
      return Error(absl::StrCat("unknown defaultAction \"", action, "\""));
    }
    out["defaultAction"] = action;
    if (in.contains("defaultErrnoRet") && !in["defaultErrnoRet"].is_null()) {
      out["defaultErrnoRet"] = in["defaultErrnoRet"].get<unsigned>();
    }
    return absl::OkStatus();
  }

  HostContext& host() { return host_; }
  const HostContext& host() const { return host_; }

 private:
  std::string source_;
  HostContext host_;
};

HostContext MakeHostContext(const std::vector<std::string>& caps) {
  HostContext host;
  host.native = &NativeArch();
  host.kernel = HostKernelVersion();
  for (const auto& c : caps) host.caps.insert(CapName(c));
  return host;
}

absl::Status SetArchitectures(ProfileReader& reader, const std::vector<std::string>& names,
                              json& out) {
  json arches = json::array();
  reader.host().arch_tokens.clear();
  for (const auto& name : names) {
    const ArchInfo* arch = FindArch(name);
    if (arch == nullptr) return reader.Error(absl::StrCat("unknown architecture \"", name, "\""));
    arches.push_back(arch->name);
    reader.host().arch_tokens.push_back(arch->token);
  }
  // With no architectures, runc filters the native one only; resolve names against it.
  if (reader.host().arch_tokens.empty()) reader.host().arch_tokens.push_back(NativeArch().token);
  out["architectures"] = std::move(arches);
  return absl::OkStatus();
}

const json& DefaultProfileDocument() {
  static const json* doc = new json(json::parse(internal::kDefaultSeccompProfileJson));
  return *doc;
}

absl::StatusOr<json> BuildRuntimeDefault(const std::vector<std::string>& caps) {
  const json& doc = DefaultProfileDocument();
  ProfileReader reader("berth's default seccomp profile", MakeHostContext(caps));
  json out = json::object();
  if (absl::Status s = reader.Defaults(doc, out); !s.ok()) return s;
  if (absl::Status s = SetArchitectures(reader, SeccompArchitectures(), out); !s.ok()) return s;
  json syscalls = json::array();
  for (const json& rule : doc.at("rules")) {
    Condition cond;
    if (rule.contains("when")) {
      const json& when = rule["when"];
      cond.caps = reader.Strings(when, "caps");
      cond.without_caps = reader.Strings(when, "withoutCaps");
      cond.arches = reader.Strings(when, "arches");
      cond.not_arches = reader.Strings(when, "notArches");
      absl::StatusOr<std::optional<std::pair<int, int>>> min = reader.MinKernel(when);
      if (!min.ok()) return min.status();
      cond.min_kernel = *min;
    }
    if (!cond.Holds(reader.host())) continue;
    absl::StatusOr<std::optional<json>> entry = reader.Entry(rule, reader.Strings(rule, "names"));
    if (!entry.ok()) return entry.status();
    if (*entry) syscalls.push_back(**std::move(entry));
  }
  out["syscalls"] = std::move(syscalls);
  return out;
}

// Both OCI `linux.seccomp` documents and Docker's profile form, into OCI form for this host.
absl::StatusOr<json> ConvertLocalhost(const json& doc, ProfileReader& reader) {
  if (!doc.is_object()) return reader.Error("a seccomp profile must be a JSON object");
  json out = json::object();
  if (absl::Status s = reader.Defaults(doc, out); !s.ok()) return s;

  std::vector<std::string> arches = reader.Strings(doc, "architectures");
  if (arches.empty() && doc.contains("archMap") && !doc["archMap"].is_null()) {
    // Docker form: the entry for the host's architecture names its compat arches.
    for (const json& m : doc["archMap"]) {
      std::string arch = m.at("architecture").get<std::string>();
      if (arch != reader.host().native->name) continue;
      arches.push_back(arch);
      for (auto& sub : reader.Strings(m, "subArchitectures")) arches.push_back(std::move(sub));
    }
  }
  if (absl::Status s = SetArchitectures(reader, arches, out); !s.ok()) return s;
  for (const char* key : {"flags", "listenerPath", "listenerMetadata"}) {
    if (doc.contains(key) && !doc[key].is_null()) out[key] = doc[key];
  }

  json syscalls = json::array();
  if (doc.contains("syscalls") && !doc["syscalls"].is_null()) {
    for (const json& rule : doc["syscalls"]) {
      std::vector<std::string> names = reader.Strings(rule, "names");
      if (rule.contains("name") && rule["name"].is_string()) {
        names.push_back(rule["name"].get<std::string>());
      }
      if (names.empty()) return reader.Error("a syscall rule names no syscall");
      Condition cond;
      if (rule.contains("includes") && rule["includes"].is_object()) {
        cond.caps = reader.Strings(rule["includes"], "caps");
        cond.arches = reader.Strings(rule["includes"], "arches");
        absl::StatusOr<std::optional<std::pair<int, int>>> min = reader.MinKernel(rule["includes"]);
        if (!min.ok()) return min.status();
        cond.min_kernel = *min;
      }
      if (rule.contains("excludes") && rule["excludes"].is_object()) {
        cond.without_caps = reader.Strings(rule["excludes"], "caps");
        cond.not_arches = reader.Strings(rule["excludes"], "arches");
      }
      for (auto& c : cond.caps) c = CapName(c);
      for (auto& c : cond.without_caps) c = CapName(c);
      if (!cond.Holds(reader.host())) continue;
      absl::StatusOr<std::optional<json>> entry = reader.Entry(rule, names);
      if (!entry.ok()) return entry.status();
      if (*entry) syscalls.push_back(**std::move(entry));
    }
  }
  out["syscalls"] = std::move(syscalls);
  return out;
}

absl::StatusOr<json> BuildLocalhost(const std::string& path, const std::vector<std::string>& caps) {
  ProfileReader reader(absl::StrCat("seccomp profile \"", path, "\""), MakeHostContext(caps));
  if (path.empty() || path[0] != '/') return reader.Error("the path must be absolute");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return reader.Error(absl::StrCat("cannot be read: ", std::generic_category().message(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return reader.Error("cannot be read");
  json doc = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return reader.Error("is not valid JSON");
  try {
    return ConvertLocalhost(doc, reader);
  } catch (const json::exception& e) {
    return reader.Error(absl::StrCat("has a field of the wrong type: ", e.what()));
  }
}

}  // namespace

absl::StatusOr<json> BuildSeccomp(const SeccompRequest& request) {
  if (request.privileged) return json();
  switch (request.profile.type) {
    case SeccompProfileType::kUnconfined:
      return json();
    case SeccompProfileType::kRuntimeDefault:
      return BuildRuntimeDefault(request.capabilities);
    case SeccompProfileType::kLocalhost:
      return BuildLocalhost(request.profile.localhost_path, request.capabilities);
  }
  return absl::InvalidArgumentError("unknown seccomp profile type");
}

absl::StatusOr<SeccompProfile> ParseSeccompProfileName(absl::string_view name,
                                                       SeccompProfileType when_empty) {
  if (name.empty()) return SeccompProfile{when_empty, ""};
  if (name == "runtime/default" || name == "docker/default") {
    return SeccompProfile{SeccompProfileType::kRuntimeDefault, ""};
  }
  if (name == "unconfined") return SeccompProfile{SeccompProfileType::kUnconfined, ""};
  constexpr absl::string_view kLocalhost = "localhost/";
  if (absl::StartsWith(name, kLocalhost)) {
    absl::string_view path = name.substr(kLocalhost.size());
    if (path.empty() || path[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat(
          "seccomp profile \"", name, "\": the localhost profile path must be absolute"));
    }
    return SeccompProfile{SeccompProfileType::kLocalhost, std::string(path)};
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "seccomp profile \"", name,
      "\" is unknown: use runtime/default, docker/default, unconfined or localhost/<path>"));
}

absl::StatusOr<SeccompProfile> SeccompProfileFromCri(const runtime::v1::SecurityProfile* profile,
                                                     absl::string_view deprecated_name,
                                                     SeccompProfileType when_empty) {
  if (profile == nullptr) return ParseSeccompProfileName(deprecated_name, when_empty);
  switch (profile->profile_type()) {
    case runtime::v1::SecurityProfile::RuntimeDefault:
      return SeccompProfile{SeccompProfileType::kRuntimeDefault, ""};
    case runtime::v1::SecurityProfile::Unconfined:
      return SeccompProfile{SeccompProfileType::kUnconfined, ""};
    case runtime::v1::SecurityProfile::Localhost:
      if (profile->localhost_ref().empty() || profile->localhost_ref()[0] != '/') {
        return absl::InvalidArgumentError(
            absl::StrCat("seccomp profile \"", profile->localhost_ref(),
                         "\": a Localhost profile needs an absolute localhost_ref"));
      }
      return SeccompProfile{SeccompProfileType::kLocalhost, profile->localhost_ref()};
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("seccomp profile type ", profile->profile_type(), " is unknown"));
  }
}

std::vector<std::string> SeccompArchitectures() {
  const ArchInfo& native = NativeArch();
  std::vector<std::string> out{native.name};
  const json& compat = DefaultProfileDocument().at("compatArches");
  if (compat.contains(native.name)) {
    for (const json& a : compat[native.name]) out.push_back(a.get<std::string>());
  }
  return out;
}

nlohmann::json SeccompSupportInfo::ToJson() const {
  return {{"kernelSeccomp", kernel_seccomp},
          {"kernelSeccompFilter", kernel_filter},
          {"libseccompVersion", libseccomp_version},
          {"libseccompApiLevel", libseccomp_api_level}};
}

SeccompSupportInfo SeccompSupport() {
  SeccompSupportInfo info;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (absl::StartsWith(line, "Seccomp:")) info.kernel_seccomp = true;
  }
  // With a NULL filter the kernel fails with EFAULT before installing anything when filter mode
  // exists, and with EINVAL when it does not.
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, nullptr, 0, 0) != 0 && errno != EINVAL) {
    info.kernel_filter = true;
  }
  const scmp_version* v = seccomp_version();
  if (v != nullptr) info.libseccomp_version = absl::StrCat(v->major, ".", v->minor, ".", v->micro);
  info.libseccomp_api_level = seccomp_api_get();
  return info;
}

}  // namespace berth::security
