// CDI: name rules, strict spec parsing (JSON and YAML, versions), the directory registry
// (priority, conflicts, broken files, re-reading) and the edits applied to an OCI spec.
#include "runtime/cdi/cdi.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "test/util/temp_dir.h"
#include "util/fs.h"

namespace berth::cdi {
namespace {

using json = nlohmann::json;

std::string Testdata(const std::string& name) {
  std::ifstream in("runtime/cdi/testdata/specs/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool Mentions(const absl::Status& st, absl::string_view text) {
  return st.message().find(text) != absl::string_view::npos;
}

#define EXPECT_INVALID(expr, text)                                          \
  do {                                                                      \
    absl::Status st_ = (expr);                                              \
    EXPECT_TRUE(absl::IsInvalidArgument(st_)) << st_;                       \
    EXPECT_TRUE(Mentions(st_, text)) << "want \"" << (text) << "\" in " << st_; \
  } while (0)

// A JSON spec of `version` with one device "dev" whose edits are `edits`.
std::string OneDevice(absl::string_view version, absl::string_view edits,
                      absl::string_view kind = "vendor.com/class", absl::string_view name = "dev") {
  return absl::StrCat(R"({"cdiVersion":")", version, R"(","kind":")", kind,
                      R"(","devices":[{"name":")", name, R"(","containerEdits":)", edits, "}]}");
}

absl::Status ParseJson(absl::string_view text) {
  return ParseSpec(text, SpecFormat::kJson, "test.json").status();
}
absl::Status ParseYaml(absl::string_view text) {
  return ParseSpec(text, SpecFormat::kYaml, "test.yaml").status();
}

// ---- names -----------------------------------------------------------------------------------

TEST(CdiNames, QualifiedNamesFollowTheSpecRules) {
  for (const char* good : {"vendor.com/class=dev", "nvidia.com/gpu=0", "nvidia.com/gpu=all",
                           "foo.bar.baz/foo-bar123.B_az=x", "a/b=c", "nvidia.com/gpu=mig-1g.5gb:0",
                           "v/c=GPU-4cf8db2d-06c0-7d70-1a51-e59b25b2c16c"}) {
    absl::StatusOr<QualifiedName> q = ParseQualifiedName(good);
    ASSERT_TRUE(q.ok()) << good << ": " << q.status();
    EXPECT_EQ(q->String(), good);
  }
  absl::StatusOr<QualifiedName> q = ParseQualifiedName("nvidia.com/gpu=0");
  EXPECT_EQ(q->vendor, "nvidia.com");
  EXPECT_EQ(q->cls, "gpu");
  EXPECT_EQ(q->name, "0");
  EXPECT_EQ(q->Kind(), "nvidia.com/gpu");
  for (const char* bad : {"", "dev", "/dev/null", "vendor.com/class", "vendor.com=dev",
                          "vendor.com/class=", "/class=dev", "vendor.com/=dev", "vendor.com/a/b=c",
                          "1vendor/class=dev", "vendor-/class=dev", "vendor/class-=dev",
                          "vendor/class=-dev", "vendor/class=dev-", "vendor/class=de v",
                          "vendor/class=a=b", "ven dor/class=dev", "vendor/cl*ss=dev"}) {
    absl::StatusOr<QualifiedName> r = ParseQualifiedName(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << bad;
    EXPECT_TRUE(Mentions(r.status(), "CDI device")) << r.status();
  }
  EXPECT_FALSE(ParseQualifiedName(absl::StrCat("v/", std::string(64, 'c'), "=d")).ok());
  EXPECT_TRUE(ParseQualifiedName(absl::StrCat("v/", std::string(63, 'c'), "=d")).ok());
}

TEST(CdiNames, CollectsCriDevicesThenAnnotationsOnce) {
  absl::StatusOr<std::vector<std::string>> names = CollectDeviceNames(
      {"b.com/x=1", "a.com/x=0", "b.com/x=1"},
      {{"cdi.k8s.io/plugin_b", "c.com/y=2,a.com/x=0"},
       {"cdi.k8s.io/plugin_a", "d.com/z=3"},
       {"io.kubernetes.container.hash", "not a device"}});
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_EQ(*names, (std::vector<std::string>{"b.com/x=1", "a.com/x=0", "d.com/z=3", "c.com/y=2"}));
  EXPECT_INVALID(CollectDeviceNames({"gpu0"}, {}).status(), "CDI_devices");
  EXPECT_INVALID(CollectDeviceNames({}, {{"cdi.k8s.io/p", "a.com/x=0,"}}).status(),
                 "cdi.k8s.io/p");
  std::vector<std::string> many;
  for (int i = 0; i <= static_cast<int>(kMaxRequestedDevices); ++i) {
    many.push_back(absl::StrCat("a.com/x=", i));
  }
  EXPECT_INVALID(CollectDeviceNames(many, {}).status(), "more than");
}

// ---- parsing ---------------------------------------------------------------------------------

TEST(CdiParse, ReadsTheSampleSpecsOfSeveralVersions) {
  absl::StatusOr<Spec> gpu = ParseSpec(Testdata("nvidia-gpu.yaml"), SpecFormat::kYaml, "gpu.yaml");
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  EXPECT_EQ(gpu->version, "0.5.0");
  EXPECT_EQ(gpu->vendor, "nvidia.com");
  EXPECT_EQ(gpu->cls, "gpu");
  ASSERT_EQ(gpu->devices.size(), 3u);
  EXPECT_EQ(gpu->devices[0].name, "0");
  EXPECT_EQ(gpu->devices[2].name, "all");
  EXPECT_EQ(gpu->devices[0].edits.device_nodes[0].host_path, "/dev/null");
  const DeviceNode& fixed = gpu->devices[2].edits.device_nodes[1];
  EXPECT_EQ(fixed.type, "c");
  EXPECT_EQ(fixed.major, 195);
  EXPECT_EQ(fixed.minor, 1);
  EXPECT_EQ(gpu->edits.env, (std::vector<std::string>{"NVIDIA_VISIBLE_DEVICES=void"}));
  ASSERT_EQ(gpu->edits.mounts.size(), 1u);
  EXPECT_EQ(gpu->edits.mounts[0].options,
            (std::vector<std::string>{"ro", "nosuid", "nodev", "bind"}));
  ASSERT_EQ(gpu->edits.hooks.size(), 1u);
  EXPECT_EQ(gpu->edits.hooks[0].hook_name, "createContainer");
  EXPECT_EQ(gpu->edits.hooks[0].args.size(), 5u);

  absl::StatusOr<Spec> fpga =
      ParseSpec(Testdata("vendor-fpga.json"), SpecFormat::kJson, "fpga.json");
  ASSERT_TRUE(fpga.ok()) << fpga.status();
  EXPECT_EQ(fpga->version, "0.3.0");
  EXPECT_EQ(fpga->devices[0].edits.device_nodes[0].permissions, "rw");
  EXPECT_NE(fpga->FindDevice("fpga1"), nullptr);
  EXPECT_EQ(fpga->FindDevice("fpga2"), nullptr);

  absl::StatusOr<Spec> dra = ParseSpec(Testdata("example-dra.yaml"), SpecFormat::kYaml, "dra.yaml");
  ASSERT_TRUE(dra.ok()) << dra.status();
  EXPECT_EQ(dra->cls, "net.accel");
  const ContainerEdits& e = dra->devices[0].edits;
  EXPECT_EQ(e.additional_gids, (std::vector<uint32_t>{44, 0, 44, 107}));
  EXPECT_EQ(e.mounts[0].type, "tmpfs");
  EXPECT_EQ(e.hooks[0].timeout, 5);
  EXPECT_EQ(e.hooks[0].args, (std::vector<std::string>{"release", "0"}));
}

TEST(CdiParse, AcceptsEveryReleasedVersionFrom030) {
  for (const char* v : {"0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.0.0", "1.1.0",
                        "v0.6.0"}) {
    EXPECT_TRUE(ParseJson(OneDevice(v, R"({"env":["A=1"]})")).ok()) << v;
  }
  for (const char* v : {"0.1.0", "0.2.0", "0.9.0", "2.0.0", "0.3", "latest"}) {
    EXPECT_INVALID(ParseJson(OneDevice(v, R"({"env":["A=1"]})")), "cdiVersion");
  }
  EXPECT_INVALID(ParseJson(R"({"kind":"a.com/b","devices":[{"name":"d","containerEdits":{"env":["A=1"]}}]})"),
                 "cdiVersion: is required");
}

TEST(CdiParse, FieldsNeedTheVersionThatIntroducedThem) {
  struct Case {
    std::string spec;
    std::string needs;
  };
  std::vector<Case> cases = {
      {OneDevice("0.3.0", R"({"mounts":[{"hostPath":"/a","containerPath":"/b","type":"bind"}]})"),
       "0.4.0"},
      {OneDevice("0.4.0", R"({"deviceNodes":[{"path":"/dev/x","hostPath":"/dev/null"}]})"),
       "0.5.0"},
      {OneDevice("0.4.0", R"({"env":["A=1"]})", "vendor.com/class", "0dev"), "0.5.0"},
      {OneDevice("0.5.0", R"({"env":["A=1"]})", "vendor.com/cl.ass"), "0.6.0"},
      {OneDevice("0.6.0", R"({"additionalGids":[5]})"), "0.7.0"},
      {OneDevice("0.6.0", R"({"intelRdt":{"closID":"c"}})"), "0.7.0"},
      {OneDevice("1.0.0", R"({"netDevices":[{"hostInterfaceName":"eth1","name":"net1"}]})"),
       "1.1.0"},
      {OneDevice("0.8.0", R"({"intelRdt":{"enableMonitoring":true}})"), "1.1.0"},
  };
  for (const Case& c : cases) {
    absl::Status st = ParseJson(c.spec);
    EXPECT_INVALID(st, c.needs);
    EXPECT_TRUE(Mentions(st, "too old")) << st;
  }
  EXPECT_TRUE(ParseJson(OneDevice("0.6.0", R"({"env":["A=1"]})", "vendor.com/cl.ass")).ok());
  EXPECT_TRUE(ParseJson(OneDevice("0.7.0", R"({"additionalGids":[5]})")).ok());
}

TEST(CdiParse, RefusesBadSpecsNamingTheFileAndField) {
  struct Case {
    std::string spec;
    std::string what;
  };
  std::vector<Case> cases = {
      {"not json", "not JSON"},
      {"[1,2]", "must be an object"},
      {R"({"cdiVersion":"0.3.0","kind":"vendor.com/class","devices":[]})", "devices"},
      {R"({"cdiVersion":"0.3.0","kind":"vendor.com/class"})", "devices"},
      {R"({"cdiVersion":"0.3.0","kind":"vendorclass","devices":[{"name":"d","containerEdits":{"env":["A=1"]}}]})",
       "kind"},
      {R"({"cdiVersion":"0.3.0","kind":"1vendor/class","devices":[{"name":"d","containerEdits":{"env":["A=1"]}}]})",
       "must start with a letter"},
      {R"({"cdiVersion":"0.3.0","kind":"vendor.com/class","extra":1,"devices":[{"name":"d","containerEdits":{"env":["A=1"]}}]})",
       "unknown field \"extra\""},
      {R"({"cdiVersion":"0.3.0","kind":"vendor.com/class","devices":[{"name":"d","containerEdits":{"env":["A=1"]}},{"name":"d","containerEdits":{"env":["B=1"]}}]})",
       "defined twice"},
      {R"({"cdiVersion":"0.3.0","kind":"vendor.com/class","devices":[{"name":"d"}]})",
       "no containerEdits"},
      {R"({"cdiVersion":"0.3.0","kind":"vendor.com/class","devices":[{"name":"d","containerEdits":{}}]})",
       "no containerEdits"},
      {R"({"cdiVersion":"0.3.0","kind":"vendor.com/class","devices":[{"name":"-d","containerEdits":{"env":["A=1"]}}]})",
       "devices[0].name"},
      {OneDevice("0.3.0", R"({"env":["NOEQUALS"]})"), "devices[0].containerEdits.env[0]"},
      {OneDevice("0.3.0", R"({"env":["=x"]})"), "not KEY=VALUE"},
      {OneDevice("0.3.0", R"({"env":[1]})"), "must be a string"},
      {OneDevice("0.3.0", R"({"deviceNodes":[{"path":"dev/null"}]})"),
       "deviceNodes[0].path: \"dev/null\" is not an absolute path"},
      {OneDevice("0.5.0", R"({"deviceNodes":[{"path":"/dev/x","hostPath":"x"}]})"),
       "hostPath: \"x\" is not an absolute path"},
      {OneDevice("0.3.0", R"({"deviceNodes":[{"hostPath":"/dev/null"}]})"), "path: is required"},
      {OneDevice("0.3.0", R"({"deviceNodes":[{"path":"/dev/x","type":"z"}]})"), "type"},
      {OneDevice("0.3.0", R"({"deviceNodes":[{"path":"/dev/x","permissions":"rwx"}]})"),
       "permissions"},
      {OneDevice("0.3.0", R"({"deviceNodes":[{"path":"/dev/x","major":-1}]})"), "major"},
      {OneDevice("0.3.0", R"({"deviceNodes":[{"path":"/dev/x","minor":1.5}]})"), "minor"},
      {OneDevice("0.3.0", R"({"deviceNodes":[{"path":"/dev/x","fileMode":4096}]})"), "fileMode"},
      {OneDevice("0.3.0", R"({"deviceNodes":[{"path":"/dev/x","uid":4294967296}]})"), "uid"},
      {OneDevice("0.3.0", R"({"deviceNodes":[{"path":"/dev/x","gid":"0"}]})"), "gid"},
      {OneDevice("0.3.0", R"({"mounts":[{"hostPath":"/a","containerPath":"b"}]})"),
       "containerPath: \"b\" is not an absolute path"},
      {OneDevice("0.3.0", R"({"mounts":[{"hostPath":"a","containerPath":"/b"}]})"),
       "hostPath: \"a\" is not an absolute path"},
      {OneDevice("0.3.0", R"({"mounts":[{"containerPath":"/b"}]})"), "hostPath: is required"},
      {OneDevice("0.3.0", R"({"hooks":[{"hookName":"prestop","path":"/bin/true"}]})"),
       "\"prestop\" is not an OCI hook"},
      {OneDevice("0.3.0", R"({"hooks":[{"hookName":"poststop","path":"true"}]})"),
       "hooks[0].path"},
      {OneDevice("0.3.0", R"({"hooks":[{"hookName":"poststop","path":"/bin/true","timeout":0}]})"),
       "timeout"},
      {OneDevice("0.3.0", R"({"hooks":[{"hookName":"poststop","path":"/bin/true","env":["X"]}]})"),
       "hooks[0].env[0]"},
      {OneDevice("0.7.0", R"({"additionalGids":[-1]})"), "additionalGids[0]"},
      {OneDevice("0.7.0", R"({"intelRdt":{"closID":"../x"}})"), "closID"},
      {OneDevice("1.1.0", R"({"netDevices":[{"hostInterfaceName":"eth1","name":"a"},{"hostInterfaceName":"eth1","name":"b"}]})"),
       "listed twice"},
      {OneDevice("0.3.0", R"({"deviceNodes":[{"path":"/dev/x\u0000y"}]})"), "NUL"},
      {OneDevice("0.6.0", R"({"env":["A=1"]},"annotations":{"bad key!":"v"})"), "annotations"},
      {OneDevice("0.3.0", R"({"env":["A=1"],"env":["B=1"]})"), "JSON key \"env\" is repeated"},
      {OneDevice("0.3.0", R"({"Env":["A=1"],"env":["B=1"]})"), "given twice"},
  };
  for (const Case& c : cases) {
    absl::Status st = ParseJson(c.spec);
    EXPECT_INVALID(st, c.what);
    EXPECT_TRUE(Mentions(st, "CDI spec test.json: ")) << st;
  }
}

TEST(CdiParse, FieldNamesMatchCaseInsensitivelyAsGoDoes) {
  // SPEC.md itself spells "additionalGIDs"; Go's encoding/json takes it.
  absl::StatusOr<Spec> s = ParseSpec(
      OneDevice("0.7.0", R"({"additionalGIDs":[7],"Env":["A=1"]})"), SpecFormat::kJson, "x");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->devices[0].edits.additional_gids, (std::vector<uint32_t>{7}));
  EXPECT_EQ(s->devices[0].edits.env, (std::vector<std::string>{"A=1"}));
}

TEST(CdiParse, NullMeansAbsent) {
  absl::StatusOr<Spec> s = ParseSpec(
      OneDevice("0.3.0", R"({"env":["A=1"],"mounts":null,"hooks":null})"), SpecFormat::kJson, "x");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->devices[0].edits.mounts.empty());
}

