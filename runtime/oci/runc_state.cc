// `runc state` without runc: libcontainer 1.1's Load + refreshState + runType + isPaused over
// state.json, /proc/<pid>/stat and the freezer, deciding only where runc's answer is certain.
#include "runtime/oci/runc_state.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "runtime/cgroups/mode.h"
#include "util/fd.h"

namespace berth::oci {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxStateBytes = size_t{4} << 20;
// freezer.state, cgroup.events and /proc/<pid>/stat are a few dozen to a few hundred bytes.
constexpr size_t kMaxSmallFileBytes = 4096;

// The reader cannot be sure of runc's answer: the caller asks runc.
absl::Status Undecided(absl::string_view id, absl::string_view why) {
  return absl::FailedPreconditionError(
      absl::StrCat("runc state of ", id, " not read in-process: ", why));
}

// Reads all of `fd`, at most `max` bytes; nullopt on a read error or a longer file.
std::optional<std::string> ReadBounded(int fd, size_t max) {
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t r = read(fd, buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return std::nullopt;
    if (r == 0) return out;
    if (out.size() + static_cast<size_t>(r) > max) return std::nullopt;
    out.append(buf, static_cast<size_t>(r));
  }
}

// runc's validateID: ^[\w+-\.]+$ (the class's "+-\." is the range '+'..'.', so + , - .), and
// not "." or "..", which path cleaning would change.
bool RuncAcceptsId(absl::string_view id) {
  if (id.empty() || id == "." || id == "..") return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && (c < '+' || c > '.')) {
      return false;
    }
  }
  return true;
}

