// CniManager with the real CNI plugins (root only): pods on a private test bridge reach each other
// and a hostPort, DEL releases everything even after a restart, and broken or hung plugins fail
// with clear errors. Everything created (bridge, netns, iptables rules) is removed afterwards.
#include "network/cni_manager.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "network/netns.h"
#include "nlohmann/json.hpp"
#include "test/network/netns_exec.h"
#include "test/util/temp_dir.h"
#include "util/fd.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace berth::network {
namespace {

constexpr char kBridge[] = "berthtest0";
constexpr char kNetwork[] = "berthtest";
constexpr char kSubnetPrefix[] = "10.250.77.";
constexpr char kGateway[] = "10.250.77.1";

std::string Output(const std::vector<std::string>& argv) {
  auto r = RunProcess(argv);
  return r.ok() ? r->out : "";
}

std::vector<std::string> Lines(const std::string& s) {
  return absl::StrSplit(s, '\n', absl::SkipEmpty());
}

// Polls `pred` for a while: for effects the kernel completes asynchronously (netns destruction).
bool Eventually(const std::function<bool()>& pred) {
  for (int i = 0; i < 300; ++i) {
    if (pred()) return true;
    usleep(50 * 1000);
  }
  return pred();
}

std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> out;
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
  if (!d) return out;
  while (dirent* e = readdir(d.get())) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  return out;
}

// Deletes the rules of nat `chain` that `pred` picks (highest number first) and returns their
// targets.
std::vector<std::string> DeleteNatRules(const std::string& chain,
                                        const std::function<bool(const std::string&)>& pred) {
  std::vector<std::pair<int, std::string>> doomed;
  for (const std::string& line :
       Lines(Output({"iptables", "-w", "-t", "nat", "-L", chain, "--line-numbers", "-n"}))) {
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    int num;
    if (f.size() < 2 || !absl::SimpleAtoi(f[0], &num) || !pred(line)) continue;
    doomed.emplace_back(num, f[1]);
  }
  std::vector<std::string> targets;
  for (auto it = doomed.rbegin(); it != doomed.rend(); ++it) {
    Output({"iptables", "-w", "-t", "nat", "-D", chain, std::to_string(it->first)});
    targets.push_back(it->second);
  }
  return targets;
}

void DeleteNatChain(const std::string& chain) {
  Output({"iptables", "-w", "-t", "nat", "-F", chain});
  Output({"iptables", "-w", "-t", "nat", "-X", chain});
}

bool NatChainExists(const std::string& chain) {
  auto r = RunProcess({"iptables", "-w", "-t", "nat", "-S", chain});
  return r.ok() && r->ok();
}

std::string Conflist(const std::string& data_dir, bool ip_masq = true) {
  nlohmann::json j = {
      {"cniVersion", "1.0.0"},
      {"name", kNetwork},
      {"plugins",
       {{{"type", "bridge"},
         {"bridge", kBridge},
         {"isGateway", true},
         {"ipMasq", ip_masq},
         {"hairpinMode", true},
         {"ipam",
          {{"type", "host-local"},
           {"ranges", {{{{"subnet", "10.250.77.0/24"}, {"gateway", kGateway}}}}},
           {"routes", {{{"dst", "0.0.0.0/0"}}}},
           {"dataDir", data_dir}}}},
        {{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}, {"snat", true}},
        {{"type", "loopback"}}}}};
  return j.dump(2);
}

class CniManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "needs root";
    // One test process at a time owns the test bridge, subnet and pod names.
    host_lock_.reset(open("/run/lock/berth-network-test.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    ASSERT_TRUE(host_lock_.valid());
    ASSERT_EQ(flock(host_lock_.get(), LOCK_EX), 0);
    for (const std::string* d : {&conf_dir_, &cache_dir_, &data_dir_, &bin_dir_})
      ASSERT_TRUE(MakeDirs(*d).ok());
    portmap_chains_existed_ = NatChainExists("CNI-HOSTPORT-DNAT");
    ip_forward_ = ReadFile("/proc/sys/net/ipv4/ip_forward").value_or("");
    Output({"ip", "link", "del", kBridge});  // from an earlier run that was killed
    WriteConfig(Conflist(data_dir_));
  }

  void TearDown() override {
    // Pods a failed test left attached: DEL through the cache, then drop their namespaces.
    if (auto m = CniManager::Create(Options(absl::Seconds(10))); m.ok()) {
      for (const auto& pod : pods_) (*m)->TearDown(pod).IgnoreError();
    }
    if (auto l = ListNetns(netns_dir_); l.ok()) {
      for (const auto& p : *l) RemoveNetns(p).IgnoreError();
    }
    while (umount2(netns_dir_.c_str(), MNT_DETACH) == 0) {
    }
    // Masquerade chains bridge could not remove (its DEL needs the netns for that).
    for (const auto& chain : DeleteNatRules("POSTROUTING", [](const std::string& l) {
           return absl::StrContains(l, absl::StrCat("name: \"", kNetwork, "\""));
         })) {
      DeleteNatChain(chain);
    }
    Output({"ip", "link", "del", kBridge});
    // portmap's top-level chains are never removed by DEL; drop them when this test made them
    // and no one else has mappings in them.
    if (!portmap_chains_existed_ && NatChainExists("CNI-HOSTPORT-DNAT") &&
        Lines(Output({"iptables", "-w", "-t", "nat", "-S", "CNI-HOSTPORT-DNAT"})).size() <= 1) {
      for (const char* c : {"PREROUTING", "OUTPUT"}) {
        DeleteNatRules(
            c, [](const std::string& l) { return absl::StrContains(l, "CNI-HOSTPORT-DNAT"); });
      }
      DeleteNatRules("POSTROUTING", [](const std::string& l) {
        return absl::StrContains(l, "CNI-HOSTPORT-MASQ");
      });
      for (const char* c : {"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ"})
        DeleteNatChain(c);
    }
    // bridge's isGateway turned forwarding on; put the host back as it was.
    if (!ip_forward_.empty()) {
      UniqueFd fd(open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC));
      if (fd.valid() && write(fd.get(), ip_forward_.data(), ip_forward_.size()) < 0) {
        ADD_FAILURE() << "could not restore net.ipv4.ip_forward";
      }
    }
  }

  void WriteConfig(const std::string& text, const std::string& name = "10-test.conflist") {
    ASSERT_TRUE(WriteFileAtomic(conf_dir_ + "/" + name, text).ok());
  }

  CniOptions Options(absl::Duration timeout = absl::Seconds(60)) {
    CniOptions o;
    o.conf_dir = conf_dir_;
    o.bin_dirs = {bin_dir_, "/opt/cni/bin", "/usr/lib/cni"};
    o.cache_dir = cache_dir_;
    o.plugin_timeout = timeout;
    return o;
  }

  std::unique_ptr<CniManager> NewManager(absl::Duration timeout = absl::Seconds(60)) {
    auto m = CniManager::Create(Options(timeout));
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *std::move(m) : nullptr;
  }

  // A pod with its own namespace, remembered for cleanup.
  PodNetworkRequest NewPod(const std::string& id) {
    PodNetworkRequest r;
    r.pod_id = id;
    r.name = "name-" + id;
    r.namespace_ = "default";
    r.uid = "uid-" + id;
    auto ns = CreateNetns(netns_dir_, id);
    EXPECT_TRUE(ns.ok()) << ns.status();
    if (ns.ok()) r.netns_path = *ns;
    pods_.push_back(r);
    return r;
  }

  // IPs host-local has reserved in the test network.
  std::set<std::string> Reservations() {
    std::set<std::string> out;
    for (const auto& n : DirEntries(data_dir_ + "/" + kNetwork)) {
      if (absl::StartsWith(n, kSubnetPrefix)) out.insert(n);
    }
    return out;
  }

  std::vector<std::string> BridgePorts() {
    return Lines(Output({"ip", "-o", "link", "show", "master", kBridge}));
  }

  void WritePlugin(const std::string& name, const std::string& script) {
    std::string p = bin_dir_ + "/" + name;
    ASSERT_TRUE(WriteFileAtomic(p, script, 0755).ok());
  }

  UniqueFd host_lock_;  // released last, after the cleanup in TearDown
  test::TempDir tmp_;
  std::string conf_dir_ = tmp_.path() + "/net.d";
  std::string cache_dir_ = tmp_.path() + "/cache";
  std::string data_dir_ = tmp_.path() + "/ipam";
  std::string bin_dir_ = tmp_.path() + "/bin";
  std::string netns_dir_ = tmp_.path() + "/netns";
  std::vector<PodNetworkRequest> pods_;
  bool portmap_chains_existed_ = false;
  std::string ip_forward_;
};