TEST(CdiParse, YamlScalarsResolveAsTheCdiLibraryReadsThem) {
  absl::StatusOr<Spec> s = ParseSpec(R"(
cdiVersion: 0.5.0
kind: vendor.com/class
devices:
- name: 0            # an int in YAML; sigs.k8s.io/yaml makes it "0" for a string field
  containerEdits:
    deviceNodes:
    - path: /dev/x
      type: c
      major: 0x10
      minor: 7
      fileMode: 0666   # octal, as yaml.v2 reads it
      uid: 1_000
- name: "007"
  containerEdits:
    env: ["A=1", 'B=two words', "C="]
)",
                                     SpecFormat::kYaml, "x.yaml");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->devices[0].name, "0");
  const DeviceNode& d = s->devices[0].edits.device_nodes[0];
  EXPECT_EQ(d.major, 16);
  EXPECT_EQ(d.minor, 7);
  EXPECT_EQ(d.file_mode, 0666u);
  EXPECT_EQ(d.uid, 1000u);
  EXPECT_EQ(s->devices[1].name, "007");
  EXPECT_EQ(s->devices[1].edits.env, (std::vector<std::string>{"A=1", "B=two words", "C="}));

  absl::StatusOr<json> j = YamlToJson("a: ~\nb: true\nc: 'true'\nd: -12\ne: 1.5\nf: [x, 'y']\n");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(*j, json::parse(R"({"a":null,"b":true,"c":"true","d":-12,"e":"1.5","f":["x","y"]})"));
  // JSON is strict about types: a number is not a string there.
  EXPECT_INVALID(ParseJson(R"({"cdiVersion":"0.5.0","kind":"vendor.com/class","devices":[{"name":0,"containerEdits":{"env":["A=1"]}}]})"),
                 "must be a string");
}

