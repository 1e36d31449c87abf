// Pod files from the sandbox record. (Interim content rules until network/ provides them.)
#include "runtime/pod_files.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "util/fs.h"

namespace berth::runtime {

absl::Status WritePodFiles(const berth::v1::Sandbox& sb, bool host_network) {
  const auto& cfg = sb.config();
  std::string hostname = cfg.hostname();
  if (host_network || hostname.empty()) {
    char buf[256] = {0};
    gethostname(buf, sizeof(buf) - 1);
    if (host_network || hostname.empty()) hostname = buf;
  }
  if (absl::Status st = WriteFileAtomic(absl::StrCat(sb.dir(), "/hostname"), hostname + "\n");
      !st.ok()) {
    return st;
  }
  std::string hosts;
  if (host_network) {
    hosts = ReadFile("/etc/hosts").value_or("127.0.0.1\tlocalhost\n");
  } else {
    hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
    for (const auto& ip : sb.ips()) absl::StrAppend(&hosts, ip, "\t", hostname, "\n");
  }
  if (absl::Status st = WriteFileAtomic(absl::StrCat(sb.dir(), "/hosts"), hosts); !st.ok()) return st;
  std::string resolv;
  if (cfg.has_dns_config() && (cfg.dns_config().servers_size() || cfg.dns_config().searches_size())) {
    for (const auto& s : cfg.dns_config().servers()) absl::StrAppend(&resolv, "nameserver ", s, "\n");
    if (cfg.dns_config().searches_size()) {
      absl::StrAppend(&resolv, "search");
      for (const auto& s : cfg.dns_config().searches()) absl::StrAppend(&resolv, " ", s);
      absl::StrAppend(&resolv, "\n");
    }
    if (cfg.dns_config().options_size()) {
      absl::StrAppend(&resolv, "options");
      for (const auto& s : cfg.dns_config().options()) absl::StrAppend(&resolv, " ", s);
      absl::StrAppend(&resolv, "\n");
    }
  } else {
    resolv = ReadFile("/etc/resolv.conf").value_or("");
  }
  return WriteFileAtomic(absl::StrCat(sb.dir(), "/resolv.conf"), resolv);
}

}  // namespace berth::runtime