TEST_F(CniManagerTest, TwoPodsGetDistinctIpsAndReachEachOther) {
  auto m = NewManager();
  ASSERT_TRUE(m->Ready().ok()) << m->Ready();
  EXPECT_EQ(m->NetworkName(), kNetwork);
  PodNetworkRequest a = NewPod("pod-a"), b = NewPod("pod-b");
  auto ra = m->SetUp(a);
  ASSERT_TRUE(ra.ok()) << ra.status();
  auto rb = m->SetUp(b);
  ASSERT_TRUE(rb.ok()) << rb.status();
  ASSERT_EQ(ra->ips.size(), 1u);
  ASSERT_EQ(rb->ips.size(), 1u);
  EXPECT_TRUE(absl::StartsWith(ra->ips[0], kSubnetPrefix)) << ra->ips[0];
  EXPECT_NE(ra->ips[0], rb->ips[0]);
  EXPECT_NE(ra->ips[0], kGateway);
  EXPECT_EQ(Reservations(), (std::set<std::string>{ra->ips[0], rb->ips[0]}));
  EXPECT_TRUE(m->Check(a).ok()) << m->Check(a);

  // Pod A connects to a server in pod B; then the host does too.
  test::GreetingServer server(b.netns_path, 8080, /*connections=*/2);
  ASSERT_TRUE(server.ready());
  const std::string ip_b = rb->ips[0];
  EXPECT_EQ(
      test::RunInNetns(a.netns_path,
                       [&] { return test::FetchGreeting(ip_b, 8080) == test::kGreeting ? 0 : 1; }),
      0);
  EXPECT_EQ(test::FetchGreeting(ip_b, 8080), test::kGreeting);
  EXPECT_EQ(server.Wait(), 0);

  EXPECT_TRUE(m->TearDown(a).ok());
  EXPECT_TRUE(m->TearDown(b).ok());
  EXPECT_TRUE(Reservations().empty());
}

TEST_F(CniManagerTest, HostPortReachesThePodFromHostLoopbackAndBridgeAddress) {
  auto m = NewManager();
  PodNetworkRequest p = NewPod("pod-port");
  p.port_mappings = {{18081, 8080, "tcp", ""}};
  auto r = m->SetUp(p);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(Output({"iptables", "-w", "-t", "nat", "-S"}).find("18081"), std::string::npos);

  test::GreetingServer server(p.netns_path, 8080, /*connections=*/2);
  ASSERT_TRUE(server.ready());
  EXPECT_EQ(test::FetchGreeting("127.0.0.1", 18081), test::kGreeting);
  EXPECT_EQ(test::FetchGreeting(kGateway, 18081), test::kGreeting);
  EXPECT_EQ(server.Wait(), 0);

  ASSERT_TRUE(m->TearDown(p).ok());
  // DEL removed the mapping.
  EXPECT_EQ(Output({"iptables", "-w", "-t", "nat", "-S"}).find("18081"), std::string::npos);
}

TEST_F(CniManagerTest, TearDownReleasesTheIpAndIsIdempotent) {
  auto m = NewManager();
  PodNetworkRequest p = NewPod("pod-del");
  auto r = m->SetUp(p);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Reservations(), std::set<std::string>{r->ips[0]});
  EXPECT_EQ(BridgePorts().size(), 1u);
  EXPECT_EQ(DirEntries(cache_dir_), std::vector<std::string>{"pod-del"});

  ASSERT_TRUE(m->TearDown(p).ok());
  EXPECT_TRUE(Reservations().empty());
  EXPECT_TRUE(BridgePorts().empty());
  EXPECT_TRUE(DirEntries(cache_dir_).empty());
  EXPECT_TRUE(m->TearDown(p).ok());
  ASSERT_TRUE(RemoveNetns(p.netns_path).ok());
  EXPECT_TRUE(m->TearDown(p).ok());
  EXPECT_TRUE(absl::IsNotFound(m->Check(p)));
}

