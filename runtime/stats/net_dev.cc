// /proc/<pid>/net/dev parsing: "  name: rx_bytes rx_packets rx_errs ... tx_bytes tx_packets tx_errs
// ...".
#include "runtime/stats/net_dev.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "util/fd.h"

namespace berth::engine::stats {
namespace {

namespace cri = runtime::v1;

// Field positions after the colon (see the kernel's dev_seq_printf_stats).
constexpr size_t kRxBytes = 0, kRxErrors = 2, kTxBytes = 8, kTxErrors = 10, kFields = 16;

}  // namespace

std::vector<cri::NetworkInterfaceUsage> ParseNetDev(absl::string_view text) {
  std::vector<cri::NetworkInterfaceUsage> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;  // the two header lines have '|' only
    absl::string_view name = absl::StripAsciiWhitespace(line.substr(0, colon));
    if (name.empty() || name == "lo") continue;
    std::vector<absl::string_view> f =
        absl::StrSplit(line.substr(colon + 1), absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.size() < kFields) continue;
    uint64_t rx_bytes, rx_errors, tx_bytes, tx_errors;
    if (!absl::SimpleAtoi(f[kRxBytes], &rx_bytes) || !absl::SimpleAtoi(f[kRxErrors], &rx_errors) ||
        !absl::SimpleAtoi(f[kTxBytes], &tx_bytes) || !absl::SimpleAtoi(f[kTxErrors], &tx_errors)) {
      continue;
    }
    cri::NetworkInterfaceUsage& u = out.emplace_back();
    u.set_name(std::string(name));
    u.mutable_rx_bytes()->set_value(rx_bytes);
    u.mutable_rx_errors()->set_value(rx_errors);
    u.mutable_tx_bytes()->set_value(tx_bytes);
    u.mutable_tx_errors()->set_value(tx_errors);
  }
  return out;
}

absl::StatusOr<std::vector<cri::NetworkInterfaceUsage>> ReadNetDev(pid_t pid) {
  std::string path = absl::StrCat("/proc/", pid, "/net/dev");
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    int err = errno;
    std::string msg =
        absl::StrCat("network counters of process ", pid, " (", path, "): ", strerror(err));
    return err == ENOENT || err == ESRCH ? absl::NotFoundError(msg) : absl::UnavailableError(msg);
  }
  // procfs hands the file out in page-sized pieces: read until EOF.
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::UnavailableError(absl::StrCat("reading ", path, ": ", strerror(errno)));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return ParseNetDev(text);
}

cri::NetworkUsage ToNetworkUsage(std::vector<cri::NetworkInterfaceUsage> interfaces,
                                 int64_t timestamp_ns) {
  cri::NetworkUsage net;
  net.set_timestamp(timestamp_ns);
  const cri::NetworkInterfaceUsage* def = nullptr;
  for (const auto& i : interfaces) {
    if (i.name() == "eth0") def = &i;
  }
  if (def == nullptr && !interfaces.empty()) def = &interfaces.front();
  if (def != nullptr) *net.mutable_default_interface() = *def;
  for (auto& i : interfaces) *net.add_interfaces() = std::move(i);
  return net;
}

}  // namespace berth::engine::stats
