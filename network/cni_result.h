// CNI plugin output: the ADD result (interfaces, IPs, DNS) and the error object of a failed call.
#ifndef BERTH_NETWORK_CNI_RESULT_H_
#define BERTH_NETWORK_CNI_RESULT_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::network {

struct CniInterface {
  std::string name;
  std::string mac;
  std::string sandbox;  // netns path; empty for host-side interfaces
};

struct CniIpConfig {
  int version = 4;      // 4 or 6, from the address
  std::string address;  // CIDR, e.g. "10.250.0.2/24"
  std::string gateway;  // may be empty
  int interface = -1;   // index into CniResult::interfaces, -1 when absent

  std::string ip() const { return address.substr(0, address.find('/')); }
};

struct CniDns {
  std::vector<std::string> nameservers;
  std::string domain;
  std::vector<std::string> search;
  std::vector<std::string> options;
};

struct CniResult {
  std::string cni_version;
  std::vector<CniInterface> interfaces;
  std::vector<CniIpConfig> ips;
  CniDns dns;
};

// Parses a result of any spec version: 0.3.x/0.4.0/1.0.0 ("ips", "interfaces") and the older
// 0.1/0.2 form ("ip4", "ip6").
absl::StatusOr<CniResult> ParseCniResult(absl::string_view json);

// The pod's IPs, primary first: addresses on interfaces inside the sandbox (or with no interface
// given), IPv4 before IPv6, otherwise in result order; no duplicates.
std::vector<std::string> PodIps(const CniResult& result);

// The error object a plugin prints on failure ({"code", "msg", "details"}).
struct CniError {
  int code = 0;
  std::string msg;
  std::string details;
};
std::optional<CniError> ParseCniError(absl::string_view json);

}  // namespace berth::network

#endif  // BERTH_NETWORK_CNI_RESULT_H_
