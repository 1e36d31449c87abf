// Seccomp profile building: berth's default, Localhost files in both forms, CRI profile names.
#include "runtime/security/seccomp.h"

#include <seccomp.h>

#include <fstream>
#include <set>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "proto/runtime/v1/api.pb.h"
#include "runtime/security/capabilities.h"
#include "test/util/temp_dir.h"

namespace berth::security {
namespace {

using nlohmann::json;

// Field names of the OCI runtime-spec (config-linux.md, "Seccomp") and the values runc accepts.
void ExpectOciSeccompShape(const json& s) {
  static const std::set<std::string> kTop = {"defaultAction", "defaultErrnoRet", "architectures",
                                             "flags",         "listenerPath",    "listenerMetadata",
                                             "syscalls"};
  static const std::set<std::string> kSyscall = {"names", "action", "errnoRet", "args"};
  static const std::set<std::string> kArg = {"index", "value", "valueTwo", "op"};
  static const std::set<std::string> kActions = {
      "SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
      "SCMP_ACT_TRAP",  "SCMP_ACT_ERRNO",        "SCMP_ACT_TRACE",
      "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",          "SCMP_ACT_NOTIFY"};
  static const std::set<std::string> kOps = {"SCMP_CMP_NE",       "SCMP_CMP_LT", "SCMP_CMP_LE",
                                             "SCMP_CMP_EQ",       "SCMP_CMP_GE", "SCMP_CMP_GT",
                                             "SCMP_CMP_MASKED_EQ"};
  ASSERT_TRUE(s.is_object());
  for (const auto& [k, v] : s.items()) EXPECT_TRUE(kTop.count(k)) << "unexpected field " << k;
  ASSERT_TRUE(s.contains("defaultAction"));
  EXPECT_TRUE(kActions.count(s["defaultAction"].get<std::string>()));
  if (s.contains("defaultErrnoRet")) {
    EXPECT_TRUE(s["defaultErrnoRet"].is_number_unsigned());
  }
  ASSERT_TRUE(s["architectures"].is_array());
  for (const auto& a : s["architectures"]) {
    EXPECT_TRUE(absl::StartsWith(a.get<std::string>(), "SCMP_ARCH_")) << a;
  }
  ASSERT_TRUE(s["syscalls"].is_array());
  for (const auto& sc : s["syscalls"]) {
    for (const auto& [k, v] : sc.items()) EXPECT_TRUE(kSyscall.count(k)) << "unexpected " << k;
    ASSERT_TRUE(sc["names"].is_array());
    EXPECT_FALSE(sc["names"].empty());
    for (const auto& n : sc["names"]) EXPECT_TRUE(n.is_string());
    EXPECT_TRUE(kActions.count(sc["action"].get<std::string>()));
    if (sc.contains("errnoRet")) {
      EXPECT_TRUE(sc["errnoRet"].is_number_unsigned());
    }
    if (!sc.contains("args")) continue;
    ASSERT_TRUE(sc["args"].is_array());
    for (const auto& a : sc["args"]) {
      for (const auto& [k, v] : a.items()) EXPECT_TRUE(kArg.count(k)) << "unexpected " << k;
      EXPECT_TRUE(a["index"].is_number_unsigned());
      EXPECT_LE(a["index"].get<unsigned>(), 5u);
      EXPECT_TRUE(a["value"].is_number_unsigned());
      EXPECT_TRUE(kOps.count(a["op"].get<std::string>()));
    }
  }
}

// Names that a profile allows without conditions on arguments.
std::set<std::string> PlainAllowed(const json& s) {
  std::set<std::string> out;
  for (const auto& sc : s["syscalls"]) {
    if (sc["action"] != "SCMP_ACT_ALLOW" || sc.contains("args")) continue;
    for (const auto& n : sc["names"]) out.insert(n.get<std::string>());
  }
  return out;
}

const json* FindRule(const json& s, const std::string& name, const std::string& action) {
  for (const auto& sc : s["syscalls"]) {
    if (sc["action"] != action) continue;
    for (const auto& n : sc["names"]) {
      if (n == name) return &sc;
    }
  }
  return nullptr;
}

json Build(std::vector<std::string> caps) {
  SeccompRequest req;
  req.capabilities = std::move(caps);
  absl::StatusOr<json> s = BuildSeccomp(req);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : json();
}

std::string WriteFile(const test::TempDir& dir, const std::string& name, const std::string& text) {
  std::string path = dir.path() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

absl::StatusOr<json> BuildLocalhost(const std::string& path, std::vector<std::string> caps = {}) {
  SeccompRequest req;
  req.profile = {SeccompProfileType::kLocalhost, path};
  req.capabilities = std::move(caps);
  return BuildSeccomp(req);
}

TEST(SeccompDefaultTest, DeniesWithEpermAndAllowsCommonSyscalls) {
  json s = Build(DefaultCapabilities());
  ExpectOciSeccompShape(s);
  EXPECT_EQ(s["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(s["defaultErrnoRet"], 1);
  std::set<std::string> allowed = PlainAllowed(s);
  for (const char* name : {"read", "write", "openat", "execve", "futex", "epoll_wait", "exit_group",
                           "chroot" /* CAP_SYS_CHROOT is a default capability */}) {
    EXPECT_TRUE(allowed.count(name)) << name;
  }
  for (const char* name :
       {"kexec_load", "reboot", "mount", "unshare", "setns", "bpf", "init_module", "ptrace_unknown",
        "add_key", "keyctl", "io_uring_setup"}) {
    EXPECT_FALSE(allowed.count(name)) << name;
  }
}

TEST(SeccompDefaultTest, ArchitecturesAreHostPlusCompat) {
  json s = Build(DefaultCapabilities());
  std::vector<std::string> arches = s["architectures"].get<std::vector<std::string>>();
  EXPECT_EQ(arches, SeccompArchitectures());
#if defined(__x86_64__)
  EXPECT_EQ(arches,
            (std::vector<std::string>{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
  EXPECT_TRUE(PlainAllowed(s).count("arch_prctl"));
  EXPECT_TRUE(PlainAllowed(s).count("modify_ldt"));
  EXPECT_FALSE(PlainAllowed(s).count("cacheflush"));
#endif
}

TEST(SeccompDefaultTest, CapabilitiesEnableTheirGroups) {
  std::set<std::string> plain = PlainAllowed(Build(DefaultCapabilities()));
  EXPECT_FALSE(plain.count("reboot"));
  EXPECT_FALSE(plain.count("settimeofday"));
  EXPECT_FALSE(plain.count("syslog"));
  EXPECT_FALSE(plain.count("init_module"));
  EXPECT_FALSE(plain.count("kcmp"));

  std::vector<std::string> caps = DefaultCapabilities();
  for (const char* c :
       {"CAP_SYS_BOOT", "CAP_SYS_TIME", "CAP_SYSLOG", "CAP_SYS_MODULE", "CAP_SYS_PTRACE"}) {
    caps.push_back(c);
  }
  std::set<std::string> more = PlainAllowed(Build(caps));
  for (const char* name : {"reboot", "settimeofday", "clock_settime", "syslog", "init_module",
                           "finit_module", "kcmp", "ptrace"}) {
    EXPECT_TRUE(more.count(name)) << name;
  }
  // kexec_load replaces the host's kernel, not the container's: berth refuses it even with
  // CAP_SYS_BOOT (reboot in a container's PID namespace only ends that namespace).
  EXPECT_FALSE(more.count("kexec_load"));
}

TEST(SeccompDefaultTest, CloneCannotCreateNamespacesWithoutSysAdmin) {
  json s = Build(DefaultCapabilities());
  const json* clone = FindRule(s, "clone", "SCMP_ACT_ALLOW");
  ASSERT_NE(clone, nullptr);
  ASSERT_TRUE(clone->contains("args"));
  const json& arg = (*clone)["args"][0];
  EXPECT_EQ(arg["op"], "SCMP_CMP_MASKED_EQ");
  EXPECT_EQ(arg["value"].get<uint64_t>(), 0x7e020000u);
  EXPECT_EQ(arg["valueTwo"].get<uint64_t>(), 0u);
  const json* clone3 = FindRule(s, "clone3", "SCMP_ACT_ERRNO");
  ASSERT_NE(clone3, nullptr);
  EXPECT_EQ((*clone3)["errnoRet"], 38);  // ENOSYS: libc falls back to clone

  std::vector<std::string> caps = DefaultCapabilities();
  caps.push_back("CAP_SYS_ADMIN");
  json admin = Build(caps);
  ExpectOciSeccompShape(admin);
  std::set<std::string> plain = PlainAllowed(admin);
  EXPECT_TRUE(plain.count("clone"));
  EXPECT_TRUE(plain.count("clone3"));
  EXPECT_TRUE(plain.count("mount"));
  EXPECT_TRUE(plain.count("unshare"));
  EXPECT_EQ(FindRule(admin, "clone3", "SCMP_ACT_ERRNO"), nullptr);
}

TEST(SeccompDefaultTest, PersonalityIsAllowedOnlyForSafeValues) {
  json s = Build(DefaultCapabilities());
  EXPECT_FALSE(PlainAllowed(s).count("personality"));
  std::set<uint64_t> values;
  for (const auto& sc : s["syscalls"]) {
    if (sc["names"] == json::array({"personality"})) {
      values.insert(sc["args"][0]["value"].get<uint64_t>());
      EXPECT_EQ(sc["args"][0]["op"], "SCMP_CMP_EQ");
    }
  }
  EXPECT_EQ(values, (std::set<uint64_t>{0, 8, 0x20000, 0x20008, 0xffffffff}));
}

TEST(SeccompDefaultTest, SocketRefusesVsockOnly) {
  json s = Build(DefaultCapabilities());
  const json* socket = FindRule(s, "socket", "SCMP_ACT_ALLOW");
  ASSERT_NE(socket, nullptr);
  EXPECT_EQ((*socket)["args"][0]["op"], "SCMP_CMP_NE");
  EXPECT_EQ((*socket)["args"][0]["value"], 40);
}

TEST(SeccompDefaultTest, LibseccompAcceptsEveryRule) {
  // What runc does with the profile, short of loading it: every rule must be accepted.
  std::vector<std::string> caps = HostCapabilities();
  for (const auto& c : {DefaultCapabilities(), caps}) {
    json s = Build(c);
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(1));
    ASSERT_NE(ctx, nullptr);
    for (const auto& sc : s["syscalls"]) {
      uint32_t action = sc["action"] == "SCMP_ACT_ALLOW" ? SCMP_ACT_ALLOW
                                                         : SCMP_ACT_ERRNO(sc.value("errnoRet", 1u));
      std::vector<scmp_arg_cmp> args;
      for (const auto& a : sc.value("args", json::array())) {
        std::string op = a["op"];
        scmp_compare cmp = op == "SCMP_CMP_EQ"          ? SCMP_CMP_EQ
                           : op == "SCMP_CMP_NE"        ? SCMP_CMP_NE
                           : op == "SCMP_CMP_MASKED_EQ" ? SCMP_CMP_MASKED_EQ
                                                        : _SCMP_CMP_MIN;
        ASSERT_NE(cmp, _SCMP_CMP_MIN) << op;
        args.push_back({a["index"].get<unsigned>(), cmp, a["value"].get<uint64_t>(),
                        a.value("valueTwo", uint64_t{0})});
      }
      for (const auto& n : sc["names"]) {
        int nr = seccomp_syscall_resolve_name(n.get<std::string>().c_str());
        if (nr == __NR_SCMP_ERROR) continue;  // another architecture's syscall; runc skips it too
        EXPECT_EQ(seccomp_rule_add_array(ctx, action, nr, args.size(), args.data()), 0) << n;
      }
    }
    seccomp_release(ctx);
  }
}

TEST(SeccompTest, UnconfinedAndPrivilegedHaveNoSeccomp) {
  SeccompRequest unconfined;
  unconfined.profile.type = SeccompProfileType::kUnconfined;
  absl::StatusOr<json> s = BuildSeccomp(unconfined);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->is_null());

  SeccompRequest privileged;
  privileged.privileged = true;
  s = BuildSeccomp(privileged);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->is_null());
}

TEST(SeccompLocalhostTest, RelativeMissingAndInvalidFilesAreInvalidArgumentNamingThePath) {
  test::TempDir dir;
  absl::StatusOr<json> s = BuildLocalhost("profiles/x.json");
  EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << s.status();
  EXPECT_TRUE(absl::StrContains(s.status().message(), "profiles/x.json"));

  std::string missing = dir.path() + "/missing.json";
  s = BuildLocalhost(missing);
  EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << s.status();
  EXPECT_TRUE(absl::StrContains(s.status().message(), missing)) << s.status();

  std::string garbage = WriteFile(dir, "garbage.json", "{ not json");
  s = BuildLocalhost(garbage);
  EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << s.status();
  EXPECT_TRUE(absl::StrContains(s.status().message(), garbage));

  std::string bad_action = WriteFile(
      dir, "bad_action.json",
      R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "NOPE"}]})");
  s = BuildLocalhost(bad_action);
  EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << s.status();
  EXPECT_TRUE(absl::StrContains(s.status().message(), "NOPE"));

  std::string wrong_type =
      WriteFile(dir, "wrong_type.json", R"({"defaultAction": 7, "syscalls": []})");
  s = BuildLocalhost(wrong_type);
  EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << s.status();

  std::string no_default = WriteFile(dir, "no_default.json", R"({"syscalls": []})");
  s = BuildLocalhost(no_default);
  EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << s.status();
  EXPECT_TRUE(absl::StrContains(s.status().message(), "defaultAction"));
}

TEST(SeccompLocalhostTest, OciFormIsKeptAndUnknownSyscallsDropped) {
  test::TempDir dir;
  std::string path = WriteFile(dir, "oci.json", R"({
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "architectures": ["SCMP_ARCH_X86_64"],
    "flags": ["SECCOMP_FILTER_FLAG_LOG"],
    "syscalls": [
      {"names": ["read", "write", "not_a_real_syscall"], "action": "SCMP_ACT_ALLOW"},
      {"names": ["only_fake"], "action": "SCMP_ACT_ALLOW"},
      {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
      {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
       "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
    ]})");
  absl::StatusOr<json> s = BuildLocalhost(path);
  ASSERT_TRUE(s.ok()) << s.status();
  ExpectOciSeccompShape(*s);
  EXPECT_EQ((*s)["flags"], json::array({"SECCOMP_FILTER_FLAG_LOG"}));
  ASSERT_EQ((*s)["syscalls"].size(), 3u);
  EXPECT_EQ((*s)["syscalls"][0]["names"], json::array({"read", "write"}));
  EXPECT_EQ((*s)["syscalls"][1]["errnoRet"], 13);
  EXPECT_EQ((*s)["syscalls"][2]["args"][0]["value"], 8);
}

TEST(SeccompLocalhostTest, DockerFormHonoursArchMapIncludesAndExcludes) {
  test::TempDir dir;
  std::string path = WriteFile(dir, "docker.json", R"({
    "defaultAction": "SCMP_ACT_ERRNO",
    "archMap": [
      {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
      {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
    ],
    "syscalls": [
      {"names": ["read"], "action": "SCMP_ACT_ALLOW", "comment": "always"},
      {"name": "write", "action": "SCMP_ACT_ALLOW", "args": null},
      {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
      {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
      {"names": ["cacheflush"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
      {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
      {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
      {"names": ["kcmp"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "999.0"}}
    ]})");
  absl::StatusOr<json> plain = BuildLocalhost(path, DefaultCapabilities());
  ASSERT_TRUE(plain.ok()) << plain.status();
  ExpectOciSeccompShape(*plain);
  std::set<std::string> allowed = PlainAllowed(*plain);
  EXPECT_TRUE(allowed.count("read"));
  EXPECT_TRUE(allowed.count("write"));
  EXPECT_FALSE(allowed.count("mount"));
  EXPECT_TRUE(allowed.count("clone"));
  EXPECT_TRUE(allowed.count("ptrace"));
  EXPECT_FALSE(allowed.count("kcmp"));
#if defined(__x86_64__)
  EXPECT_EQ((*plain)["architectures"],
            json::array({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
  EXPECT_TRUE(allowed.count("arch_prctl"));
  EXPECT_FALSE(allowed.count("cacheflush"));
#endif

  // Docker profiles may spell capabilities without the CAP_ prefix in the request.
  absl::StatusOr<json> admin = BuildLocalhost(path, {"sys_admin"});
  ASSERT_TRUE(admin.ok()) << admin.status();
  allowed = PlainAllowed(*admin);
  EXPECT_TRUE(allowed.count("mount"));
  EXPECT_FALSE(allowed.count("clone"));
}

TEST(SeccompProfileNameTest, DeprecatedStringForms) {
  auto p = ParseSeccompProfileName("runtime/default");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->type, SeccompProfileType::kRuntimeDefault);
  p = ParseSeccompProfileName("docker/default");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->type, SeccompProfileType::kRuntimeDefault);
  p = ParseSeccompProfileName("unconfined");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->type, SeccompProfileType::kUnconfined);
  p = ParseSeccompProfileName("");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->type, SeccompProfileType::kUnconfined);
  p = ParseSeccompProfileName("", SeccompProfileType::kRuntimeDefault);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->type, SeccompProfileType::kRuntimeDefault);
  p = ParseSeccompProfileName("localhost//var/lib/kubelet/seccomp/audit.json");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->type, SeccompProfileType::kLocalhost);
  EXPECT_EQ(p->localhost_path, "/var/lib/kubelet/seccomp/audit.json");

  p = ParseSeccompProfileName("localhost/relative.json");
  EXPECT_TRUE(absl::IsInvalidArgument(p.status()));
  p = ParseSeccompProfileName("strict");
  EXPECT_TRUE(absl::IsInvalidArgument(p.status()));
  EXPECT_TRUE(absl::StrContains(p.status().message(), "strict"));
}

TEST(SeccompProfileNameTest, StructuredCriFieldWinsOverDeprecatedString) {
  runtime::v1::SecurityProfile profile;
  profile.set_profile_type(runtime::v1::SecurityProfile::Localhost);
  profile.set_localhost_ref("/etc/berth/seccomp/strict.json");
  auto p = SeccompProfileFromCri(&profile, "unconfined");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->type, SeccompProfileType::kLocalhost);
  EXPECT_EQ(p->localhost_path, "/etc/berth/seccomp/strict.json");

  profile.set_localhost_ref("");
  EXPECT_TRUE(absl::IsInvalidArgument(SeccompProfileFromCri(&profile, "").status()));

  profile.set_profile_type(runtime::v1::SecurityProfile::Unconfined);
  p = SeccompProfileFromCri(&profile, "runtime/default");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->type, SeccompProfileType::kUnconfined);

  p = SeccompProfileFromCri(nullptr, "runtime/default");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->type, SeccompProfileType::kRuntimeDefault);
}

TEST(SeccompSupportTest, ReportsKernelAndLibrary) {
  SeccompSupportInfo info = SeccompSupport();
  EXPECT_TRUE(info.kernel_seccomp);  // every kernel berth supports has CONFIG_SECCOMP
  EXPECT_TRUE(info.kernel_filter);
  EXPECT_FALSE(info.libseccomp_version.empty());
  EXPECT_GE(info.libseccomp_api_level, 1u);
  json j = info.ToJson();
  EXPECT_EQ(j["libseccompVersion"], info.libseccomp_version);
}

}  // namespace
}  // namespace berth::security
