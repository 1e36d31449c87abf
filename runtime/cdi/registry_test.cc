// The CDI registry: directories by priority, same-directory conflicts, broken files named,
// re-reading on change, bounds, concurrent readers.
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/cdi/cdi.h"
#include "runtime/cdi/cdi_test_util.h"
#include "test/util/temp_dir.h"
#include "util/fs.h"

namespace berth::cdi {
namespace {

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
            (std::vector<std::string>{"example.com/net.accel=claim-3f1c6a1e-0", "nvidia.com/gpu=0",
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
  Write(dir, "v.yaml",
        "cdiVersion: 0.3.0\nkind: vendor.com/class\ndevices:\n- name: dev\n  containerEdits:\n    "
        "env: [L=1]\n");
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
