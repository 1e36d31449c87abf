// Host-literal parsing with inet_pton (no resolver, no shorthand forms) and the credential rules.
#include "storage/registry/trust.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "storage/registry/http.h"
#include "storage/registry/reference.h"

namespace berth::registry {
namespace {

bool ValidPort(absl::string_view p) {
  return !p.empty() && p.size() <= 5 &&
         p.find_first_not_of("0123456789") == absl::string_view::npos;
}

// The registry a CRI server_address names ("https://index.docker.io/v1/" is docker.io).
std::string RegistryOf(absl::string_view server_address) {
  std::string h = UrlHost(server_address);
  if (h == "index.docker.io" || h == "registry-1.docker.io") return kDockerHubDomain;
  return h;
}

}  // namespace

bool IsLoopbackHost(absl::string_view host) {
  if (absl::StartsWith(host, "[")) {
    size_t close = host.find(']');
    if (close == absl::string_view::npos) return false;
    absl::string_view rest = host.substr(close + 1);
    if (!rest.empty() && !(rest[0] == ':' && ValidPort(rest.substr(1)))) return false;
    std::string addr(host.substr(1, close - 1));
    struct in6_addr a6;
    return inet_pton(AF_INET6, addr.c_str(), &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
  }
  if (size_t colon = host.find(':'); colon != absl::string_view::npos) {
    if (!ValidPort(host.substr(colon + 1))) return false;
    host = host.substr(0, colon);
  }
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  std::string addr(host);
  struct in_addr a4;
  return inet_pton(AF_INET, addr.c_str(), &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

bool MayUseCredentials(const Credentials& creds, absl::string_view registry_domain,
                       absl::string_view endpoint_host, bool mirror) {
  if (creds.empty()) return false;
  if (creds.server_address.empty()) return !mirror;
  std::string want = RegistryOf(creds.server_address);
  if (want == absl::AsciiStrToLower(endpoint_host)) return true;
  return !mirror && want == absl::AsciiStrToLower(registry_domain);
}

bool MaySendCredentialsToRealm(const Credentials& creds, absl::string_view realm_url,
                               absl::string_view endpoint_host, bool realm_host_insecure) {
  std::string realm_host = UrlHost(realm_url);
  bool https = absl::StartsWithIgnoreCase(realm_url, "https://");
  if (!https && !IsLoopbackHost(realm_host) && !realm_host_insecure) return false;
  if (creds.server_address.empty() && !https &&
      realm_host != absl::AsciiStrToLower(endpoint_host)) {
    return false;
  }
  return true;
}

}  // namespace berth::registry
