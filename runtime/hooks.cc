// hooks.d handling: strict parsing, ordered loading, matching, and the precreate stage.
#include "runtime/hooks.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/subprocess.h"

namespace berth::engine {
namespace {

using json = nlohmann::json;

const std::set<std::string> kRuncStages = {"prestart",       "createRuntime", "createContainer",
                                           "startContainer", "poststart",     "poststop"};

// Patterns come from hooks.d files (root's), texts from containers (anyone's); RE2 bounds both.
constexpr size_t kMaxPatternBytes = 4096;

std::shared_ptr<const re2::RE2> Compile(const std::string& pattern) {
  if (pattern.size() > kMaxPatternBytes) return nullptr;
  re2::RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(1 << 20);
  auto re = std::make_shared<const re2::RE2>(pattern, options);
  if (!re->ok()) return nullptr;
  return re;
}

bool Search(const re2::RE2& re, const std::string& text) {
  return re2::RE2::PartialMatch(text, re);
}

}  // namespace

namespace {

absl::StatusOr<Hook> ParseHookJson(const std::string& file, const std::string& text) {
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("hook ", file, ": ", what));
  };
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  if (j.value("version", "") != "1.0.0") return bad("version must be \"1.0.0\"");
  if (!j.contains("hook") || !j["hook"].is_object()) return bad("\"hook\" is required");
  Hook h;
  h.file = file;
  h.hook = j["hook"];
  if (!h.hook.contains("path") || !h.hook["path"].is_string() ||
      h.hook["path"].get<std::string>().empty() || h.hook["path"].get<std::string>()[0] != '/') {
    return bad("hook.path must be an absolute path");
  }
  for (const char* list : {"args", "env"}) {
    if (!h.hook.contains(list)) continue;
    const json& items = h.hook[list];
    if (!items.is_array() ||
        !std::all_of(items.begin(), items.end(), [](const json& v) { return v.is_string(); })) {
      return bad(absl::StrCat("hook.", list, " must be an array of strings"));
    }
  }
  if (h.hook.contains("timeout") && !h.hook["timeout"].is_number_integer()) {
    return bad("hook.timeout must be an integer");
  }
  if (!j.contains("when") || !j["when"].is_object()) return bad("\"when\" is required");
  const json& when = j["when"];
  h.always = when.value("always", false);
  h.has_bind_mounts = when.value("hasBindMounts", false);
  if (when.contains("annotations")) {
    if (!when["annotations"].is_object()) return bad("when.annotations must be an object");
    for (const auto& [k, v] : when["annotations"].items()) {
      if (!v.is_string()) return bad("when.annotations values must be strings");
      std::shared_ptr<const re2::RE2> key_re = Compile(k), value_re = Compile(v.get<std::string>());
      for (const auto& [pattern, re] :
           {std::pair{k, key_re}, std::pair{v.get<std::string>(), value_re}}) {
        if (re == nullptr) {
          return bad(absl::StrCat("when.annotations: bad regular expression \"", pattern, "\""));
        }
      }
      h.annotations[k] = v.get<std::string>();
      h.annotation_res.emplace_back(std::move(key_re), std::move(value_re));
    }
  }
  if (when.contains("commands")) {
    if (!when["commands"].is_array()) return bad("when.commands must be an array");
    for (const auto& c : when["commands"]) h.commands.push_back(c.get<std::string>());
  }
  for (const auto& pattern : h.commands) {
    std::shared_ptr<const re2::RE2> re = Compile(pattern);
    if (re == nullptr)
      return bad(absl::StrCat("when.commands: bad regular expression \"", pattern, "\""));
    h.command_res.push_back(std::move(re));
  }
  if (!h.always && !h.has_bind_mounts && h.annotations.empty() && h.commands.empty()) {
    return bad("\"when\" has no condition");
  }
  if (!j.contains("stages") || !j["stages"].is_array() || j["stages"].empty()) {
    return bad("\"stages\" must be a non-empty array");
  }
  for (const auto& s : j["stages"]) {
    std::string stage = s.get<std::string>();
    if (!kRuncStages.count(stage) && stage != "precreate")
      return bad(absl::StrCat("unknown stage \"", stage, "\""));
    h.stages.push_back(stage);
  }
  return h;
}

}  // namespace

