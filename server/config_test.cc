// berth.toml parsing: defaults, every section, strictness about unknown keys and bad values.
#include "server/config.h"

#include <fstream>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace berth {
namespace {

TEST(ConfigTest, EmptyFileGivesDefaults) {
  auto c = ParseConfig("", "test");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen, "unix:///run/berth/berth.sock");
  EXPECT_EQ(c->root, "/var/lib/berth");
  EXPECT_TRUE(ValidateConfig(*c).ok());
}

TEST(ConfigTest, ReadsEverySection) {
  auto c = ParseConfig(R"(
root = "/srv/berth"
[runtime]
cgroup_driver = "systemd"
sync_writes = false
criu_path = "/opt/criu/bin/criu"
[images]
max_parallel_downloads = 5
[registries."docker.io"]
mirrors = ["http://127.0.0.1:5000"]
[registries."my.registry:5000"]
insecure = true
[network]
cni_bin_dirs = ["/usr/lib/cni"]
[streaming]
port = 10010
)",
                       "test");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->root, "/srv/berth");
  EXPECT_EQ(c->runtime.cgroup_driver, cgroups::CgroupDriver::kSystemd);
  EXPECT_FALSE(c->runtime.sync_writes);
  EXPECT_EQ(c->runtime.criu_path, "/opt/criu/bin/criu");
  EXPECT_EQ(c->images.max_parallel_downloads, 5);
  EXPECT_EQ(c->images.registries.at("docker.io").mirrors,
            std::vector<std::string>{"http://127.0.0.1:5000"});
  EXPECT_TRUE(c->images.registries.at("my.registry:5000").insecure);
  EXPECT_EQ(c->network.cni_bin_dirs, std::vector<std::string>{"/usr/lib/cni"});
  EXPECT_EQ(c->streaming.port, 10010);
}

