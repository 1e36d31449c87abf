// CDI edits applied to an OCI spec: environment, device nodes read from the host, cgroup rules,
// mounts in depth order, hooks, groups; all or nothing.
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/cdi/cdi.h"
#include "runtime/cdi/cdi_test_util.h"
#include "test/util/temp_dir.h"
#include "util/fs.h"

namespace berth::cdi {
namespace {

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

  EXPECT_EQ(oci["process"]["env"], json({"PATH=/usr/bin", "A=new", "B=keep", "SPEC=1", "C=added"}));
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
  EXPECT_EQ(rules[1], (json{{"allow", true},
                            {"type", "c"},
                            {"major", major(null_st.st_rdev)},
                            {"minor", minor(null_st.st_rdev)},
                            {"access", "rwm"}}));
  EXPECT_EQ(rules[2]["access"], "rw");

  std::vector<std::string> dests;
  for (const json& m : oci["mounts"]) dests.push_back(m["destination"]);
  // Stable by depth: /opt/data (2) replaced the old one, /usr/lib/x.so (3) goes last.
  EXPECT_EQ(dests, (std::vector<std::string>{"/proc", "/dev", "/a", "/dev/shm", "/opt/data",
                                             "/usr/lib/x.so"}));
  EXPECT_EQ(oci["mounts"][4]["source"], "/new");
  EXPECT_EQ(oci["mounts"][5], json::parse(R"({"destination":"/usr/lib/x.so","source":"/lib/x.so",
                                             "options":["ro","bind"]})"));

  EXPECT_EQ(
      oci["hooks"]["createContainer"],
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
  json oci = {{"linux",
               {{"devices", {{{"path", "/dev/ctl"}, {"type", "c"}, {"major", 1}, {"minor", 1}}}}}}};
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
    auto spec = MustParse(
        OneDevice("0.5.0", absl::StrCat(R"({"env":["A=1"],"deviceNodes":[)", node, "]}")));
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
  auto net = MustParse(
      OneDevice("1.1.0", R"({"netDevices":[{"hostInterfaceName":"eth1","name":"net1"}]})"));
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
  auto spec = MustParse(
      OneDevice("0.3.0", R"({"env":["A=1"],"mounts":[{"hostPath":"/a","containerPath":"/b"}]})"));
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

}  // namespace
}  // namespace berth::cdi