TEST_F(CniManagerTest, TearDownWithoutTheNetnsStillReleasesTheIp) {
  auto m = NewManager();
  PodNetworkRequest p = NewPod("pod-gone");
  auto r = m->SetUp(p);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(RemoveNetns(p.netns_path).ok());
  ASSERT_TRUE(m->TearDown(p).ok());
  EXPECT_TRUE(Reservations().empty());
  // The namespace took the pod's end of the veth pair, and with it the host end, once the
  // kernel finished destroying it (that happens asynchronously).
  EXPECT_TRUE(Eventually([&] { return BridgePorts().empty(); }));
  // bridge (1.1.1) removes its ipMasq chain only when it can enter the netns, so that chain is
  // left here (and removed by the fixture); the engine therefore runs DEL before removing a netns.
}

// A berthd that crashed during ADD leaves its plugins running (they are not its to kill). The
// DEL of the next berthd waits for them, or the IP they reserve a moment later stays reserved
// (found by //test/integration:crash_points_test).
TEST_F(CniManagerTest, AnInterruptedTearDownWaitsForPluginsStillWorkingForThePod) {
  auto m = NewManager();
  PodNetworkRequest p = NewPod("pod-orphan");
  const std::string done = tmp_.path() + "/orphan-done";
  UniqueFd devnull(open("/dev/null", O_RDWR | O_CLOEXEC));
  RunOptions ro;
  ro.env = {"CNI_CONTAINERID=pod-orphan"};
  absl::StatusOr<pid_t> orphan = SpawnProcess({"/bin/sh", "-c", "sleep 1; touch " + done}, ro,
                                              devnull.get(), devnull.get(), devnull.get());
  ASSERT_TRUE(orphan.ok()) << orphan.status();
  EXPECT_TRUE(Eventually([&] {
    std::vector<int> busy = PluginsWorkingFor("pod-orphan");
    return std::find(busy.begin(), busy.end(), *orphan) != busy.end();
  }));
  EXPECT_TRUE(PluginsWorkingFor("pod-other").empty());
  p.interrupted = true;
  ASSERT_TRUE(m->TearDown(p).ok());
  EXPECT_TRUE(PathExists(done)) << "the DEL ran before the orphaned plugin finished";
  waitpid(*orphan, nullptr, 0);
}

TEST_F(CniManagerTest, ManyPodsComeAndGoWithoutLeftovers) {
  auto m = NewManager();
  std::vector<PodNetworkRequest> pods;
  std::set<std::string> ips;
  const std::string rules_before = Output({"iptables", "-w", "-t", "nat", "-S"});
  for (int i = 0; i < 24; ++i) {
    PodNetworkRequest p = NewPod(absl::StrCat("many-", i));
    p.port_mappings = {{19000 + i, 80, "tcp", ""}};
    auto r = m->SetUp(p);
    ASSERT_TRUE(r.ok()) << i << ": " << r.status();
    ips.insert(r->ips[0]);
    pods.push_back(p);
  }
  EXPECT_EQ(ips.size(), 24u);
  EXPECT_EQ(Reservations(), ips);
  EXPECT_EQ(BridgePorts().size(), 24u);
  for (const auto& p : pods) {
    ASSERT_TRUE(m->TearDown(p).ok()) << p.pod_id;
    ASSERT_TRUE(RemoveNetns(p.netns_path).ok());
  }
  EXPECT_TRUE(ListNetns(netns_dir_)->empty());
  EXPECT_TRUE(Reservations().empty());
  EXPECT_TRUE(BridgePorts().empty());
  EXPECT_TRUE(DirEntries(cache_dir_).empty());
  const std::string rules_after = Output({"iptables", "-w", "-t", "nat", "-S"});
  EXPECT_FALSE(absl::StrContains(rules_after, "many-")) << rules_after;
  EXPECT_FALSE(absl::StrContains(rules_after, "1900")) << rules_after;
  // Apart from portmap's top-level chains (made once, never removed), the rules are as before.
  std::vector<std::string> added;
  for (const auto& l : Lines(rules_after)) {
    if (!absl::StrContains(rules_before, l) && !absl::StrContains(l, "CNI-HOSTPORT-"))
      added.push_back(l);
  }
  EXPECT_TRUE(added.empty()) << added[0];
}

