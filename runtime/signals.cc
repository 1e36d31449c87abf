// Signal names: one table of the classic names, plus the real-time range Docker names
// SIGRTMIN(+n) and SIGRTMAX(-n) with glibc's SIGRTMIN of 34.
#include "runtime/signals.h"

#include <signal.h>

#include <string_view>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace berth::engine {
namespace {

namespace cri = runtime::v1;

// Docker's and containerd's numbering of the real-time range on Linux.
constexpr int kRtMin = 34;
constexpr int kRtMax = 64;

constexpr std::pair<const char*, int> kSignals[] = {
    {"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"BUS", SIGBUS},       {"CHLD", SIGCHLD},
    {"CLD", SIGCHLD},  {"CONT", SIGCONT}, {"FPE", SIGFPE},       {"HUP", SIGHUP},
    {"ILL", SIGILL},   {"INT", SIGINT},   {"IO", SIGIO},         {"IOT", SIGIOT},
    {"KILL", SIGKILL}, {"PIPE", SIGPIPE}, {"POLL", SIGPOLL},     {"PROF", SIGPROF},
    {"PWR", SIGPWR},   {"QUIT", SIGQUIT}, {"SEGV", SIGSEGV},     {"STKFLT", SIGSTKFLT},
    {"STOP", SIGSTOP}, {"SYS", SIGSYS},   {"TERM", SIGTERM},     {"TRAP", SIGTRAP},
    {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"VTALRM", SIGVTALRM}, {"WINCH", SIGWINCH},
    {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
};

absl::Status Unknown(absl::string_view name) {
  return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" is not a signal"));
}

}  // namespace

absl::StatusOr<int> ParseSignal(absl::string_view name_in) {
  std::string name = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(name_in));
  int num = 0;
  if (absl::SimpleAtoi(name, &num)) {
    if (num < 1 || num > kRtMax) return Unknown(name_in);
    return num;
  }
  absl::string_view n = name;
  absl::ConsumePrefix(&n, "SIG");
  for (const auto& [k, v] : kSignals) {
    if (n == k) return v;
  }
  for (const auto& [prefix, base, sign] :
       {std::tuple{"RTMIN", kRtMin, 1}, std::tuple{"RTMAX", kRtMax, -1}}) {
    absl::string_view rest = n;
    if (!absl::ConsumePrefix(&rest, prefix)) continue;
    if (rest.empty()) return base;
    if (rest[0] != (sign > 0 ? '+' : '-')) return Unknown(name_in);
    rest.remove_prefix(1);
    int off = 0;
    if (!absl::SimpleAtoi(rest, &off) || off < 1 || off > kRtMax - kRtMin - 1)
      return Unknown(name_in);
    return base + sign * off;
  }
  return Unknown(name_in);
}

std::string SignalName(int signal) {
  for (const auto& [k, v] : kSignals) {
    // SIGCHLD and SIGIOT have older aliases (CLD, IOT=ABRT): the first listed wins.
    if (v == signal && std::string_view(k) != "CLD" && std::string_view(k) != "IOT") {
      return absl::StrCat("SIG", k);
    }
  }
  if (signal == kRtMin) return "SIGRTMIN";
  if (signal == kRtMax) return "SIGRTMAX";
  if (signal > kRtMin && signal < kRtMax) {
    return signal - kRtMin <= 15 ? absl::StrCat("SIGRTMIN+", signal - kRtMin)
                                 : absl::StrCat("SIGRTMAX-", kRtMax - signal);
  }
  return absl::StrCat(signal);
}

int FromCriSignal(cri::Signal signal) {
  if (signal == cri::SIGNAL_RUNTIME_DEFAULT) return 0;
  // SIGNAL_SIGRTMINPLUS3 → SIGRTMIN+3, SIGNAL_SIGRTMAXMINUS1 → SIGRTMAX-1.
  std::string name = cri::Signal_Name(signal);
  absl::string_view n = name;
  if (!absl::ConsumePrefix(&n, "SIGNAL_")) return 0;
  std::string plain = absl::StrReplaceAll(n, {{"PLUS", "+"}, {"MINUS", "-"}});
  absl::StatusOr<int> num = ParseSignal(plain);
  return num.ok() ? *num : 0;
}

cri::Signal ToCriSignal(int signal) {
  std::string name = SignalName(signal);
  absl::string_view n = name;
  if (!absl::ConsumePrefix(&n, "SIG")) return cri::SIGNAL_RUNTIME_DEFAULT;
  std::string enum_name =
      absl::StrCat("SIGNAL_SIG", absl::StrReplaceAll(n, {{"+", "PLUS"}, {"-", "MINUS"}}));
  cri::Signal out = cri::SIGNAL_RUNTIME_DEFAULT;
  if (!cri::Signal_Parse(enum_name, &out)) return cri::SIGNAL_RUNTIME_DEFAULT;
  return out;
}

}  // namespace berth::engine
