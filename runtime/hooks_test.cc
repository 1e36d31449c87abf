// hooks.d parsing, directory precedence, matching rules, spec injection and precreate hooks.
#include "runtime/hooks.h"

#include <stdlib.h>

#include "gtest/gtest.h"
#include "test/util/temp_dir.h"
#include "absl/strings/str_cat.h"
#include "util/fs.h"

namespace berth::engine {
namespace {

using json = nlohmann::json;

const char kHook[] = R"({"version":"1.0.0","hook":{"path":"/usr/bin/true","args":["true","x"]},
  "when":{"annotations":{"^io\\.berth\\.trace$":"^yes$"}},"stages":["prestart","poststop"]})";

TEST(HooksTest, ParsesAndRejectsWithTheFileNamed) {
  auto h = ParseHook("a.json", kHook);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->stages, (std::vector<std::string>{"prestart", "poststop"}));
  for (const char* bad :
       {R"({"version":"2","hook":{"path":"/x"},"when":{"always":true},"stages":["prestart"]})",
        R"({"version":"1.0.0","hook":{"path":"rel"},"when":{"always":true},"stages":["prestart"]})",
        R"({"version":"1.0.0","hook":{"path":"/x"},"when":{},"stages":["prestart"]})",
        R"({"version":"1.0.0","hook":{"path":"/x"},"when":{"always":true},"stages":["nope"]})",
        "not json"}) {
    auto r = ParseHook("bad.json", bad);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << bad;
    EXPECT_NE(r.status().message().find("bad.json"), std::string::npos);
  }
}

TEST(HooksTest, FieldsOfTheWrongTypeAreRejectedNotThrown) {
  for (
      const char* bad : {
          R"({"version":1,"hook":{"path":"/x"},"when":{"always":true},"stages":["prestart"]})",
          R"({"version":"1.0.0","hook":{"path":"/x"},"when":{"always":"yes"},"stages":["prestart"]})",
          R"({"version":"1.0.0","hook":{"path":"/x"},"when":{"commands":[1]},"stages":["prestart"]})",
          R"({"version":"1.0.0","hook":{"path":"/x"},"when":{"always":true},"stages":[7]})",
          R"({"version":"1.0.0","hook":{"path":"/x","args":["x",2]},"when":{"always":true},"stages":["prestart"]})",
          R"({"version":"1.0.0","hook":{"path":"/x","env":[{}]},"when":{"always":true},"stages":["prestart"]})",
          R"({"version":"1.0.0","hook":{"path":"/x"},"when":{"annotations":{"(":"x"}},"stages":["prestart"]})",
      }) {
    absl::StatusOr<Hook> r;
    EXPECT_NO_THROW(r = ParseHook("typed.json", bad)) << bad;
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << bad;
    EXPECT_NE(r.status().message().find("typed.json"), std::string::npos) << r.status();
  }
  // And a directory holding such a file still yields its valid neighbours.
  test::TempDir d;
  ASSERT_TRUE(
      WriteFileAtomic(
          d.path() + "/a.json",
          R"({"version":"1.0.0","hook":{"path":"/x"},"when":{"commands":[1]},"stages":["prestart"]})")
          .ok());
  ASSERT_TRUE(WriteFileAtomic(d.path() + "/b.json", kHook).ok());
  std::vector<Hook> hooks;
  EXPECT_NO_THROW(hooks = LoadHooks({d.path()}));
  ASSERT_EQ(hooks.size(), 1u);
  EXPECT_NE(hooks[0].file.find("b.json"), std::string::npos);
}

TEST(HooksTest, PrecreateHookWithEnvGetsExactlyThatEnvironment) {
  test::TempDir d;
  // Prints the spec back with a field recording what it saw of two variables.
  std::string script = d.path() + "/env.sh";
  ASSERT_TRUE(WriteFileAtomic(
                  script,
                  "#!/bin/sh\nprintf '{\"seen\":\"%s/%s\"}' \"$DECLARED\" \"$BERTH_TEST_LEAK\"\n",
                  0755)
                  .ok());
  setenv("BERTH_TEST_LEAK", "leaked", 1);
  std::vector<Hook> hooks = {*ParseHook(
      "e.json",
      absl::StrCat(R"({"version":"1.0.0","hook":{"path":")", script,
                   R"(","env":["DECLARED=yes"]},"when":{"always":true},"stages":["precreate"]})"))};
  json spec = {{"process", {{"args", {"/bin/sh"}}}}};
  absl::Status st = ApplyHooks(hooks, &spec);
  unsetenv("BERTH_TEST_LEAK");
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(spec["seen"], "yes/");
}