TEST_F(CniManagerTest, TearDownAfterRestartUsesTheCachedConfig) {
  PodNetworkRequest p = NewPod("pod-restart");
  {
    auto m = NewManager();
    auto r = m->SetUp(p);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  // While berthd was down, the network config disappeared.
  ASSERT_EQ(unlink((conf_dir_ + "/10-test.conflist").c_str()), 0);
  auto m = NewManager();
  EXPECT_FALSE(m->Ready().ok());
  ASSERT_TRUE(m->TearDown(p).ok());
  EXPECT_TRUE(Reservations().empty());
  EXPECT_TRUE(BridgePorts().empty());
}

TEST_F(CniManagerTest, ReadinessFollowsTheConfigDir) {
  ASSERT_EQ(unlink((conf_dir_ + "/10-test.conflist").c_str()), 0);
  auto m = NewManager();
  absl::Status s = m->Ready();
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "no CNI network config found")) << s;

  WriteConfig(R"({"cniVersion":"1.0.0","name":"x","plugins":[{"type":"no-such-plugin"}]})",
              "05-x.conflist");
  s = m->Ready();
  EXPECT_TRUE(absl::StrContains(s.message(), "\"no-such-plugin\" not found")) << s;
  PodNetworkRequest p = NewPod("pod-notready");
  EXPECT_TRUE(absl::IsFailedPrecondition(m->SetUp(p).status()));

  ASSERT_EQ(unlink((conf_dir_ + "/05-x.conflist").c_str()), 0);
  WriteConfig(Conflist(data_dir_));
  EXPECT_TRUE(m->Ready().ok()) << m->Ready();
  EXPECT_EQ(m->NetworkName(), kNetwork);
}

TEST_F(CniManagerTest, PluginsGetTheSpecEnvironmentCapabilitiesAndPrevResult) {
  // A recording plugin: keeps its stdin and CNI_* environment, and on ADD prints a result
  // whose address depends on its name.
  const std::string rec = tmp_.path() + "/rec";
  const std::string script = absl::StrCat(
      "#!/bin/sh\n"
      "n=$(basename \"$0\")\n"
      "cat > ",
      rec,
      "/$CNI_COMMAND-$n.stdin\n"
      "env | grep '^CNI_' | sort > ",
      rec,
      "/$CNI_COMMAND-$n.env\n"
      "if [ \"$CNI_COMMAND\" = ADD ]; then\n"
      "  last=1; [ \"$n\" = rec-second ] && last=2\n"
      "  printf '{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"eth0\",\"sandbox\":\"%s\"}],"
      "\"ips\":[{\"address\":\"10.9.9.%s/24\",\"interface\":0}]}' \"$CNI_NETNS\" \"$last\"\n"
      "fi\n");
  ASSERT_TRUE(MakeDirs(rec).ok());
  WritePlugin("rec-first", script);
  WritePlugin("rec-second", script);
  ASSERT_EQ(unlink((conf_dir_ + "/10-test.conflist").c_str()), 0);
  WriteConfig(R"({"cniVersion":"1.0.0","name":"recnet","plugins":[
      {"type":"rec-first","custom":1},
      {"type":"rec-second","capabilities":{"portMappings":true,"bandwidth":false}}]})");
  auto m = NewManager();
  PodNetworkRequest p = NewPod("pod-rec");
  p.port_mappings = {{8443, 443, "tcp", "127.0.0.1"}};
  p.bandwidth = BandwidthLimits{1000, 2000, 3000, 4000};
  auto r = m->SetUp(p);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ips, std::vector<std::string>{"10.9.9.2"});

  auto env = ReadFile(rec + "/ADD-rec-first.env");
  ASSERT_TRUE(env.ok());
  EXPECT_TRUE(absl::StrContains(*env, "CNI_COMMAND=ADD\n"));
  EXPECT_TRUE(absl::StrContains(*env, "CNI_CONTAINERID=pod-rec\n"));
  EXPECT_TRUE(absl::StrContains(*env, "CNI_IFNAME=eth0\n"));
  EXPECT_TRUE(absl::StrContains(*env, "CNI_NETNS=" + p.netns_path + "\n"));
  EXPECT_TRUE(absl::StrContains(
      *env,
      "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=name-pod-rec;"
      "K8S_POD_INFRA_CONTAINER_ID=pod-rec;K8S_POD_UID=uid-pod-rec\n"))
      << *env;
  EXPECT_TRUE(absl::StrContains(*env, "CNI_PATH=" + bin_dir_ + ":/opt/cni/bin:/usr/lib/cni\n"));

  auto first = nlohmann::json::parse(*ReadFile(rec + "/ADD-rec-first.stdin"));
  EXPECT_EQ(first["name"], "recnet");
  EXPECT_EQ(first["cniVersion"], "1.0.0");
  EXPECT_EQ(first["custom"], 1);
  EXPECT_FALSE(first.contains("prevResult"));
  EXPECT_FALSE(first.contains("runtimeConfig"));  // declares no capabilities
  auto second = nlohmann::json::parse(*ReadFile(rec + "/ADD-rec-second.stdin"));
  EXPECT_EQ(second["prevResult"]["ips"][0]["address"], "10.9.9.1/24");
  EXPECT_EQ(
      second["runtimeConfig"]["portMappings"],
      nlohmann::json::parse(
          R"([{"hostPort":8443,"containerPort":443,"protocol":"tcp","hostIP":"127.0.0.1"}])"));
  EXPECT_FALSE(second["runtimeConfig"].contains("bandwidth"));  // capability set to false

  // CHECK and DEL get the final result; DEL without a namespace gets an empty CNI_NETNS.
  ASSERT_TRUE(m->Check(p).ok());
  auto check = nlohmann::json::parse(*ReadFile(rec + "/CHECK-rec-first.stdin"));
  EXPECT_EQ(check["prevResult"]["ips"][0]["address"], "10.9.9.2/24");
  ASSERT_TRUE(RemoveNetns(p.netns_path).ok());
  ASSERT_TRUE(m->TearDown(p).ok());
  auto del = nlohmann::json::parse(*ReadFile(rec + "/DEL-rec-first.stdin"));
  EXPECT_EQ(del["prevResult"]["ips"][0]["address"], "10.9.9.2/24");
  EXPECT_TRUE(absl::StrContains(*ReadFile(rec + "/DEL-rec-second.env"), "CNI_NETNS=\n"));
  auto del_second = nlohmann::json::parse(*ReadFile(rec + "/DEL-rec-second.stdin"));
  EXPECT_EQ(del_second["runtimeConfig"]["portMappings"][0]["hostPort"], 8443);
}

