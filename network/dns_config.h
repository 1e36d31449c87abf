// A pod's DNS settings (CRI DNSConfig), and what a resolv.conf holds: written to the pod's
// resolv.conf and offered to CNI plugins with the "dns" capability.
#ifndef BERTH_NETWORK_DNS_CONFIG_H_
#define BERTH_NETWORK_DNS_CONFIG_H_

#include <string>
#include <vector>

namespace berth::network {

struct DnsConfig {
  std::vector<std::string> servers;
  std::vector<std::string> searches;
  std::vector<std::string> options;

  bool empty() const { return servers.empty() && searches.empty() && options.empty(); }
};

}  // namespace berth::network

#endif  // BERTH_NETWORK_DNS_CONFIG_H_
