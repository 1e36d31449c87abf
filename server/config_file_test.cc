// The shipped deploy/berth.toml parses, validates and equals the built-in defaults.
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "server/config.h"

namespace berth {
namespace {

TEST(ShippedConfigTest, DefaultFileMatchesBuiltInDefaults) {
  auto c = LoadConfigFile("deploy/berth.toml", true);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(ValidateConfig(*c).ok());
  EXPECT_EQ(ConfigToToml(*c), ConfigToToml(Config{}));
}

}  // namespace
}  // namespace berth