TEST_F(CniManagerTest, PluginErrorObjectBecomesAClearError) {
  WritePlugin("failing",
              "#!/bin/sh\ncat >/dev/null\n"
              "[ \"$CNI_COMMAND\" = DEL ] && exit 0\n"
              "echo '{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"invalid "
              "subnet\",\"details\":\"10.0.0.0/33\"}'\n"
              "exit 1\n");
  WriteConfig(R"({"cniVersion":"1.0.0","name":"failnet","plugins":[{"type":"failing"}]})",
              "00-fail.conflist");
  auto m = NewManager();
  PodNetworkRequest p = NewPod("pod-fail");
  auto r = m->SetUp(p);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsInternal(r.status())) << r.status();
  EXPECT_EQ(r.status().message(),
            "CNI plugin \"failing\" ADD for pod \"pod-fail\" failed: invalid subnet: 10.0.0.0/33 "
            "(CNI error code 7)");
  // The failed ADD was undone: nothing cached.
  EXPECT_TRUE(DirEntries(cache_dir_).empty());
}

TEST_F(CniManagerTest, HungPluginIsKilledAfterTheTimeout) {
  WritePlugin("hang", "#!/bin/sh\nexec sleep 600\n");
  WriteConfig(R"({"cniVersion":"1.0.0","name":"hangnet","plugins":[{"type":"hang"}]})",
              "00-hang.conflist");
  auto m = NewManager(absl::Milliseconds(300));
  PodNetworkRequest p = NewPod("pod-hang");
  auto r = m->SetUp(p);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(r.status())) << r.status();
  EXPECT_TRUE(
      absl::StrContains(r.status().message(), "\"hang\" ADD for pod \"pod-hang\" did not finish"))
      << r.status();
  EXPECT_TRUE(absl::IsDeadlineExceeded(m->TearDown(p)));
  // The cache keeps the pod until a DEL succeeds and this one never will: drop both the cache
  // and the config so the fixture's cleanup does not wait on the plugin again.
  ASSERT_TRUE(RemoveAll(cache_dir_ + "/pod-hang").ok());
  ASSERT_EQ(unlink((conf_dir_ + "/00-hang.conflist").c_str()), 0);
}

}  // namespace
}  // namespace berth::network
