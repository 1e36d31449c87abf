// CRI LinuxContainerResources to OCI linux.resources.
#include "runtime/cgroups/resources.h"

#include "gtest/gtest.h"
#include "proto/runtime/v1/api.pb.h"

namespace berth::cgroups {
namespace {

using nlohmann::json;

runtime::v1::LinuxContainerResources Full() {
  runtime::v1::LinuxContainerResources r;
  r.set_cpu_shares(512);
  r.set_cpu_quota(50000);
  r.set_cpu_period(100000);
  r.set_cpuset_cpus("0-1");
  r.set_cpuset_mems("0");
  r.set_memory_limit_in_bytes(256 << 20);
  r.set_memory_swap_limit_in_bytes(512 << 20);
  r.set_oom_score_adj(500);
  auto* h = r.add_hugepage_limits();
  h->set_page_size("2MB");
  h->set_limit(4 << 21);
  (*r.mutable_unified())["memory.high"] = "200000000";
  return r;
}

TEST(OciResourcesTest, MapsEveryCpuAndMemoryField) {
  json j = ToOciResources(Full(), CgroupMode::kHybrid);
  EXPECT_EQ(j["cpu"]["shares"], 512);
  EXPECT_EQ(j["cpu"]["quota"], 50000);
  EXPECT_EQ(j["cpu"]["period"], 100000);
  EXPECT_EQ(j["cpu"]["cpus"], "0-1");
  EXPECT_EQ(j["cpu"]["mems"], "0");
  EXPECT_EQ(j["memory"]["limit"], 256 << 20);
  EXPECT_EQ(j["memory"]["swap"], 512 << 20);
  ASSERT_EQ(j["hugepageLimits"].size(), 1u);
  EXPECT_EQ(j["hugepageLimits"][0]["pageSize"], "2MB");
  EXPECT_EQ(j["hugepageLimits"][0]["limit"], 4 << 21);
  // No per-container pids field in CRI, and unified is v2-only.
  EXPECT_FALSE(j.contains("pids"));
  EXPECT_FALSE(j.contains("unified"));
  // Only OCI resource fields.
  for (const auto& [k, v] : j.items()) {
    EXPECT_TRUE(k == "cpu" || k == "memory" || k == "hugepageLimits" || k == "pids" ||
                k == "unified")
        << k;
  }
}

TEST(OciResourcesTest, UnifiedIsPassedOnV2Only) {
  json j = ToOciResources(Full(), CgroupMode::kUnified);
  EXPECT_EQ(j["unified"]["memory.high"], "200000000");
}

TEST(OciResourcesTest, MemoryLimitAloneMeansNoSwap) {
  runtime::v1::LinuxContainerResources r;
  r.set_memory_limit_in_bytes(64 << 20);
  json j = ToOciResources(r, CgroupMode::kLegacy);
  EXPECT_EQ(j["memory"]["limit"], 64 << 20);
  EXPECT_EQ(j["memory"]["swap"], 64 << 20);
  j = ToOciResources(r, CgroupMode::kLegacy, {.swap_controller = false});
  EXPECT_FALSE(j["memory"].contains("swap"));
}

TEST(OciResourcesTest, EmptyResourcesGiveEmptyObjectAndPidsComeFromOptions) {
  runtime::v1::LinuxContainerResources r;
  EXPECT_EQ(ToOciResources(r, CgroupMode::kHybrid), json::object());
  json j = ToOciResources(r, CgroupMode::kHybrid, {.pids_limit = 1024});
  EXPECT_EQ(j["pids"]["limit"], 1024);
}

TEST(ToOciResourcesTest, HugetlbLimitsOnlyForSizesTheHostCanLimit) {
  runtime::v1::LinuxContainerResources r;
  auto* two = r.add_hugepage_limits();
  two->set_page_size("2MB");
  two->set_limit(0);
  auto* one = r.add_hugepage_limits();
  one->set_page_size("1GB");
  one->set_limit(1 << 30);
  ResourceOptions o;
  o.hugetlb_page_sizes = std::vector<std::string>{"2MB"};
  json j = ToOciResources(r, CgroupMode::kLegacy, o);
  ASSERT_EQ(j["hugepageLimits"].size(), 1u);
  EXPECT_EQ(j["hugepageLimits"][0]["pageSize"], "2MB");
  // No hugetlb controller: kubelet's zero limits must not fail the container.
  o.hugetlb_page_sizes = std::vector<std::string>{};
  EXPECT_FALSE(ToOciResources(r, CgroupMode::kLegacy, o).contains("hugepageLimits"));
}

}  // namespace
}  // namespace berth::cgroups
