// resolv.conf/hosts/hostname generation for pods, after libpod's generateResolvConf/generateHosts.
#include "network/pod_files.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "util/fs.h"

namespace berth::network {
namespace {

bool IsLoopbackNameserver(absl::string_view ns) {
  // Zone suffixes ("::1%lo") still name the loopback address.
  ns = ns.substr(0, ns.find('%'));
  return absl::StartsWith(ns, "127.") || ns == "::1" || ns == "0:0:0:0:0:0:0:1";
}

}  // namespace

DnsConfig ParseResolvConf(absl::string_view text) {
  DnsConfig c;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = line.substr(0, line.find_first_of("#;"));
    std::vector<std::string> f = absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (f.size() < 2) continue;
    if (f[0] == "nameserver") {
      c.servers.push_back(f[1]);
    } else if (f[0] == "search" || f[0] == "domain") {
      // The last search/domain line wins, as in resolv.conf(5).
      c.searches.assign(f.begin() + 1, f.end());
    } else if (f[0] == "options") {
      c.options.insert(c.options.end(), f.begin() + 1, f.end());
    }
  }
  return c;
}

std::string FormatResolvConf(const DnsConfig& c) {
  std::string out;
  if (!c.searches.empty()) absl::StrAppend(&out, "search ", absl::StrJoin(c.searches, " "), "\n");
  for (const auto& ns : c.servers) absl::StrAppend(&out, "nameserver ", ns, "\n");
  if (!c.options.empty()) absl::StrAppend(&out, "options ", absl::StrJoin(c.options, " "), "\n");
  return out;
}

std::string GenerateResolvConf(const DnsConfig& dns, absl::string_view host_resolv_conf,
                               bool own_netns) {
  if (!dns.empty()) {
    DnsConfig c = dns;
    if (std::find(c.searches.begin(), c.searches.end(), ".") != c.searches.end())
      c.searches.clear();
    return FormatResolvConf(c);
  }
  if (!own_netns) return std::string(host_resolv_conf);
  DnsConfig c = ParseResolvConf(host_resolv_conf);
  c.servers.erase(std::remove_if(c.servers.begin(), c.servers.end(),
                                 [](const std::string& ns) { return IsLoopbackNameserver(ns); }),
                  c.servers.end());
  if (c.servers.empty()) c.servers = DefaultNameservers();
  return FormatResolvConf(c);
}

absl::StatusOr<std::string> ReadHostResolvConf(const std::string& etc_resolv,
                                               const std::string& systemd_resolv) {
  absl::StatusOr<std::string> text = ReadFile(etc_resolv);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) return std::string();
    return text.status();
  }
  DnsConfig c = ParseResolvConf(*text);
  if (c.servers.size() == 1 && c.servers[0] == "127.0.0.53") {
    absl::StatusOr<std::string> upstream = ReadFile(systemd_resolv);
    if (upstream.ok()) return upstream;
  }
  return text;
}

std::string GenerateHosts(const std::string& hostname, const std::vector<std::string>& pod_ips,
                          bool host_network, absl::string_view host_hosts) {
  if (host_network) return std::string(host_hosts);
  std::string out =
      "127.0.0.1\tlocalhost\n"
      "::1\tlocalhost ip6-localhost ip6-loopback\n"
      "fe00::0\tip6-localnet\n"
      "fe00::0\tip6-mcastprefix\n"
      "fe00::1\tip6-allnodes\n"
      "fe00::2\tip6-allrouters\n";
  if (!hostname.empty()) {
    for (const auto& ip : pod_ips) absl::StrAppend(&out, ip, "\t", hostname, "\n");
  }
  return out;
}

std::string GenerateHostname(const std::string& hostname) { return absl::StrCat(hostname, "\n"); }

absl::Status WritePodFiles(const std::string& dir, const PodFiles& files) {
  if (absl::Status s = MakeDirs(dir, 0755); !s.ok()) return s;
  for (const auto& [name, content] :
       {std::pair<const char*, const std::string*>{"resolv.conf", &files.resolv_conf},
        {"hosts", &files.hosts},
        {"hostname", &files.hostname}}) {
    if (absl::Status s = WriteFileAtomic(absl::StrCat(dir, "/", name), *content, 0644); !s.ok())
      return s;
  }
  return absl::OkStatus();
}

}  // namespace berth::network
