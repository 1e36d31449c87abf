// The restart figures: berthd's restart under load, and the `runc state` baseline it replaced.
#include "bench/restart_section.h"

#include <dirent.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/oci/runc_state.h"
#include "util/fd.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace berth::bench {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
namespace cri = runtime::v1;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> out;
  UniqueDir d(opendir(dir.c_str()));
  if (!d) return out;
  while (dirent* e = readdir(d.get())) {
    std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The last "recovered ... in <seconds>s" line berthd logged; -1 when there is none.
double LoggedRecoveryMs(const std::string& log) {
  size_t at = log.rfind("] recovered ");
  if (at == std::string::npos) return -1;
  size_t end = log.find('\n', at);
  std::string line = log.substr(at, end == std::string::npos ? std::string::npos : end - at);
  size_t in = line.rfind(" in ");
  if (in == std::string::npos || line.back() != 's') return -1;
  double seconds = 0;
  if (!absl::SimpleAtod(line.substr(in + 4, line.size() - in - 5), &seconds)) return -1;
  return seconds * 1000;
}

// What follows "start-up took " in the last such line berthd logged (each start-up step's
// time, server/daemon.cc); empty when there is none.
std::string LoggedStartupPhases(const std::string& log) {
  const std::string kTook = "] start-up took ";
  size_t at = log.rfind(kTook);
  if (at == std::string::npos) return "";
  at += kTook.size();
  size_t end = log.find('\n', at);
  return log.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

}  // namespace

json RuncStateBaseline(const std::string& runc, const std::string& runc_root) {
  const std::vector<std::string> ids = Entries(runc_root);
  std::vector<oci::RuncState> said(ids.size());
  std::vector<bool> runc_answered(ids.size(), false);
  std::vector<double> each;
  int runc_failures = 0;
  const auto t0 = Clock::now();
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto c0 = Clock::now();
    absl::StatusOr<RunResult> r = RunProcess({runc, "--root", runc_root, "state", ids[i]});
    each.push_back(MsSince(c0));
    json j = r.ok() && r->ok() ? json::parse(r->out, nullptr, false) : json();
    if (!j.is_object()) {
      ++runc_failures;
      continue;
    }
    said[i].status = oci::ParseRuncStatus(j.value("status", ""));
    said[i].pid = j.value("pid", 0);
    runc_answered[i] = true;
  }
  const double runc_total = MsSince(t0);
  int undecided = 0, differ = 0;
  const auto r0 = Clock::now();
  for (size_t i = 0; i < ids.size(); ++i) {
    absl::StatusOr<oci::RuncState> s = oci::ReadRuncState(runc_root, ids[i]);
    if (!s.ok()) {
      ++undecided;
    } else if (runc_answered[i] && !(*s == said[i])) {  // runc's failures are counted above
      ++differ;
    }
  }
  const double reader_total = MsSince(r0);
  return {{"restart_runc_containers", ids.size()},
          {"restart_baseline_runc_state_serial_total_ms", runc_total},
          {"restart_baseline_runc_state_median_ms", Median(each)},
          {"restart_baseline_runc_state_failures", runc_failures},
          {"restart_in_process_reader_total_ms", reader_total},
          {"restart_in_process_reader_undecided", undecided},
          {"restart_in_process_reader_answers_differing_from_runc", differ}};
}

json TimeRestart(test::Berthd& berthd, const test::Berthd::Options& options, size_t containers,
                 const std::string& label) {
  berthd.Kill();
  test::Berthd::Options o = options;
  o.poll_interval_ms = 1;
  const auto t0 = Clock::now();
  if (absl::Status st = berthd.Start(o); !st.ok()) {
    return {{label + "_error", std::string(st.message())}};
  }
  // From the spawn: Start first writes the config file (an fsync, slow right after the 1,000
  // containers' writes), which a node's service manager does not do.
  const auto spawned = berthd.spawned_at();
  const double to_version = MsSince(spawned);
  const double start_call = MsSince(t0);
  size_t listed = 0;
  double to_list = -1;
  while (MsSince(t0) < 120'000) {
    cri::ListContainersResponse r;
    if (berthd.runtime().ListContainers(test::Ctx().get(), {}, &r).ok()) {
      listed = r.containers_size();
      if (listed >= containers) {
        to_list = MsSince(spawned);
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return {{label + "_to_version_ms", to_version},
          {label + "_start_call_to_version_ms", start_call},
          {label + "_to_full_list_ms", to_list},
          {label + "_listed", listed},
          {label + "_recovery_logged_ms", LoggedRecoveryMs(berthd.log())},
          {label + "_startup_logged", LoggedStartupPhases(berthd.log())}};
}

}  // namespace berth::bench