TEST(CdiParse, YamlAnchorsWorkButCannotExplode) {
  absl::StatusOr<Spec> s = ParseSpec(R"(
cdiVersion: 0.3.0
kind: vendor.com/class
devices:
- name: a
  containerEdits: &edits
    env: [SHARED=1]
- name: b
  containerEdits: *edits
)",
                                     SpecFormat::kYaml, "x.yaml");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->devices[1].edits.env, (std::vector<std::string>{"SHARED=1"}));

  // The billion laughs: 9 levels of 10 aliases each.
  std::string laughs = "a0: &a0 [lol]\n";
  for (int i = 1; i <= 9; ++i) {
    absl::StrAppend(&laughs, "a", i, ": &a", i, " [");
    for (int k = 0; k < 10; ++k) absl::StrAppend(&laughs, k ? "," : "", "*a", i - 1);
    absl::StrAppend(&laughs, "]\n");
  }
  EXPECT_INVALID(YamlToJson(laughs).status(), "YAML nodes");
  EXPECT_INVALID(ParseYaml(laughs), "CDI spec test.yaml");
  // Few nodes, but each alias of one long string would copy it.
  std::string wide = absl::StrCat("s: &s ", std::string(100 * 1024, 'x'), "\nl: [");
  for (int k = 0; k < 100; ++k) absl::StrAppend(&wide, k ? "," : "", "*s");
  absl::StrAppend(&wide, "]\n");
  EXPECT_INVALID(YamlToJson(wide).status(), "bytes of YAML scalars");
}

