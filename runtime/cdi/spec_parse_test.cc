// CDI names (the spec's character rules, qualified names, what a container requests) and strict
// spec parsing (JSON and YAML, versions, bounds).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/cdi/cdi.h"
#include "runtime/cdi/cdi_test_util.h"

namespace berth::cdi {
namespace {

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
      {"b.com/x=1", "a.com/x=0", "b.com/x=1"}, {{"cdi.k8s.io/plugin_b", "c.com/y=2,a.com/x=0"},
                                                {"cdi.k8s.io/plugin_a", "d.com/z=3"},
                                                {"io.kubernetes.container.hash", "not a device"}});
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_EQ(*names, (std::vector<std::string>{"b.com/x=1", "a.com/x=0", "d.com/z=3", "c.com/y=2"}));
  EXPECT_INVALID(CollectDeviceNames({"gpu0"}, {}).status(), "CDI_devices");
  EXPECT_INVALID(CollectDeviceNames({}, {{"cdi.k8s.io/p", "a.com/x=0,"}}).status(), "cdi.k8s.io/p");
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
  for (const char* v :
       {"0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.0.0", "1.1.0", "v0.6.0"}) {
    EXPECT_TRUE(ParseJson(OneDevice(v, R"({"env":["A=1"]})")).ok()) << v;
  }
  for (const char* v : {"0.1.0", "0.2.0", "0.9.0", "2.0.0", "0.3", "latest"}) {
    EXPECT_INVALID(ParseJson(OneDevice(v, R"({"env":["A=1"]})")), "cdiVersion");
  }
  EXPECT_INVALID(
      ParseJson(R"({"kind":"a.com/b","devices":[{"name":"d","containerEdits":{"env":["A=1"]}}]})"),
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
      {OneDevice("0.3.0", R"({"hooks":[{"hookName":"poststop","path":"true"}]})"), "hooks[0].path"},
      {OneDevice("0.3.0", R"({"hooks":[{"hookName":"poststop","path":"/bin/true","timeout":0}]})"),
       "timeout"},
      {OneDevice("0.3.0", R"({"hooks":[{"hookName":"poststop","path":"/bin/true","env":["X"]}]})"),
       "hooks[0].env[0]"},
      {OneDevice("0.7.0", R"({"additionalGids":[-1]})"), "additionalGids[0]"},
      {OneDevice("0.7.0", R"({"intelRdt":{"closID":"../x"}})"), "closID"},
      {OneDevice(
           "1.1.0",
           R"({"netDevices":[{"hostInterfaceName":"eth1","name":"a"},{"hostInterfaceName":"eth1","name":"b"}]})"),
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
  absl::StatusOr<Spec> s = ParseSpec(OneDevice("0.7.0", R"({"additionalGIDs":[7],"Env":["A=1"]})"),
                                     SpecFormat::kJson, "x");
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
  EXPECT_INVALID(
      ParseJson(
          R"({"cdiVersion":"0.5.0","kind":"vendor.com/class","devices":[{"name":0,"containerEdits":{"env":["A=1"]}}]})"),
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
  std::string big = OneDevice(
      "0.3.0", absl::StrCat(R"({"env":["A=)", std::string(kMaxSpecFileBytes, 'x'), R"("]})"));
  EXPECT_INVALID(ParseJson(big), "larger than");
  EXPECT_INVALID(
      ParseJson(OneDevice(
          "0.3.0", absl::StrCat(R"({"env":["A=)", std::string(kMaxStringBytes, 'x'), R"("]})"))),
      "longer than");
  EXPECT_INVALID(ParseYaml("cdiVersion: 0.3.0\ncdiVersion: 0.4.0\n"), "repeated");
  EXPECT_INVALID(ParseYaml("[a: b]: c\n"), "key");
  EXPECT_INVALID(ParseYaml("key: [unclosed\n"), "not YAML");
  EXPECT_INVALID(ParseYaml("cdiVersion: !custom 0.3.0\n"), "tag");
  EXPECT_INVALID(ParseYaml(""), "must be an object");
  EXPECT_INVALID(ParseYaml("env: [\"\\xff\"]\n"), "");  // any refusal; never a throw
}

}  // namespace
}  // namespace berth::cdi
