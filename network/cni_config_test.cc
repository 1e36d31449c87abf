// CNI config selection and validation against config files in a temporary directory.
#include "network/cni_config.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "test/util/temp_dir.h"
#include "util/fs.h"

namespace berth::network {
namespace {

constexpr char kList[] =
    R"({"cniVersion":"1.0.0","name":"%s","plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]})";

std::string ListNamed(const std::string& name) {
  std::string s = kList;
  return s.replace(s.find("%s"), 2, name);
}

void Write(const std::string& path, const std::string& text) {
  ASSERT_TRUE(WriteFileAtomic(path, text).ok()) << path;
}

TEST(CniConfigTest, FirstValidFileInLexicalOrderWins) {
  test::TempDir dir;
  Write(dir.path() + "/00-broken.conflist", "{not json");
  Write(dir.path() + "/05-noplugins.conflist", R"({"cniVersion":"1.0.0","name":"x","plugins":[]})");
  Write(dir.path() + "/10-second.conflist", ListNamed("second"));
  Write(dir.path() + "/09-first.conflist", ListNamed("first"));
  Write(dir.path() + "/01-ignored.txt", ListNamed("ignored"));
  auto c = LoadFirstCniConfig(dir.path());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->name, "first");
  EXPECT_EQ(c->cni_version, "1.0.0");
  EXPECT_EQ(c->source_path, dir.path() + "/09-first.conflist");
  ASSERT_EQ(c->plugins().size(), 2u);
  EXPECT_EQ(c->plugins()[1]["type"], "portmap");
}

TEST(CniConfigTest, SinglePluginConfBecomesOneEntryList) {
  test::TempDir dir;
  Write(dir.path() + "/10-single.conf",
        R"({"cniVersion":"0.4.0","name":"single","type":"bridge","bridge":"br9"})");
  auto c = LoadFirstCniConfig(dir.path());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->name, "single");
  EXPECT_EQ(c->cni_version, "0.4.0");
  ASSERT_EQ(c->plugins().size(), 1u);
  EXPECT_EQ(c->plugins()[0]["bridge"], "br9");
}

TEST(CniConfigTest, JsonExtensionIsReadAsSinglePlugin) {
  test::TempDir dir;
  Write(dir.path() + "/10-x.json", R"({"cniVersion":"0.3.1","name":"viajson","type":"ptp"})");
  auto c = LoadFirstCniConfig(dir.path());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->name, "viajson");
}

TEST(CniConfigTest, NoValidConfigExplainsEachRejection) {
  test::TempDir dir;
  Write(dir.path() + "/10-a.conflist", R"({"cniVersion":"1.0.0","plugins":[{"type":"bridge"}]})");
  Write(dir.path() + "/20-b.conflist",
        R"({"cniVersion":"1.0.0","name":"b","plugins":[{"ipam":{}}]})");
  auto c = LoadFirstCniConfig(dir.path());
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(c.status()));
  EXPECT_NE(c.status().message().find("10-a.conflist: missing or invalid network \"name\""),
            std::string::npos)
      << c.status();
  EXPECT_NE(c.status().message().find("20-b.conflist: plugin 0 has no \"type\""), std::string::npos)
      << c.status();
}

TEST(CniConfigTest, EmptyOrMissingDirIsNotReady) {
  test::TempDir dir;
  EXPECT_TRUE(absl::IsFailedPrecondition(LoadFirstCniConfig(dir.path()).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(LoadFirstCniConfig(dir.path() + "/absent").status()));
}

TEST(CniConfigTest, NetworkNamesThatCannotBeFileNamesAreRejected) {
  EXPECT_FALSE(
      ParseCniConfig(R"({"cniVersion":"1.0.0","name":"a/b","plugins":[{"type":"x"}]})", true, "t")
          .ok());
  EXPECT_FALSE(
      ParseCniConfig(R"({"cniVersion":"1.0.0","name":"ok","plugins":[{"type":"../x"}]})", true, "t")
          .ok());
  EXPECT_FALSE(ParseCniConfig(R"({"name":"ok","plugins":[{"type":"x"}]})", true, "t").ok());
}

TEST(CniConfigTest, PluginIsFoundInTheFirstBinDirHoldingAnExecutable) {
  test::TempDir dir;
  ASSERT_TRUE(MakeDirs(dir.path() + "/a").ok());
  ASSERT_TRUE(MakeDirs(dir.path() + "/b").ok());
  Write(dir.path() + "/a/plug", "#!/bin/sh\n");  // not executable: skipped
  Write(dir.path() + "/b/plug", "#!/bin/sh\n");
  chmod((dir.path() + "/b/plug").c_str(), 0755);
  auto p = FindCniPlugin("plug", {dir.path() + "/none", dir.path() + "/a", dir.path() + "/b"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, dir.path() + "/b/plug");
  EXPECT_TRUE(absl::IsNotFound(FindCniPlugin("other", {dir.path() + "/b"}).status()));
}

TEST(CniConfigTest, VersionsCompareNumerically) {
  EXPECT_LT(CompareCniVersions("0.3.1", "0.4.0"), 0);
  EXPECT_LT(CompareCniVersions("0.4.0", "1.0.0"), 0);
  EXPECT_EQ(CompareCniVersions("0.4", "0.4.0"), 0);
  EXPECT_GT(CompareCniVersions("0.10.0", "0.4.0"), 0);
}

}  // namespace
}  // namespace berth::network