TEST(CdiParse, BoundsDepthSizeAndDuplicates) {
  std::string deep_json = std::string(100, '[') + std::string(100, ']');
  EXPECT_INVALID(ParseJson(deep_json), "nested deeper");
  std::string deep_yaml = std::string(100, '[') + std::string(100, ']');
  EXPECT_INVALID(ParseYaml(deep_yaml), "nested deeper");
  std::string block;
  for (int i = 0; i < 60; ++i) block += "- ";
  block += "x\n";
  EXPECT_INVALID(ParseYaml(block), "nested deeper");
  std::string big = OneDevice("0.3.0", absl::StrCat(R"({"env":["A=)", std::string(kMaxSpecFileBytes, 'x'), R"("]})"));
  EXPECT_INVALID(ParseJson(big), "larger than");
  EXPECT_INVALID(ParseJson(OneDevice("0.3.0", absl::StrCat(R"({"env":["A=)",
                                                          std::string(kMaxStringBytes, 'x'),
                                                          R"("]})"))),
                 "longer than");
  EXPECT_INVALID(ParseYaml("cdiVersion: 0.3.0\ncdiVersion: 0.4.0\n"), "repeated");
  EXPECT_INVALID(ParseYaml("[a: b]: c\n"), "key");
  EXPECT_INVALID(ParseYaml("key: [unclosed\n"), "not YAML");
  EXPECT_INVALID(ParseYaml("cdiVersion: !custom 0.3.0\n"), "tag");
  EXPECT_INVALID(ParseYaml(""), "must be an object");
  EXPECT_INVALID(ParseYaml("env: [\"\\xff\"]\n"), "");  // any refusal; never a throw
}