TEST(ConfigTest, UnknownKeyIsAnErrorNamingIt) {
  auto c = ParseConfig("[runtime]\nruntim_path = \"x\"\n", "berth.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(c.status()));
  EXPECT_NE(c.status().message().find("runtime.runtim_path"), std::string::npos) << c.status();
}

TEST(ConfigTest, WrongTypeIsAnErrorNamingTheKey) {
  auto c = ParseConfig("[images]\nmax_parallel_downloads = \"three\"\n", "berth.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("images.max_parallel_downloads"), std::string::npos);
}

// Found by //server:config_fuzz: toml11 read past its buffer (ASan: heap-buffer-overflow in
// location::reset) reporting bad UTF-8 inside a literal string. Text that is not UTF-8 is refused
// before toml11 sees it, naming the line.
TEST(ConfigTest, TextThatIsNotUtf8IsRefusedNamingTheLine) {
  for (const std::string text :
       {std::string("a = [[[[[['[[[[[[[[[5]]]]]\xac]]]]]]] = [[[[[['[[[[[]]]]]\x13"),
        std::string("[runtime]\nruntime_path = 'ru\xffnc'\n"),
        std::string("listen = \"unix:///x\xc3\"\n")}) {
    absl::StatusOr<Config> c = ParseConfig(text, "berth.toml");
    EXPECT_TRUE(absl::IsInvalidArgument(c.status())) << c.status();
    EXPECT_TRUE(absl::StrContains(c.status().message(), "not valid UTF-8")) << c.status();
  }
  absl::StatusOr<Config> c = ParseConfig("[runtime]\nruntime_path = 'r\xc3\xa9nc'\n", "f");
  ASSERT_TRUE(c.ok()) << c.status();  // UTF-8 beyond ASCII is fine
  EXPECT_EQ(c->runtime.runtime_path, "r\xc3\xa9nc");
  EXPECT_TRUE(absl::StrContains(
      ParseConfig("listen = 'x'\n\nroot = '\xff'\n", "f").status().message(), "line 3"));
}

TEST(ConfigTest, SyntaxErrorIsInvalidArgument) {
  auto c = ParseConfig("root = \n", "berth.toml");
  EXPECT_TRUE(absl::IsInvalidArgument(c.status()));
}

TEST(ConfigTest, ValidationRejectsBadValues) {
  absl::StatusOr<Config> driver = ParseConfig("[runtime]\ncgroup_driver = \"cgroupfs2\"\n", "test");
  EXPECT_TRUE(absl::IsInvalidArgument(driver.status()));
  EXPECT_NE(driver.status().message().find("runtime.cgroup_driver"), std::string::npos);
  Config c;
  c.listen = "tcp://0.0.0.0:1";
  EXPECT_FALSE(ValidateConfig(c).ok());
  c = Config{};
  c.images.registries["docker.io"].mirrors = {"127.0.0.1:5000"};
  EXPECT_FALSE(ValidateConfig(c).ok());
  c = Config{};
  c.root = "relative";
  EXPECT_FALSE(ValidateConfig(c).ok());
  c = Config{};
  c.runtime.criu_path = "";
  EXPECT_NE(ValidateConfig(c).message().find("runtime.criu_path"), std::string::npos);
  c = Config{};
  c.images.containers_dir = "containers";
  EXPECT_NE(ValidateConfig(c).message().find("images.containers_dir"), std::string::npos);
}

TEST(ConfigTest, PrintedConfigParsesBackToTheSameValues) {
  Config c;
  c.root = "/tmp/x \"quoted\"";
  c.images.registries["docker.io"].mirrors = {"http://127.0.0.1:5000"};
  c.network.plugin_timeout_seconds = 7;
  c.images.containers_dir = "/mnt/disk2/berth";
  auto back = ParseConfig(ConfigToToml(c), "printed");
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << ConfigToToml(c);
  EXPECT_EQ(back->root, c.root);
  EXPECT_EQ(back->network.plugin_timeout_seconds, 7);
  EXPECT_EQ(back->images.containers_dir, "/mnt/disk2/berth");
  EXPECT_EQ(back->images.registries.at("docker.io").mirrors,
            c.images.registries["docker.io"].mirrors);
  EXPECT_EQ(ConfigToToml(*back), ConfigToToml(c));
}

TEST(ConfigTest, RuntimeHandlersAreReadValidatedAndPrinted) {
  absl::StatusOr<Config> c = ParseConfig(
      "[runtime.handlers.crun]\nruntime_path = \"/usr/bin/crun\"\n"
      "[runtime.handlers.kata-qemu]\nruntime_path = \"kata-runtime\"\n",
      "test");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->runtime.handlers.size(), 2u);
  EXPECT_EQ(c->runtime.handlers.at("crun").runtime_path, "/usr/bin/crun");
  EXPECT_EQ(c->runtime.handlers.at("kata-qemu").runtime_path, "kata-runtime");
  EXPECT_TRUE(ValidateConfig(*c).ok()) << ValidateConfig(*c);
  absl::StatusOr<Config> back = ParseConfig(ConfigToToml(*c), "printed");
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << ConfigToToml(*c);
  EXPECT_EQ(back->runtime.handlers.at("crun").runtime_path, "/usr/bin/crun");

  absl::StatusOr<Config> unknown =
      ParseConfig("[runtime.handlers.crun]\npath = \"/usr/bin/crun\"\n", "test");
  EXPECT_TRUE(absl::IsInvalidArgument(unknown.status()));
  EXPECT_TRUE(absl::StrContains(unknown.status().message(), "runtime.handlers.crun.path"))
      << unknown.status();
  absl::StatusOr<Config> not_table = ParseConfig("[runtime]\nhandlers = \"crun\"\n", "test");
  EXPECT_TRUE(absl::IsInvalidArgument(not_table.status()));

  auto invalid = [](const std::string& name, const std::string& path) {
    Config bad;
    bad.runtime.handlers[name].runtime_path = path;
    return std::string(ValidateConfig(bad).message());
  };
  EXPECT_TRUE(absl::StrContains(invalid("Crun", "crun"), "runtime.handlers.Crun")) << "upper case";
  EXPECT_TRUE(absl::StrContains(invalid("-x", "crun"), "DNS label"));
  EXPECT_TRUE(absl::StrContains(invalid(std::string(64, 'a'), "crun"), "DNS label"));
  EXPECT_TRUE(absl::StrContains(invalid("runc", "crun"), "runtime.runtime_path"));
  EXPECT_TRUE(absl::StrContains(invalid("crun", ""), "runtime.handlers.crun.runtime_path"));
  Config many;
  for (int i = 0; i < 17; ++i) many.runtime.handlers["h" + std::to_string(i)].runtime_path = "x";
  EXPECT_TRUE(absl::StrContains(ValidateConfig(many).message(), "at most 16"));
}

TEST(ConfigTest, MissingDefaultFileIsNotAnError) {
  EXPECT_TRUE(LoadConfigFile("/nonexistent/berth.toml", false).ok());
  EXPECT_TRUE(absl::IsNotFound(LoadConfigFile("/nonexistent/berth.toml", true).status()));
}

}  // namespace
}  // namespace berth
