// Fuzz target: a hooks.d file through ParseHook, then matched against a spec built from the
// same bytes (hook patterns are root's, container args and annotations are anyone's).
#include <cstdint>
#include <string>

#include "nlohmann/json.hpp"
#include "runtime/hooks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto hook = berth::engine::ParseHook("fuzz.json", text);
  if (!hook.ok()) return 0;
  nlohmann::json spec = {{"process", {{"args", {text}}}},
                         {"annotations", {{text.substr(0, size / 2), text.substr(size / 2)}}},
                         {"mounts", nlohmann::json::array({{{"type", "bind"}}})}};
  (void)berth::engine::HookMatches(*hook, spec);
  return 0;
}