// ---- applying --------------------------------------------------------------------------------

json BaseSpec() {
  return json::parse(R"({
    "ociVersion": "1.0.2",
    "process": {"user": {"uid": 1000, "gid": 1000, "additionalGids": [5]},
                "env": ["PATH=/usr/bin", "A=old", "B=keep"]},
    "mounts": [
      {"destination": "/proc", "type": "proc", "source": "proc"},
      {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
      {"destination": "/dev/shm", "type": "bind", "source": "/run/shm", "options": ["rbind"]},
      {"destination": "/opt/data/", "type": "bind", "source": "/old", "options": ["rbind"]}
    ],
    "linux": {"resources": {"devices": [{"allow": false, "access": "rwm"}]}}
  })");
}

std::shared_ptr<const Spec> MustParse(absl::string_view text, SpecFormat f = SpecFormat::kJson,
                                      absl::string_view origin = "test.json") {
  absl::StatusOr<Spec> s = ParseSpec(text, f, origin);
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok()) return nullptr;
  return std::make_shared<const Spec>(*std::move(s));
}

std::vector<ResolvedDevice> Pick(const std::shared_ptr<const Spec>& spec,
                                 std::vector<std::string> names) {
  std::vector<ResolvedDevice> out;
  for (const std::string& n : names) {
    const Device* d = spec->FindDevice(n);
    EXPECT_NE(d, nullptr) << n;
    out.push_back({absl::StrCat(spec->kind, "=", n), spec, d});
  }
  return out;
}

TEST(CdiApply, EditsEnvMountsDevicesHooksAndGroups) {
  struct stat null_st;
  ASSERT_EQ(stat("/dev/null", &null_st), 0);
  auto spec = MustParse(R"({
    "cdiVersion": "0.7.0", "kind": "vendor.com/class",
    "containerEdits": {"env": ["SPEC=1"], "additionalGids": [44]},
    "devices": [
      {"name": "a", "containerEdits": {
        "env": ["A=new", "C=added"],
        "deviceNodes": [{"path": "/dev/vendor0", "hostPath": "/dev/null"}],
        "mounts": [{"hostPath": "/lib/x.so", "containerPath": "/usr/lib/x.so", "options": ["ro", "bind"]},
                   {"hostPath": "/new", "containerPath": "/opt/data", "type": "bind", "options": ["rbind"]},
                   {"hostPath": "/m", "containerPath": "/a", "options": ["bind"]}],
        "hooks": [{"hookName": "createContainer", "path": "/usr/bin/hook", "args": ["hook", "a"],
                   "env": ["H=1"], "timeout": 10}],
        "additionalGids": [0, 44, 45, 5]}},
      {"name": "b", "containerEdits": {
        "deviceNodes": [{"path": "/dev/vendor1", "hostPath": "/dev/zero", "permissions": "rw",
                         "fileMode": 384, "uid": 0, "gid": 7},
                        {"path": "/dev/vendor2", "type": "c", "major": 240, "minor": 9,
                         "hostPath": "/does/not/exist", "permissions": "none"}],
        "hooks": [{"hookName": "poststop", "path": "/usr/bin/cleanup"}]}}
    ]})");
  ASSERT_NE(spec, nullptr);
  json oci = BaseSpec();
  ASSERT_TRUE(ApplyDevices(Pick(spec, {"a", "b"}), &oci).ok());

  EXPECT_EQ(oci["process"]["env"],
            json({"PATH=/usr/bin", "A=new", "B=keep", "SPEC=1", "C=added"}));
  EXPECT_EQ(oci["process"]["user"]["additionalGids"], json({5, 44, 45}));

  const json& devices = oci["linux"]["devices"];
  ASSERT_EQ(devices.size(), 3u);
  EXPECT_EQ(devices[0]["path"], "/dev/vendor0");
  EXPECT_EQ(devices[0]["type"], "c");
  EXPECT_EQ(devices[0]["major"], major(null_st.st_rdev));
  EXPECT_EQ(devices[0]["minor"], minor(null_st.st_rdev));
  EXPECT_EQ(devices[0]["fileMode"], null_st.st_mode & 07777);
  EXPECT_EQ(devices[0]["uid"], 1000);  // the container's user, as the CDI library does
  EXPECT_EQ(devices[0]["gid"], 1000);
  EXPECT_EQ(devices[1]["path"], "/dev/vendor1");
  EXPECT_EQ(devices[1]["major"], 1);
  EXPECT_EQ(devices[1]["minor"], 5);  // /dev/zero
  EXPECT_EQ(devices[1]["fileMode"], 384);
  EXPECT_EQ(devices[1]["uid"], 0);
  EXPECT_EQ(devices[1]["gid"], 7);
  EXPECT_EQ(devices[2], json::parse(R"({"path":"/dev/vendor2","type":"c","major":240,"minor":9,
                                        "uid":1000,"gid":1000})"));

  const json& rules = oci["linux"]["resources"]["devices"];
  ASSERT_EQ(rules.size(), 3u);  // deny-all, vendor0, vendor1; "none" gets no rule
  EXPECT_EQ(rules[0]["allow"], false);
  EXPECT_EQ(rules[1], (json{{"allow", true}, {"type", "c"}, {"major", major(null_st.st_rdev)},
                            {"minor", minor(null_st.st_rdev)}, {"access", "rwm"}}));
  EXPECT_EQ(rules[2]["access"], "rw");

  std::vector<std::string> dests;
  for (const json& m : oci["mounts"]) dests.push_back(m["destination"]);
  // Stable by depth: /opt/data (2) replaced the old one, /usr/lib/x.so (3) goes last.
  EXPECT_EQ(dests, (std::vector<std::string>{"/proc", "/dev", "/a", "/dev/shm", "/opt/data",
                                             "/usr/lib/x.so"}));
  EXPECT_EQ(oci["mounts"][4]["source"], "/new");
  EXPECT_EQ(oci["mounts"][5], json::parse(R"({"destination":"/usr/lib/x.so","source":"/lib/x.so",
                                             "options":["ro","bind"]})"));

  EXPECT_EQ(oci["hooks"]["createContainer"],
            json::parse(R"([{"path":"/usr/bin/hook","args":["hook","a"],"env":["H=1"],"timeout":10}])"));
  EXPECT_EQ(oci["hooks"]["poststop"], json::parse(R"([{"path":"/usr/bin/cleanup"}])"));
}

