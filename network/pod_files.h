// The files a pod's containers see as /etc/resolv.conf, /etc/hosts and /etc/hostname: pure
// generators returning text, and a writer that puts them into the pod's directory atomically.
#ifndef BERTH_NETWORK_POD_FILES_H_
#define BERTH_NETWORK_POD_FILES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "network/dns_config.h"

namespace berth::network {

// resolv.conf text as a DnsConfig (nameserver lines are its servers) and back: reads
// nameserver/search/domain/options lines; comments and unknown lines are dropped.
DnsConfig ParseResolvConf(absl::string_view text);
std::string FormatResolvConf(const DnsConfig& conf);

// Used when a pod in its own network namespace would otherwise have no nameserver left
// (libpod and Docker do the same).
inline std::vector<std::string> DefaultNameservers() { return {"8.8.8.8", "8.8.4.4"}; }

// The pod's resolv.conf. A non-empty `dns` (the CRI DNSConfig) is written as given, like
// containerd does (a search list of just "." means no search domains). Otherwise the host's
// resolv.conf is used; a pod with its own netns cannot reach the host's loopback resolvers
// (systemd-resolved's 127.0.0.53, dnsmasq on 127.0.0.1, ::1), so those are dropped, falling
// back to DefaultNameservers() when none remain.
std::string GenerateResolvConf(const DnsConfig& dns, absl::string_view host_resolv_conf,
                               bool own_netns);

// The host's resolv.conf text; on systemd-resolved hosts whose /etc/resolv.conf only names the
// 127.0.0.53 stub, the real upstream list in /run/systemd/resolve/resolv.conf instead.
absl::StatusOr<std::string> ReadHostResolvConf(
    const std::string& etc_resolv = "/etc/resolv.conf",
    const std::string& systemd_resolv = "/run/systemd/resolve/resolv.conf");

// The pod's hosts file. Host-network pods get the host's hosts file (`host_hosts`) unchanged.
// Others get the localhost lines for IPv4 and IPv6 and one line per pod IP naming the hostname.
std::string GenerateHosts(const std::string& hostname, const std::vector<std::string>& pod_ips,
                          bool host_network, absl::string_view host_hosts);

std::string GenerateHostname(const std::string& hostname);

struct PodFiles {
  std::string resolv_conf;
  std::string hosts;
  std::string hostname;
};

// Writes `dir`/resolv.conf, hosts and hostname (mode 0644), each replaced atomically so a
// container starting meanwhile never sees a half-written file. Creates `dir` when missing.
absl::Status WritePodFiles(const std::string& dir, const PodFiles& files);

}  // namespace berth::network

#endif  // BERTH_NETWORK_POD_FILES_H_