TEST(HooksTest, MatchingByAnnotationCommandAndBindMounts) {
  Hook h = *ParseHook("a.json", kHook);
  json spec = {{"annotations", {{"io.berth.trace", "yes"}}}, {"process", {{"args", {"/bin/sh"}}}}};
  EXPECT_TRUE(HookMatches(h, spec));
  spec["annotations"]["io.berth.trace"] = "no";
  EXPECT_FALSE(HookMatches(h, spec));
  Hook cmd = *ParseHook(
      "c.json",
      R"({"version":"1.0.0","hook":{"path":"/x"},"when":{"commands":["sh$"]},"stages":["prestart"]})");
  EXPECT_TRUE(HookMatches(cmd, spec));
  Hook binds = *ParseHook(
      "b.json",
      R"({"version":"1.0.0","hook":{"path":"/x"},"when":{"hasBindMounts":true},"stages":["prestart"]})");
  EXPECT_FALSE(HookMatches(binds, spec));
  spec["mounts"] = json::array({{{"type", "bind"}, {"destination", "/d"}}});
  EXPECT_TRUE(HookMatches(binds, spec));
}

TEST(HooksTest, LaterDirectoriesOverrideAndHooksLandInTheSpec) {
  test::TempDir a, b;
  ASSERT_TRUE(WriteFileAtomic(a.path() + "/trace.json", kHook).ok());
  ASSERT_TRUE(WriteFileAtomic(a.path() + "/broken.json", "{").ok());
  ASSERT_TRUE(
      WriteFileAtomic(
          b.path() + "/trace.json",
          R"({"version":"1.0.0","hook":{"path":"/usr/bin/env"},"when":{"always":true},"stages":["createRuntime"]})")
          .ok());
  std::vector<Hook> hooks = LoadHooks({a.path(), b.path(), "/nonexistent"});
  ASSERT_EQ(hooks.size(), 1u);
  json spec = {{"process", {{"args", {"/bin/sh"}}}}};
  ASSERT_TRUE(ApplyHooks(hooks, &spec).ok());
  EXPECT_EQ(spec["hooks"]["createRuntime"][0]["path"], "/usr/bin/env");
  EXPECT_FALSE(spec["hooks"].contains("prestart"));
}

TEST(HooksTest, PrecreateHookRewritesTheSpec) {
  test::TempDir d;
  std::string script = d.path() + "/add-env.sh";
  ASSERT_TRUE(
      WriteFileAtomic(script, "#!/bin/sh\nsed 's/\"args\"/\"env\":[\"ADDED=1\"],\"args\"/'\n", 0755)
          .ok());
  std::vector<Hook> hooks = {
      *ParseHook("p.json", absl::StrCat(R"({"version":"1.0.0","hook":{"path":")", script,
                                        R"("},"when":{"always":true},"stages":["precreate"]})"))};
  json spec = {{"process", {{"args", {"/bin/sh"}}}}};
  ASSERT_TRUE(ApplyHooks(hooks, &spec).ok());
  EXPECT_EQ(spec["process"]["env"][0], "ADDED=1");
  std::string failing = d.path() + "/fail.sh";
  ASSERT_TRUE(WriteFileAtomic(failing, "#!/bin/sh\nexit 3\n", 0755).ok());
  hooks = {
      *ParseHook("f.json", absl::StrCat(R"({"version":"1.0.0","hook":{"path":")", failing,
                                        R"("},"when":{"always":true},"stages":["precreate"]})"))};
  EXPECT_TRUE(absl::IsFailedPrecondition(ApplyHooks(hooks, &spec)));
}

// A container's args[0] is the client's to choose: std::regex recursed once per character and a
// 100 KB command overflowed berthd's stack.
TEST(HooksTest, HugeCommandAgainstCommandsRegexDoesNotCrash) {
  Hook cmd = *ParseHook(
      "c.json",
      R"({"version":"1.0.0","hook":{"path":"/x"},"when":{"commands":["^(a|b)*c$", "^/bin/(.)*sh$"]},"stages":["prestart"]})");
  json spec = {{"process", {{"args", {std::string(200000, 'a')}}}}};
  EXPECT_FALSE(HookMatches(cmd, spec));
  spec["process"]["args"][0] = std::string(200000, 'a') + "c";
  EXPECT_TRUE(HookMatches(cmd, spec));
  spec["process"]["args"][0] = "/bin/" + std::string(200000, 'x') + "sh";
  EXPECT_TRUE(HookMatches(cmd, spec));
}

TEST(HooksTest, NonStringArgsZeroDoesNotMatchOrThrow) {
  Hook cmd = *ParseHook(
      "c.json",
      R"({"version":"1.0.0","hook":{"path":"/x"},"when":{"commands":["sh$"]},"stages":["prestart"]})");
  json spec = {{"process", {{"args", {1, 2}}}}};
  EXPECT_FALSE(HookMatches(cmd, spec));
}

}  // namespace
}  // namespace berth::engine