TEST(CdiApply, SpecEditsOnceAndDeviceNodesReplacedByPath) {
  auto spec = MustParse(R"({
    "cdiVersion": "0.3.0", "kind": "vendor.com/class",
    "containerEdits": {"hooks": [{"hookName": "prestart", "path": "/bin/once"}],
                       "deviceNodes": [{"path": "/dev/ctl", "type": "c", "major": 10, "minor": 1}]},
    "devices": [{"name": "a", "containerEdits": {"env": ["A=1"]}},
                {"name": "b", "containerEdits": {"deviceNodes": [{"path": "/dev/ctl", "type": "c", "major": 10, "minor": 2}]}}]
  })");
  ASSERT_NE(spec, nullptr);
  json oci = {{"linux", {{"devices", {{{"path", "/dev/ctl"}, {"type", "c"}, {"major", 1}, {"minor", 1}}}}}}};
  ASSERT_TRUE(ApplyDevices(Pick(spec, {"a", "b"}), &oci).ok());
  EXPECT_EQ(oci["hooks"]["prestart"].size(), 1u);
  ASSERT_EQ(oci["linux"]["devices"].size(), 1u);
  EXPECT_EQ(oci["linux"]["devices"][0]["minor"], 2);  // the device's edit came after the spec's
  EXPECT_EQ(oci["linux"]["resources"]["devices"].size(), 2u);
}

TEST(CdiApply, RefusesNodesThatAreNotDevicesAndLeavesTheSpecAlone) {
  test::TempDir dir;
  std::string file = dir.path() + "/regular";
  ASSERT_TRUE(WriteFileAtomic(file, "x").ok());
  for (const std::string& node :
       {absl::StrCat(R"({"path":"/dev/x","hostPath":")", file, R"("})"),
        absl::StrCat(R"({"path":"/dev/x","hostPath":")", dir.path(), R"(/missing"})"),
        std::string(R"({"path":"/dev/x","hostPath":"/dev/null","type":"b"})")}) {
    auto spec = MustParse(OneDevice("0.5.0", absl::StrCat(R"({"env":["A=1"],"deviceNodes":[)", node, "]}")));
    ASSERT_NE(spec, nullptr);
    json oci = BaseSpec();
    absl::Status st = ApplyDevices(Pick(spec, {"dev"}), &oci);
    EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
    EXPECT_TRUE(Mentions(st, "vendor.com/class=dev")) << st;
    EXPECT_EQ(oci, BaseSpec()) << "a failed apply must not leave half its edits";
  }
}

TEST(CdiApply, RefusesIntelRdtAndNetDevicesExplicitly) {
  auto rdt = MustParse(OneDevice("0.7.0", R"({"intelRdt":{"closID":"gold"}})"));
  auto net = MustParse(OneDevice("1.1.0", R"({"netDevices":[{"hostInterfaceName":"eth1","name":"net1"}]})"));
  ASSERT_TRUE(rdt && net);
  json oci = BaseSpec();
  absl::Status st = ApplyDevices(Pick(rdt, {"dev"}), &oci);
  EXPECT_TRUE(absl::IsUnimplemented(st)) << st;
  EXPECT_TRUE(Mentions(st, "intelRdt")) << st;
  st = ApplyDevices(Pick(net, {"dev"}), &oci);
  EXPECT_TRUE(absl::IsUnimplemented(st)) << st;
  EXPECT_TRUE(Mentions(st, "netDevices")) << st;
  EXPECT_EQ(oci, BaseSpec());
}

TEST(CdiApply, WrongShapedOciSpecIsAnErrorNotAThrow) {
  auto spec = MustParse(OneDevice("0.3.0", R"({"env":["A=1"],"mounts":[{"hostPath":"/a","containerPath":"/b"}]})"));
  ASSERT_NE(spec, nullptr);
  for (json oci : {json::parse(R"({"process":[]})"), json::parse(R"({"process":{"env":{}}})"),
                   json::parse(R"({"mounts":{}})"), json::parse("[]")}) {
    json before = oci;
    EXPECT_FALSE(ApplyDevices(Pick(spec, {"dev"}), &oci).ok()) << before;
    EXPECT_EQ(oci, before);
  }
  json empty = json::object();
  ASSERT_TRUE(ApplyDevices(Pick(spec, {"dev"}), &empty).ok());
  EXPECT_EQ(empty["process"]["env"], json({"A=1"}));
}

