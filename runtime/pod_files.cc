// Pod files from the sandbox record, with the content rules of network/pod_files.
#include "runtime/pod_files.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "network/pod_files.h"
#include "util/fs.h"

namespace berth::engine {

absl::Status WritePodFiles(const berth::v1::Sandbox& sb, bool host_network) {
  const auto& cfg = sb.config();
  std::string hostname = cfg.hostname();
  if (host_network || hostname.empty()) {
    char buf[256] = {0};
    gethostname(buf, sizeof(buf) - 1);
    hostname = buf;
  }
  network::DnsConfig dns;
  dns.servers.assign(cfg.dns_config().servers().begin(), cfg.dns_config().servers().end());
  dns.searches.assign(cfg.dns_config().searches().begin(), cfg.dns_config().searches().end());
  dns.options.assign(cfg.dns_config().options().begin(), cfg.dns_config().options().end());
  std::string host_resolv = network::ReadHostResolvConf().value_or("");
  network::PodFiles files;
  files.resolv_conf = network::GenerateResolvConf(dns, host_resolv, !host_network);
  files.hosts = network::GenerateHosts(hostname, {sb.ips().begin(), sb.ips().end()}, host_network,
                                       ReadFile("/etc/hosts").value_or(""));
  files.hostname = network::GenerateHostname(hostname);
  return network::WritePodFiles(sb.dir(), files);
}

}  // namespace berth::engine