absl::StatusOr<Hook> ParseHook(const std::string& file, const std::string& text) {
  // A field of the wrong JSON type (`"always": "yes"`, `"commands": [1]`) makes nlohmann throw:
  // that is one more invalid file to skip, never a reason for berthd to stop.
  try {
    return ParseHookJson(file, text);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("hook ", file, ": ", e.what()));
  }
}

std::vector<Hook> LoadHooks(const std::vector<std::string>& dirs) {
  std::map<std::string, Hook> by_name;  // ordered: hooks apply in file-name order
  for (const auto& dir : dirs) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      std::string name = e.path().filename();
      if (e.path().extension() != ".json") continue;
      absl::StatusOr<std::string> text = ReadFile(e.path());
      if (!text.ok()) continue;
      absl::StatusOr<Hook> h = ParseHook(e.path(), *text);
      if (!h.ok()) {
        LOG(WARNING) << "skipping OCI hook: " << h.status().message();
        continue;
      }
      by_name[name] = std::move(*h);
    }
  }
  std::vector<Hook> out;
  for (auto& [name, h] : by_name) out.push_back(std::move(h));
  return out;
}

bool HookMatches(const Hook& h, const json& spec) {
  if (h.always) return true;
  const json anns = spec.value("annotations", json::object());
  if (anns.is_object()) {
    for (const auto& [kp, vp] : h.annotation_res) {
      for (const auto& [k, v] : anns.items()) {
        if (v.is_string() && Search(*kp, k) && Search(*vp, v.get_ref<const std::string&>()))
          return true;
      }
    }
  }
  if (!h.command_res.empty() && spec.contains("process") && spec["process"].is_object()) {
    const json args = spec["process"].value("args", json::array());
    if (args.is_array() && !args.empty() && args[0].is_string()) {
      for (const auto& re : h.command_res) {
        if (Search(*re, args[0].get_ref<const std::string&>())) return true;
      }
    }
  }
  if (h.has_bind_mounts) {
    for (const auto& m : spec.value("mounts", json::array())) {
      if (m.value("type", "") == "bind") return true;
    }
  }
  return false;
}

absl::Status ApplyHooks(const std::vector<Hook>& hooks, json* spec) {
  for (const Hook& h : hooks) {
    if (!HookMatches(h, *spec)) continue;
    for (const auto& stage : h.stages) {
      if (kRuncStages.count(stage)) (*spec)["hooks"][stage].push_back(h.hook);
    }
  }
  for (const Hook& h : hooks) {
    if (!HookMatches(h, *spec)) continue;
    if (std::find(h.stages.begin(), h.stages.end(), "precreate") == h.stages.end()) continue;
    std::vector<std::string> argv = {h.hook["path"]};
    // OCI hook args start with argv[0]; keep the ones after it.
    auto args = h.hook.value("args", json::array());
    for (size_t i = 1; i < args.size(); ++i) argv.push_back(args[i]);
    RunOptions o;
    o.stdin_data = DumpJson(*spec);
    o.timeout = absl::Seconds(h.hook.value("timeout", 30));
    // As runc does for its stages: a hook that declares env gets exactly that environment, one
    // that declares none inherits berthd's.
    for (const auto& e : h.hook.value("env", json::array())) o.env.push_back(e);
    o.clear_env = !o.env.empty();
    absl::StatusOr<RunResult> r = RunProcess(argv, o);
    if (!r.ok()) return r.status();
    if (!r->ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("precreate hook ", h.file, ": ", DescribeFailure(argv, *r)));
    }
    json out = json::parse(r->out, nullptr, false);
    if (out.is_discarded() || !out.is_object()) {
      return absl::FailedPreconditionError(
          absl::StrCat("precreate hook ", h.file, " did not print a valid OCI spec"));
    }
    *spec = std::move(out);
  }
  return absl::OkStatus();
}

}  // namespace berth::engine