// ---- registry --------------------------------------------------------------------------------

class CdiRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    etc_ = root_.path() + "/etc/cdi";
    run_ = root_.path() + "/run/cdi";
    ASSERT_TRUE(MakeDirs(etc_).ok());
    ASSERT_TRUE(MakeDirs(run_).ok());
  }
  void Write(const std::string& dir, const std::string& name, const std::string& text) {
    ASSERT_TRUE(WriteFileAtomic(dir + "/" + name, text).ok());
  }
  test::TempDir root_;
  std::string etc_, run_;
};

TEST_F(CdiRegistryTest, ResolvesFromBothDirectoriesAndFormats) {
  Write(etc_, "gpu.yaml", Testdata("nvidia-gpu.yaml"));
  Write(etc_, "fpga.json", Testdata("vendor-fpga.json"));
  Write(run_, "dra.yml", Testdata("example-dra.yaml"));
  Write(run_, "notes.txt", "ignored");
  ASSERT_TRUE(MakeDirs(run_ + "/sub.json").ok());  // a directory is not a spec
  Registry reg({etc_, run_, root_.path() + "/absent"});
  EXPECT_EQ(reg.ListDevices(),
            (std::vector<std::string>{"example.com/net.accel=claim-3f1c6a1e-0",
                                      "nvidia.com/gpu=0",
                                      "nvidia.com/gpu=GPU-4cf8db2d-06c0-7d70-1a51-e59b25b2c16c",
                                      "nvidia.com/gpu=all", "vendor.com/fpga=fpga0",
                                      "vendor.com/fpga=fpga1"}));
  EXPECT_TRUE(reg.Errors().empty());
  absl::StatusOr<std::vector<ResolvedDevice>> r =
      reg.Resolve({"nvidia.com/gpu=all", "vendor.com/fpga=fpga1", "nvidia.com/gpu=all"});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].qualified_name, "nvidia.com/gpu=all");
  EXPECT_EQ((*r)[0].device->name, "all");
  EXPECT_EQ((*r)[0].spec->path, etc_ + "/gpu.yaml");
  EXPECT_EQ((*r)[1].spec->path, etc_ + "/fpga.json");

  json oci = BaseSpec();
  ASSERT_TRUE(reg.InjectDevices({"nvidia.com/gpu=0", "nvidia.com/gpu=all"}, &oci).ok());
  // nvidiactl (spec), nvidia0 (both devices, replaced), nvidia1.
  EXPECT_EQ(oci["linux"]["devices"].size(), 3u);
  EXPECT_EQ(oci["hooks"]["createContainer"].size(), 1u);
  json untouched = BaseSpec();
  ASSERT_TRUE(reg.InjectDevices({}, &untouched).ok());
  EXPECT_EQ(untouched, BaseSpec());
}

TEST_F(CdiRegistryTest, LaterDirectoryWinsAndSameDirectoryConflictsCancel) {
  Write(etc_, "a.json", OneDevice("0.3.0", R"({"env":["FROM=etc"]})", "vendor.com/class", "x"));
  Write(run_, "a.json", OneDevice("0.3.0", R"({"env":["FROM=run"]})", "vendor.com/class", "x"));
  Write(etc_, "b1.json", OneDevice("0.3.0", R"({"env":["FROM=b1"]})", "vendor.com/class", "y"));
  Write(etc_, "b2.json", OneDevice("0.3.0", R"({"env":["FROM=b2"]})", "vendor.com/class", "y"));
  Registry reg({etc_, run_});
  absl::StatusOr<std::vector<ResolvedDevice>> r = reg.Resolve({"vendor.com/class=x"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].spec->path, run_ + "/a.json");
  EXPECT_EQ((*r)[0].device->edits.env[0], "FROM=run");

  absl::Status st = reg.Resolve({"vendor.com/class=y"}).status();
  EXPECT_INVALID(st, "vendor.com/class=y");
  EXPECT_TRUE(Mentions(st, "b1.json") && Mentions(st, "b2.json")) << st;
  EXPECT_EQ(reg.Errors().size(), 2u);

  // A later directory's definition settles an earlier directory's conflict.
  Write(run_, "c.json", OneDevice("0.3.0", R"({"env":["FROM=c"]})", "vendor.com/class", "y"));
  r = reg.Resolve({"vendor.com/class=y"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].spec->path, run_ + "/c.json");
}

TEST_F(CdiRegistryTest, UnknownAndMalformedNamesAreInvalidArgumentNamingThem) {
  Write(etc_, "fpga.json", Testdata("vendor-fpga.json"));
  Registry reg({etc_, run_});
  absl::Status st = reg.Resolve({"vendor.com/fpga=fpga9"}).status();
  EXPECT_INVALID(st, "unknown CDI device \"vendor.com/fpga=fpga9\"");
  EXPECT_FALSE(Mentions(st, "no spec file defines kind")) << st;
  st = reg.Resolve({"other.com/gpu=0"}).status();
  EXPECT_INVALID(st, "no spec file defines kind \"other.com/gpu\"");
  EXPECT_TRUE(Mentions(st, etc_)) << st;
  EXPECT_INVALID(reg.Resolve({"vendor.com/fpga=fpga0", "fpga0"}).status(), "\"fpga0\"");
  EXPECT_INVALID(reg.InjectDevices({"vendor.com/fpga"}, nullptr), "fully qualified");
  // "all" is a device name like any other: this vendor defines none.
  EXPECT_INVALID(reg.Resolve({"vendor.com/fpga=all"}).status(), "vendor.com/fpga=all");
}