// An absolute path in Go's path.Clean form: no empty, "." or ".." component, no trailing '/'.
bool IsCleanAbsolute(absl::string_view p) {
  if (p.size() < 2 || p[0] != '/' || p.back() == '/') return false;
  for (absl::string_view part : absl::StrSplit(p.substr(1), '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

// The cgroup files runc reads, opened as runc's cgroups.OpenFile opens them: beneath the
// cgroup mount, no magic links (on v2: no symlinks and no other mount either).
class CgroupFiles {
 public:
  CgroupFiles(const RuncStateReaderOptions& o, bool unified) : root_(o.cgroup_root) {
    resolve_ = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    if (unified) resolve_ |= RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS;
  }

  // Where an open went: kOpen (fd set), kMissing (ENOENT or ENODEV, which runc reads as "no
  // freezer"), kFailed (anything else, or a directory runc would not open this way).
  enum class Open { kOpen, kMissing, kFailed };
  Open OpenIn(const std::string& dir, const char* file, UniqueFd* fd) {
    if (!IsCleanAbsolute(dir) || !absl::StartsWith(dir, root_ + "/")) return Open::kFailed;
    if (!root_fd_.valid()) {
      root_fd_.reset(open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (!root_fd_.valid()) return Open::kFailed;
    }
    const std::string rel = absl::StrCat(dir.substr(root_.size() + 1), "/", file);
    open_how how{};
    how.flags = O_RDONLY | O_CLOEXEC;
    how.resolve = resolve_;
    fd->reset(
        static_cast<int>(syscall(SYS_openat2, root_fd_.get(), rel.c_str(), &how, sizeof(how))));
    if (fd->valid()) return Open::kOpen;
    return errno == ENOENT || errno == ENODEV ? Open::kMissing : Open::kFailed;
  }

 private:
  std::string root_;
  uint64_t resolve_ = 0;
  UniqueFd root_fd_;
};

enum class Frozen { kNo, kYes, kUndecided };

// cgroup v1 (fs and systemd's legacy manager): freezer.state, then freezer.self_freezing.
Frozen FreezerV1(CgroupFiles& files, const std::string& dir) {
  UniqueFd fd;
  switch (files.OpenIn(dir, "freezer.state", &fd)) {
    case CgroupFiles::Open::kMissing:
      return Frozen::kNo;  // runc: Undefined
    case CgroupFiles::Open::kFailed:
      return Frozen::kUndecided;
    case CgroupFiles::Open::kOpen:
      break;
  }
  std::optional<std::string> state = ReadBounded(fd.get(), kMaxSmallFileBytes);
  if (!state) return Frozen::kUndecided;
  const absl::string_view s = absl::StripAsciiWhitespace(*state);
  if (s == "THAWED") return Frozen::kNo;
  if (s != "FROZEN") return Frozen::kUndecided;  // FREEZING: runc waits for it to settle
  // Frozen by itself, or only through an ancestor (which runc does not call paused)?
  UniqueFd self;
  switch (files.OpenIn(dir, "freezer.self_freezing", &self)) {
    case CgroupFiles::Open::kMissing:
      return Frozen::kYes;  // an old kernel: runc takes FROZEN as it is
    case CgroupFiles::Open::kFailed:
      return Frozen::kUndecided;
    case CgroupFiles::Open::kOpen:
      break;
  }
  std::optional<std::string> v = ReadBounded(self.get(), kMaxSmallFileBytes);
  if (v == "1\n") return Frozen::kYes;
  if (v == "0\n") return Frozen::kNo;
  return Frozen::kUndecided;
}

// cgroup v2: the first two bytes of cgroup.freeze; "1\n" is paused once cgroup.events says
// "frozen 1" (runc waits up to 10 s while it says "frozen 0"; the reader leaves that to runc).
Frozen FreezerV2(CgroupFiles& files, const std::string& dir) {
  UniqueFd fd;
  switch (files.OpenIn(dir, "cgroup.freeze", &fd)) {
    case CgroupFiles::Open::kMissing:
      return Frozen::kNo;
    case CgroupFiles::Open::kFailed:
      return Frozen::kUndecided;
    case CgroupFiles::Open::kOpen:
      break;
  }
  char buf[2];
  ssize_t n;
  do {
    n = read(fd.get(), buf, sizeof(buf));  // one read, as runc's
  } while (n < 0 && errno == EINTR);
  if (n != 2) return Frozen::kUndecided;
  const absl::string_view v(buf, 2);
  if (v == "0\n") return Frozen::kNo;
  if (v != "1\n") return Frozen::kUndecided;
  UniqueFd events;
  if (files.OpenIn(dir, "cgroup.events", &events) != CgroupFiles::Open::kOpen) {
    return Frozen::kUndecided;
  }
  std::optional<std::string> text = ReadBounded(events.get(), kMaxSmallFileBytes);
  if (!text) return Frozen::kUndecided;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    if (absl::EndsWith(line, "\r")) line.remove_suffix(1);
    if (!absl::ConsumePrefix(&line, "frozen ")) continue;
    return !line.empty() && line[0] == '1' ? Frozen::kYes : Frozen::kUndecided;
  }
  return Frozen::kNo;  // no "frozen" line: runc says Undefined
}

// The cgroup manager runc 1.1's manager.NewWithPaths would make, asked GetFreezerState.
Frozen IsPaused(const json& cgroups, const json& paths, const RuncStateReaderOptions& o,
                bool unified, bool systemd) {
  CgroupFiles files(o, unified);
  if (unified) {
    // getUnifiedPath: one path, under the key "". Empty: runc computes it from the config.
    if (paths.size() != 1 || !paths.contains("")) return Frozen::kUndecided;
    const std::string dir = paths[""].get<std::string>();
    return dir.empty() ? Frozen::kUndecided : FreezerV2(files, dir);
  }
  // v1 managers refuse a config without resources or with unified ones.
  if (!cgroups.contains("devices")) return Frozen::kUndecided;
  if (auto u = cgroups.find("unified"); u != cgroups.end() && !u->is_null()) {
    return Frozen::kUndecided;
  }
  auto it = paths.find("freezer");
  if (it == paths.end()) return Frozen::kNo;  // no freezer cgroup: Undefined
  const std::string dir = it->get<std::string>();
  // fs's manager takes an empty path as no freezer; systemd's legacy one fails on it.
  if (dir.empty()) return systemd ? Frozen::kUndecided : Frozen::kNo;
  return FreezerV1(files, dir);
}

// The members of state.json the reader looks at, gathered by SAX into a small object of the
// same shape: the rest (mounts, devices, seccomp, namespaces: most of the 6 KB runc writes) is
// scanned, never built, which halves the time per container. A kept member whose value is of
// another kind is recorded as an empty object or array, which the checks after it refuse.
class StateFields final : public json::json_sax_t {
 public:
  // The object gathered; null unless state.json was one JSON object.
  json Take() { return top_object_ && done_ ? std::move(fields_) : json(); }
  bool Parse(const std::string& text) {
    done_ = json::sax_parse(text, this);
    return done_;
  }

  bool null() override { return Value(json()); }
  bool boolean(bool v) override { return Value(v); }
  bool number_integer(number_integer_t v) override { return Value(v); }
  bool number_unsigned(number_unsigned_t v) override { return Value(v); }
  bool number_float(number_float_t v, const string_t&) override { return Value(v); }
  bool string(string_t& v) override { return Value(std::move(v)); }
  bool binary(binary_t&) override { return false; }  // not in JSON text
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool start_object(std::size_t) override {
    if (stack_.empty()) {
      top_object_ = true;
      stack_.push_back(Ctx::kTop);
      return true;
    }
    switch (stack_.back()) {
      case Ctx::kTop:
        if (key_ == "cgroup_paths" || key_ == "config") {
          fields_[key_] = json::object();
          stack_.push_back(key_ == "config" ? Ctx::kConfig : Ctx::kPaths);
          return true;
        }
        break;
      case Ctx::kConfig:
        if (key_ == "cgroups") {
          fields_["config"]["cgroups"] = json::object();
          stack_.push_back(Ctx::kCgroups);
          return true;
        }
        break;
      default:
        break;
    }
    Value(json::object());  // kept members record that they are not what was expected
    stack_.push_back(Ctx::kSkip);
    return true;
  }
  bool end_object() override { return Pop(); }
  bool start_array(std::size_t) override {
    if (!stack_.empty()) Value(json::array());
    stack_.push_back(Ctx::kSkip);
    return true;
  }
  bool end_array() override { return Pop(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  enum class Ctx { kTop, kPaths, kConfig, kCgroups, kSkip };

  // A value at the current place: kept if it is one of the members the reader reads.
  bool Value(json v) {
    if (stack_.empty()) return true;  // a top-level scalar: Take() says null
    switch (stack_.back()) {
      case Ctx::kTop:
        if (key_ == "init_process_pid" || key_ == "init_process_start") {
          fields_[key_] = std::move(v);
        } else if (key_ == "cgroup_paths" || key_ == "config") {
          fields_[key_] = std::move(v);  // not an object: refused later
        }
        break;
      case Ctx::kPaths:
        fields_["cgroup_paths"][key_] = std::move(v);
        break;
      case Ctx::kConfig:
        if (key_ == "cgroups") fields_["config"]["cgroups"] = std::move(v);
        break;
      case Ctx::kCgroups:
        if (key_ == "Systemd" || key_ == "Rootless" || key_ == "unified" || key_ == "devices") {
          fields_["config"]["cgroups"][key_] = std::move(v);
        }
        break;
      case Ctx::kSkip:
        break;
    }
    return true;
  }
  bool Pop() {
    if (stack_.empty()) return false;
    stack_.pop_back();
    return true;
  }

  json fields_ = json::object();
  std::vector<Ctx> stack_;
  std::string key_;
  bool top_object_ = false;
  bool done_ = false;
};

// An integer member that Go's decoder would put in an int64 (signed) or a uint64.
std::optional<int64_t> Int64Member(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return std::nullopt;
  if (it->is_number_unsigned()) {
    const uint64_t v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(v);
  }
  if (it->is_number_integer()) return it->get<int64_t>();
  return std::nullopt;
}

// A bool member; absent is false (Go's zero value). nullopt: not a bool.
std::optional<bool> BoolMember(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean()) return std::nullopt;
  return it->get<bool>();
}

// What ReadProcStat says (runc_state.h).
bool ProcStat(int64_t pid, char* state, uint64_t* start_time) {
  UniqueFd fd(open(absl::StrCat("/proc/", pid, "/stat").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return false;
  std::optional<std::string> text = ReadBounded(fd.get(), kMaxSmallFileBytes);
  if (!text) return false;
  const std::string& data = *text;
  constexpr size_t kMinAfterName = 20 * 2 + 1;
  const size_t first = data.find('(');
  if (first == std::string::npos || first + kMinAfterName >= data.size()) return false;
  const size_t last = data.rfind(')');
  if (last == std::string::npos || last <= first || last + kMinAfterName >= data.size()) {
    return false;
  }
  const absl::string_view rest = absl::string_view(data).substr(last + 2);
  *state = rest[0];
  size_t at = 0;
  for (int spaces = 22 - 3; spaces > 0 && at < rest.size(); ++at) {
    if (rest[at] == ' ') --spaces;
  }
  const size_t end = rest.find(' ', at);
  if (end == absl::string_view::npos) return false;
  const absl::string_view field = rest.substr(at, end - at);
  // strconv.ParseUint: decimal digits only (SimpleAtoi would also take a sign or spaces).
  if (field.empty() || !std::all_of(field.begin(), field.end(), absl::ascii_isdigit)) return false;
  return absl::SimpleAtoi(field, start_time);
}

}  // namespace

bool ReadProcStat(int64_t pid, char* state, uint64_t* start_time) {
  return ProcStat(pid, state, start_time);
}

RuncStateReaderOptions ResolveHostFacts(RuncStateReaderOptions o) {
  if (!o.unified) {
    // runc's IsCgroup2UnifiedMode: cgroup2 mounted at the root.
    absl::StatusOr<cgroups::CgroupMode> mode = cgroups::DetectCgroupMode(o.cgroup_root);
    o.unified = mode.ok() && *mode == cgroups::CgroupMode::kUnified;
  }
  if (!o.systemd_running) {
    // runc's IsRunningSystemd.
    struct stat st {};
    o.systemd_running = lstat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
  }
  return o;
}

RuncStatus ParseRuncStatus(std::string_view name) {
  static constexpr std::pair<std::string_view, RuncStatus> kNames[] = {
      {"creating", RuncStatus::kCreating}, {"created", RuncStatus::kCreated},
      {"running", RuncStatus::kRunning},   {"paused", RuncStatus::kPaused},
      {"stopped", RuncStatus::kStopped},
  };
  for (const auto& [n, st] : kNames) {
    if (n == name) return st;
  }
  return RuncStatus::kUnknown;
}

const char* RuncStatusName(RuncStatus status) {
  switch (status) {
    case RuncStatus::kCreating:
      return "creating";
    case RuncStatus::kCreated:
      return "created";
    case RuncStatus::kRunning:
      return "running";
    case RuncStatus::kPaused:
      return "paused";
    case RuncStatus::kStopped:
      return "stopped";
    case RuncStatus::kUnknown:
      break;
  }
  return "unknown";
}

bool ReadableRuncVersion(absl::string_view version_output) {
  absl::string_view first = version_output.substr(0, version_output.find('\n'));
  return absl::StartsWith(first, "runc version 1.1.");
}

absl::StatusOr<RuncState> ReadRuncState(const std::string& root, const std::string& id,
                                        const RuncStateReaderOptions& given) {
  const RuncStateReaderOptions options = ResolveHostFacts(given);
  if (!RuncAcceptsId(id)) return Undecided(id, "runc would refuse the id");
  if (root.empty() || root[0] != '/') return Undecided(id, "runc's root is not absolute");
  const std::string dir_path = absl::StrCat(root, "/", id);
  UniqueFd dir(open(dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir.valid()) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat("container ", id, " does not exist in ", root));
    }
    return Undecided(id, absl::StrCat(dir_path, ": ", strerror(errno)));
  }
  // O_NONBLOCK: a fifo put in its place must not hang the caller; it is refused below.
  UniqueFd file(openat(dir.get(), "state.json", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!file.valid()) return Undecided(id, absl::StrCat("state.json: ", strerror(errno)));
  struct stat st {};
  if (fstat(file.get(), &st) != 0) return Undecided(id, "state.json: fstat failed");
  if (!S_ISREG(st.st_mode)) return Undecided(id, "state.json is not a regular file");
  if (static_cast<uint64_t>(st.st_size) > kMaxStateBytes) {
    return Undecided(id, "state.json is larger than 4 MiB");
  }
  std::optional<std::string> text = ReadBounded(file.get(), kMaxStateBytes);
  if (!text) return Undecided(id, "state.json cannot be read or grew past 4 MiB");
  StateFields gather;
  if (!gather.Parse(*text)) return Undecided(id, "state.json is not JSON");
  const json j = gather.Take();
  if (!j.is_object()) return Undecided(id, "state.json is not a JSON object");

  // The fields runc 1.1's State holds and refreshState uses; any other shape is not decided here.
  const std::optional<int64_t> pid = Int64Member(j, "init_process_pid");
  const auto start = j.find("init_process_start");
  if (!pid || start == j.end() || !start->is_number_unsigned()) {
    return Undecided(id, "no init_process_pid/init_process_start as runc 1.1 writes them");
  }
  const auto paths = j.find("cgroup_paths");
  if (paths == j.end() || !paths->is_object()) return Undecided(id, "no cgroup_paths object");
  for (const auto& [k, v] : paths->items()) {
    if (!v.is_string()) return Undecided(id, "a cgroup path is not a string");
  }
  const auto config = j.find("config");
  if (config == j.end() || !config->is_object()) return Undecided(id, "no config object");
  const auto cgroups = config->find("cgroups");
  if (cgroups == config->end() || !cgroups->is_object()) {
    return Undecided(id, "no config.cgroups object");
  }
  const std::optional<bool> systemd = BoolMember(*cgroups, "Systemd");
  const std::optional<bool> rootless = BoolMember(*cgroups, "Rootless");
  if (!systemd || !rootless || *rootless) return Undecided(id, "a cgroup manager runc may refuse");
  if (*systemd && !*options.systemd_running)
    return Undecided(id, "systemd cgroups without systemd");

  // refreshState: the freezer first, whether or not the init process lives.
  switch (IsPaused(*cgroups, *paths, options, *options.unified, *systemd)) {
    case Frozen::kUndecided:
      return Undecided(id, "the freezer's state is not certain");
    case Frozen::kYes:
      return RuncState{RuncStatus::kPaused, static_cast<pid_t>(*pid)};
    case Frozen::kNo:
      break;
  }
  // runType: the init process is the one runc started only if its start time matches.
  char state = 0;
  uint64_t start_time = 0;
  if (!ProcStat(*pid, &state, &start_time) || start_time != start->get<uint64_t>() ||
      state == 'Z' || state == 'X') {
    return RuncState{RuncStatus::kStopped, 0};
  }
  // The fifo `runc start` opens and removes: present, the container is created, not started.
  struct stat fifo {};
  if (fstatat(dir.get(), "exec.fifo", &fifo, 0) == 0) {
    return RuncState{RuncStatus::kCreated, static_cast<pid_t>(*pid)};
  }
  return RuncState{RuncStatus::kRunning, static_cast<pid_t>(*pid)};
}

}  // namespace berth::oci
