// Fuzz target: berth.toml text through ParseConfig, and its printed form back through it.
#include <cstdint>
#include <string>

#include "server/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto config = berth::ParseConfig(text, "fuzz.toml");
  if (config.ok()) {
    // What berthd prints with `berthd config` must load again.
    auto again = berth::ParseConfig(berth::ConfigToToml(*config), "printed.toml");
    if (!again.ok()) __builtin_trap();
  }
  return 0;
}