TEST_F(CdiRegistryTest, ABrokenFileHidesOnlyItsOwnDevicesAndIsNamed) {
  Write(etc_, "fpga.json", Testdata("vendor-fpga.json"));
  Write(etc_, "gpu.json", R"({"cdiVersion":"0.3.0","kind":"nvidia.com/gpu","devices":[
      {"name":"0","containerEdits":{"deviceNodes":[{"path":"relative"}]}}]})");
  Write(etc_, "garbage.yaml", "{{{ not yaml");
  Registry reg({etc_, run_});
  ASSERT_TRUE(reg.Resolve({"vendor.com/fpga=fpga0"}).ok());
  absl::Status st = reg.Resolve({"nvidia.com/gpu=0"}).status();
  EXPECT_INVALID(st, "unknown CDI device \"nvidia.com/gpu=0\"");
  EXPECT_TRUE(Mentions(st, etc_ + "/gpu.json: devices[0].containerEdits.deviceNodes[0].path"))
      << st;
  EXPECT_TRUE(Mentions(st, "garbage.yaml")) << st;  // its kind is unknown: it may have meant this
  // A miss on the intact vendor names only files that may be of its kind.
  st = reg.Resolve({"vendor.com/fpga=fpga7"}).status();
  EXPECT_FALSE(Mentions(st, "gpu.json")) << st;
  std::vector<SpecFileError> errors = reg.Errors();
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].path, etc_ + "/garbage.yaml");
  EXPECT_EQ(errors[1].path, etc_ + "/gpu.json");
  EXPECT_EQ(errors[1].kind, "nvidia.com/gpu");
}

TEST_F(CdiRegistryTest, RereadsWhenFilesChangeAppearOrGo) {
  Registry reg({etc_, run_});
  EXPECT_FALSE(reg.Resolve({"vendor.com/class=dev"}).ok());
  Write(run_, "v.json", OneDevice("0.3.0", R"({"env":["V=1"]})"));
  absl::StatusOr<std::vector<ResolvedDevice>> r = reg.Resolve({"vendor.com/class=dev"});
  ASSERT_TRUE(r.ok()) << r.status();
  std::shared_ptr<const Spec> first = (*r)[0].spec;
  EXPECT_EQ(first->devices[0].edits.env[0], "V=1");

  // Unchanged: the same parsed spec, nothing read again.
  r = reg.Resolve({"vendor.com/class=dev"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].spec, first);

  // Rewritten in place (same inode, another size) and atomically (new inode).
  {
    std::ofstream out(run_ + "/v.json", std::ios::trunc);
    out << OneDevice("0.3.0", R"({"env":["V=22"]})");
  }
  r = reg.Resolve({"vendor.com/class=dev"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].device->edits.env[0], "V=22");
  EXPECT_EQ(first->devices[0].edits.env[0], "V=1") << "a resolved spec stays valid";
  Write(run_, "v.json", OneDevice("0.3.0", R"({"env":["V=3"]})"));
  r = reg.Resolve({"vendor.com/class=dev"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].device->edits.env[0], "V=3");

  // Broken, then fixed, then gone.
  Write(run_, "v.json", "{");
  EXPECT_INVALID(reg.Resolve({"vendor.com/class=dev"}).status(), "v.json");
  Write(run_, "v.json", OneDevice("0.3.0", R"({"env":["V=4"]})"));
  ASSERT_TRUE(reg.Resolve({"vendor.com/class=dev"}).ok());
  ASSERT_EQ(unlink((run_ + "/v.json").c_str()), 0);
  EXPECT_INVALID(reg.Resolve({"vendor.com/class=dev"}).status(), "unknown CDI device");

  // A directory that appears after the registry was made.
  test::TempDir later;
  std::string dir = later.path() + "/cdi";
  Registry late({dir});
  EXPECT_TRUE(late.ListDevices().empty());
  ASSERT_TRUE(MakeDirs(dir).ok());
  Write(dir, "v.yaml", "cdiVersion: 0.3.0\nkind: vendor.com/class\ndevices:\n- name: dev\n  containerEdits:\n    env: [L=1]\n");
  EXPECT_EQ(late.ListDevices(), (std::vector<std::string>{"vendor.com/class=dev"}));
}

TEST_F(CdiRegistryTest, RefusesOversizedFiles) {
  Write(etc_, "big.json", std::string(kMaxSpecFileBytes + 1, ' '));
  Registry reg({etc_});
  std::vector<SpecFileError> errors = reg.Errors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("larger than"), std::string::npos) << errors[0].message;
}

TEST_F(CdiRegistryTest, ConcurrentResolvesWhileFilesChange) {
  Write(etc_, "v.json", OneDevice("0.3.0", R"({"env":["V=0"]})"));
  Registry reg({etc_, run_});
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      while (!stop) {
        json oci = BaseSpec();
        if (!reg.InjectDevices({"vendor.com/class=dev"}, &oci).ok()) ++failures;
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    Write(etc_, "v.json", OneDevice("0.3.0", absl::StrCat(R"({"env":["V=)", i, R"("]})")));
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures, 0);  // atomic renames: always one whole file or the other
  absl::StatusOr<std::vector<ResolvedDevice>> r = reg.Resolve({"vendor.com/class=dev"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].device->edits.env[0], "V=199");
}

}  // namespace
}  // namespace berth::cdi
