// The node deployment files agree with each other and with the repository (the DaemonSet, the
// systemd unit, the installer image and script), and the installer script installs onto a scratch
// host directory with systemd stood in for by a recording stub.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "test/deploy/containerfile.h"
#include "test/deploy/run_command.h"
#include "test/deploy/unit_file.h"
#include "test/util/temp_dir.h"
#include "yaml-cpp/yaml.h"

namespace berth::test {
namespace {

// Tests run in the runfiles root, where data files keep their repository paths.
std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The host directories berth needs reachable from the installer pod.
const char* const kHostDirs[] = {"/usr/local/bin", "/etc/berth",  "/etc/systemd/system",
                                 "/var/lib/berth", "/run/berth",  "/var/log/pods",
                                 "/etc/cni/net.d", "/opt/cni/bin"};

// Where the Containerfile's build context takes the binaries from (its staging comment), mapped
// to the Bazel outputs this test depends on.
const std::map<std::string, std::string> kStagedBinaries = {
    {"bin/berthd", "server/berthd"},
    {"bin/berth-pause", "runtime/pause/berth-pause"},
};

YAML::Node DaemonSet() { return YAML::LoadFile("deploy/daemonset.yaml"); }

YAML::Node PodSpec() { return DaemonSet()["spec"]["template"]["spec"]; }

YAML::Node InstallerContainer() {
  YAML::Node containers = PodSpec()["containers"];
  EXPECT_EQ(containers.size(), 1u);
  return containers[0];
}

Containerfile Image() {
  absl::StatusOr<Containerfile> file = ParseContainerfile(ReadFile("deploy/Containerfile"));
  EXPECT_TRUE(file.ok()) << file.status();
  return file.ok() ? *file : Containerfile{};
}

UnitFile Unit() {
  absl::StatusOr<UnitFile> unit = ParseUnitFile(ReadFile("deploy/berthd.service"));
  EXPECT_TRUE(unit.ok()) << unit.status();
  return unit.ok() ? *unit : UnitFile{};
}

// The image directory install-on-host.sh reads from (its BERTH_SRC default).
std::string ScriptSourceDir(const std::string& script) {
  std::smatch m;
  std::regex def(R"re(BERTH_SRC="\$\{BERTH_SRC:-([^}]+)\}")re");
  EXPECT_TRUE(std::regex_search(script, m, def)) << "no BERTH_SRC default in install-on-host.sh";
  return m.size() > 1 ? m[1].str() : "";
}

// Every "$BERTH_SRC/<file>" install-on-host.sh copies from, as image paths.
std::set<std::string> ScriptSources(const std::string& script) {
  std::string dir = ScriptSourceDir(script);
  std::set<std::string> files;
  std::regex ref(R"re(\$BERTH_SRC/([A-Za-z0-9._/-]+))re");
  for (auto it = std::sregex_iterator(script.begin(), script.end(), ref);
       it != std::sregex_iterator(); ++it) {
    files.insert(dir + "/" + (*it)[1].str());
  }
  return files;
}

TEST(DaemonSetTest, IsAPrivilegedHostPidDaemonSetInKubeSystem) {
  YAML::Node ds = DaemonSet();
  EXPECT_EQ(ds["apiVersion"].as<std::string>(), "apps/v1");
  EXPECT_EQ(ds["kind"].as<std::string>(), "DaemonSet");
  EXPECT_EQ(ds["metadata"]["name"].as<std::string>(), "berth-installer");
  EXPECT_EQ(ds["metadata"]["namespace"].as<std::string>(), "kube-system");
  YAML::Node spec = PodSpec();
  EXPECT_TRUE(spec["hostPID"].as<bool>());
  EXPECT_TRUE(InstallerContainer()["securityContext"]["privileged"].as<bool>());
  // The selector must pick the template's own pods or the API server rejects the DaemonSet.
  for (const auto& kv : ds["spec"]["selector"]["matchLabels"]) {
    std::string key = kv.first.as<std::string>();
    ASSERT_TRUE(ds["spec"]["template"]["metadata"]["labels"][key]) << key;
    EXPECT_EQ(ds["spec"]["template"]["metadata"]["labels"][key].as<std::string>(),
              kv.second.as<std::string>());
  }
}

TEST(DaemonSetTest, RunsOnEveryLinuxNodeWhateverItsTaints) {
  YAML::Node spec = PodSpec();
  EXPECT_EQ(spec["priorityClassName"].as<std::string>(), "system-node-critical");
  EXPECT_EQ(spec["nodeSelector"]["kubernetes.io/os"].as<std::string>(), "linux");
  bool tolerates_all = false;
  for (const auto& t : spec["tolerations"]) {
    if (t["operator"] && t["operator"].as<std::string>() == "Exists" && !t["key"] && !t["effect"]) {
      tolerates_all = true;
    }
  }
  EXPECT_TRUE(tolerates_all) << "want a toleration {operator: Exists} with no key and no effect";
}

TEST(DaemonSetTest, MountsEveryHostDirectoryUnderHost) {
  std::map<std::string, std::string> volume_of_host_path;  // host path -> volume name
  for (const auto& v : PodSpec()["volumes"]) {
    if (!v["hostPath"]) continue;
    EXPECT_EQ(v["hostPath"]["type"].as<std::string>(), "DirectoryOrCreate")
        << v["name"].as<std::string>();
    volume_of_host_path[v["hostPath"]["path"].as<std::string>()] = v["name"].as<std::string>();
  }
  std::map<std::string, std::string> mount_of_volume;  // volume name -> mount path
  for (const auto& m : InstallerContainer()["volumeMounts"]) {
    mount_of_volume[m["name"].as<std::string>()] = m["mountPath"].as<std::string>();
  }
  for (const char* dir : kHostDirs) {
    ASSERT_TRUE(volume_of_host_path.count(dir)) << "no hostPath volume for " << dir;
    const std::string& volume = volume_of_host_path[dir];
    ASSERT_TRUE(mount_of_volume.count(volume)) << "volume " << volume << " is not mounted";
    EXPECT_EQ(mount_of_volume[volume], std::string("/host") + dir);
  }
}

TEST(DaemonSetTest, AsksForLittleAndRunsTheScriptWhereTheImageInstallsIt) {
  YAML::Node c = InstallerContainer();
  EXPECT_EQ(c["image"].as<std::string>(), "berth-installer:latest");
  ASSERT_TRUE(c["resources"]["requests"]["cpu"]);
  ASSERT_TRUE(c["resources"]["requests"]["memory"]);
  ASSERT_TRUE(c["command"].IsSequence());
  std::string command = c["command"][0].as<std::string>();
  Containerfile image = Image();
  EXPECT_EQ(image.SourceOf(command), "deploy/install-on-host.sh");
  ASSERT_FALSE(image.entrypoint.empty());
  EXPECT_EQ(image.entrypoint[0], command);
}

TEST(ContainerfileTest, BuildsOnDebianWithNsenterAndCopiesOnlyExistingFiles) {
  Containerfile image = Image();
  // Debian 12's slim image already has nsenter (util-linux is Essential there), coreutils, bash
  // and awk, so nothing is installed: the image builds from the base image alone, offline.
  EXPECT_EQ(image.from, "debian:12-slim");
  for (const std::string& run : image.runs) {
    for (const char* fetcher : {"apt-get", "apt ", "curl", "wget", "git "}) {
      EXPECT_FALSE(absl::StrContains(run, fetcher)) << "RUN needs the network: " << run;
    }
  }
  std::string text = ReadFile("deploy/Containerfile");
  for (const ContainerfileCopy& copy : image.copies) {
    for (const std::string& source : copy.sources) {
      auto staged = kStagedBinaries.find(source);
      if (staged != kStagedBinaries.end()) {
        // The binary is built, and the staging recipe in the comment takes it from bazel-bin.
        EXPECT_TRUE(std::filesystem::exists(staged->second)) << staged->second;
        EXPECT_TRUE(absl::StrContains(text, "bazel-bin/" + staged->second)) << source;
      } else {
        EXPECT_TRUE(absl::StartsWith(source, "deploy/")) << "unexpected build input " << source;
        EXPECT_TRUE(std::filesystem::is_regular_file(source)) << source << " is not in the repo";
      }
    }
  }
}

TEST(ContainerfileTest, CarriesEveryFileTheInstallerScriptCopies) {
  std::string script = ReadFile("deploy/install-on-host.sh");
  std::set<std::string> sources = ScriptSources(script);
  // berthd, berth-pause, berth.toml, the CNI conflist and the unit at least.
  EXPECT_GE(sources.size(), 5u);
  Containerfile image = Image();
  for (const std::string& file : sources) {
    std::string source = image.SourceOf(file);
    EXPECT_FALSE(source.empty()) << "the installer reads " << file << " but no COPY puts it there";
  }
  for (const char* deploy_file :
       {"deploy/berth.toml", "deploy/cni/10-berth.conflist", "deploy/berthd.service"}) {
    EXPECT_TRUE(sources.count(image.DestinationOf(deploy_file)))
        << deploy_file << " is in the image but the installer never copies it";
  }
}

TEST(SystemdUnitTest, RunsBerthdAfterCheckingTheHost) {
  UnitFile unit = Unit();
  EXPECT_EQ(unit.Get("Service", "ExecStart"), "/usr/local/bin/berthd");
  std::vector<std::string> pre = unit.GetAll("Service", "ExecStartPre");
  EXPECT_NE(std::find(pre.begin(), pre.end(), "/usr/local/bin/berthd check"), pre.end());
  // berthd sends READY=1 once its socket serves (server/sd_notify.h).
  EXPECT_EQ(unit.Get("Service", "Type"), "notify");
  EXPECT_EQ(unit.Get("Unit", "After"), "network-online.target");
  EXPECT_EQ(unit.Get("Unit", "Wants"), "network-online.target");
  EXPECT_EQ(unit.Get("Install", "WantedBy"), "multi-user.target");
}

TEST(SystemdUnitTest, KeepsContainersAcrossRestartsAndDelegatesCgroups) {
  UnitFile unit = Unit();
  EXPECT_EQ(unit.Get("Service", "KillMode"), "process");
  EXPECT_EQ(unit.Get("Service", "Delegate"), "yes");
  EXPECT_EQ(unit.Get("Service", "Restart"), "always");
  EXPECT_EQ(unit.Get("Service", "RestartSec"), "2");
  EXPECT_EQ(unit.Get("Service", "LimitNOFILE"), "1048576");
  EXPECT_EQ(unit.Get("Service", "LimitNPROC"), "infinity");
  EXPECT_EQ(unit.Get("Service", "TasksMax"), "infinity");
  EXPECT_EQ(unit.Get("Service", "OOMScoreAdjust"), "-999");
}

TEST(SystemdUnitTest, PassesSystemdAnalyzeVerifyWhereAvailable) {
  if (!OnPath("systemd-analyze")) GTEST_SKIP() << "systemd-analyze is not installed here";
  // verify insists that ExecStart's binary exists on this machine.
  if (access("/usr/local/bin/berthd", X_OK) != 0) {
    GTEST_SKIP() << "/usr/local/bin/berthd is not installed here (scripts/run.sh installs it)";
  }
  TempDir dir;
  std::filesystem::copy_file("deploy/berthd.service", dir.path() + "/berthd.service");
  absl::StatusOr<CommandResult> r =
      RunCommand({"systemd-analyze", "verify", "--man=no", dir.path() + "/berthd.service"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->output;
  // verify exits 0 on values it ignores (KillMode=bogus) but names the file when it complains.
  EXPECT_FALSE(absl::StrContains(r->output, "berthd.service")) << r->output;
}

// A scratch node for install-on-host.sh: the image's /opt/berth laid out from the Containerfile's
// COPY lines, an empty host root, and a stub for `nsenter ... --` that records the host commands
// and plays systemd (enable --now makes berthd active).
class InstallerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    namespace fs = std::filesystem;
    Containerfile image = Image();
    std::string script = ReadFile("deploy/install-on-host.sh");
    const std::string image_dir = ScriptSourceDir(script);
    for (const ContainerfileCopy& copy : image.copies) {
      for (const std::string& source : copy.sources) {
        std::string to = image.DestinationOf(source);
        if (!absl::StartsWith(to, image_dir + "/")) continue;
        auto staged = kStagedBinaries.find(source);
        std::string from = staged == kStagedBinaries.end() ? source : staged->second;
        fs::path dest = src() + to.substr(image_dir.size());
        fs::create_directories(dest.parent_path());
        fs::copy_file(from, dest, fs::copy_options::overwrite_existing);
      }
    }
    fs::create_directories(host());
    fs::create_directories(state());
    std::ofstream stub(stub_path());
    stub << "#!/bin/bash\n"
            "echo \"$*\" >>\"$STUB_LOG\"\n"
            "case \"$*\" in\n"
            "  'systemctl is-active --quiet berthd') [ -e \"$STUB_STATE/active\" ]; exit ;;\n"
            "  'systemctl enable --now berthd') touch \"$STUB_STATE/active\" ;;\n"
            "  'ldd /usr/local/bin/berthd') [ -z \"${STUB_LDD:-}\" ] || echo \"$STUB_LDD\" ;;\n"
            "esac\n"
            "exit 0\n";
    stub.close();
    chmod(stub_path().c_str(), 0755);
  }

  std::string src() const { return dir_.path() + "/image"; }
  std::string host() const { return dir_.path() + "/host"; }
  std::string state() const { return dir_.path() + "/state"; }
  std::string stub_path() const { return dir_.path() + "/host-exec"; }
  std::string log_path() const { return dir_.path() + "/host-commands.log"; }

  // Runs the installer once; the host commands it issued are appended to log_path().
  CommandResult Install(const std::map<std::string, std::string>& extra_env = {}) {
    std::map<std::string, std::string> env = {
        {"HOST_ROOT", host()},          {"BERTH_SRC", src()},     {"HOST_EXEC", stub_path()},
        {"BERTH_INSTALL_ONESHOT", "1"}, {"STUB_LOG", log_path()}, {"STUB_STATE", state()},
    };
    for (const auto& [k, v] : extra_env) env[k] = v;
    // Each run's host commands on their own: the log restarts.
    std::filesystem::remove(log_path());
    absl::StatusOr<CommandResult> r = RunCommand({"bash", "deploy/install-on-host.sh"}, env);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : CommandResult{};
  }

  std::string HostCommands() const {
    return std::filesystem::exists(log_path()) ? ReadFile(log_path()) : "";
  }

  TempDir dir_;
};

bool SameContent(const std::string& a, const std::string& b) { return ReadFile(a) == ReadFile(b); }

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(InstallerScriptTest, IsValidBash) {
  absl::StatusOr<CommandResult> r = RunCommand({"bash", "-n", "deploy/install-on-host.sh"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->output;
}

TEST_F(InstallerTest, InstallsEverythingOntoAFreshHostAndStartsBerthd) {
  CommandResult r = Install();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::pair<const char*, const char*> installed[] = {
      {"/bin/berthd", "/usr/local/bin/berthd"},
      {"/bin/berth-pause", "/usr/local/bin/berth-pause"},
      {"/berth.toml", "/etc/berth/berth.toml"},
      {"/cni/10-berth.conflist", "/etc/cni/net.d/10-berth.conflist"},
      {"/systemd/berthd.service", "/etc/systemd/system/berthd.service"},
  };
  for (const auto& [from, to] : installed) {
    ASSERT_TRUE(std::filesystem::exists(host() + to)) << to << "\n" << r.output;
    EXPECT_TRUE(SameContent(src() + from, host() + to)) << to;
  }
  EXPECT_EQ(ModeOf(host() + "/usr/local/bin/berthd"), 0755u);
  EXPECT_EQ(ModeOf(host() + "/usr/local/bin/berth-pause"), 0755u);
  EXPECT_EQ(ModeOf(host() + "/etc/berth/berth.toml"), 0644u);
  EXPECT_TRUE(std::filesystem::is_directory(host() + "/var/lib/berth"));
  EXPECT_TRUE(std::filesystem::is_directory(host() + "/run/berth"));
  std::string commands = HostCommands();
  EXPECT_TRUE(absl::StrContains(commands, "systemctl daemon-reload")) << commands;
  EXPECT_TRUE(absl::StrContains(commands, "systemctl enable --now berthd")) << commands;
  // It was not running: enable --now started it, a restart on top would be a second start.
  EXPECT_FALSE(absl::StrContains(commands, "systemctl restart")) << commands;
  EXPECT_LT(commands.find("daemon-reload"), commands.find("enable --now"));
}

TEST_F(InstallerTest, SecondRunChangesNothingAndLeavesBerthdRunning) {
  ASSERT_EQ(Install().exit_code, 0);
  CommandResult again = Install();
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_TRUE(absl::StrContains(again.output, "unchanged: /usr/local/bin/berthd")) << again.output;
  EXPECT_FALSE(absl::StrContains(again.output, "installed: ")) << again.output;
  EXPECT_FALSE(absl::StrContains(HostCommands(), "systemctl restart")) << HostCommands();
  // No temporary files left beside the targets.
  for (const auto& e : std::filesystem::recursive_directory_iterator(host())) {
    EXPECT_FALSE(absl::EndsWith(e.path().string(), ".berth-new")) << e.path();
  }
}

TEST_F(InstallerTest, NewBerthdBinaryRestartsTheRunningUnit) {
  ASSERT_EQ(Install().exit_code, 0);
  // The node runs an older berthd than the image carries.
  std::ofstream(host() + "/usr/local/bin/berthd", std::ios::trunc) << "older berthd\n";
  CommandResult r = Install();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(SameContent(src() + "/bin/berthd", host() + "/usr/local/bin/berthd"));
  std::string commands = HostCommands();
  EXPECT_TRUE(absl::StrContains(commands, "systemctl restart berthd")) << commands;
  EXPECT_LT(commands.find("daemon-reload"), commands.find("restart berthd"));
}

TEST_F(InstallerTest, NewBerthPauseAloneDoesNotRestartBerthd) {
  ASSERT_EQ(Install().exit_code, 0);
  std::ofstream(host() + "/usr/local/bin/berth-pause", std::ios::trunc) << "older pause\n";
  CommandResult r = Install();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(SameContent(src() + "/bin/berth-pause", host() + "/usr/local/bin/berth-pause"));
  EXPECT_FALSE(absl::StrContains(HostCommands(), "systemctl restart")) << HostCommands();
}

TEST_F(InstallerTest, KeepsTheOperatorsConfigAndExistingPodNetwork) {
  std::filesystem::create_directories(host() + "/etc/berth");
  std::filesystem::create_directories(host() + "/etc/cni/net.d");
  std::ofstream(host() + "/etc/berth/berth.toml") << "log_level = \"debug\"\n";
  std::ofstream(host() + "/etc/cni/net.d/05-other.conflist") << "{}\n";
  CommandResult r = Install();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(ReadFile(host() + "/etc/berth/berth.toml"), "log_level = \"debug\"\n");
  EXPECT_FALSE(std::filesystem::exists(host() + "/etc/cni/net.d/10-berth.conflist"));
  EXPECT_TRUE(absl::StrContains(r.output, "kept existing /etc/berth/berth.toml")) << r.output;
}

TEST_F(InstallerTest, RefusesToStartBerthdWhenTheNodeLacksItsLibraries) {
  CommandResult r = Install({{"STUB_LDD", "\tlibgrpc++.so.1.51 => not found"}});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.output, "libgrpc++.so.1.51")) << r.output;
  EXPECT_FALSE(absl::StrContains(HostCommands(), "enable")) << HostCommands();
}

}  // namespace
}  // namespace berth::test
