// Which hosts a pull trusts: with plain HTTP and unverified TLS (loopback only, unless configured
// insecure), and with the pull's credentials (the registry they were given for, never a stranger).
#ifndef BERTH_STORAGE_REGISTRY_TRUST_H_
#define BERTH_STORAGE_REGISTRY_TRUST_H_

#include "absl/strings/string_view.h"
#include "storage/registry/config.h"

namespace berth::registry {

// "host" or "host:port" naming this machine: an IPv4 literal in 127.0.0.0/8, [::1] or
// localhost. Anything that needs DNS to get there ("127.evil.example") is not.
bool IsLoopbackHost(absl::string_view host);

// Whether the credentials of a pull of an image on `registry_domain` ("docker.io",
// "my.reg:5000") may be shown to `endpoint_host` (a mirror when `mirror`, else the registry
// itself). Without server_address they belong to the image's own registry only; with it, to that
// host (a mirror included when it is that host).
bool MayUseCredentials(const Credentials& creds, absl::string_view registry_domain,
                       absl::string_view endpoint_host, bool mirror);

// Whether credentials an endpoint may use may also go to the token realm it named. Over HTTPS,
// yes; over plain HTTP only to a loopback host or one configured insecure (`realm_host_insecure`),
// and, without server_address, only when the realm is the endpoint's own host.
bool MaySendCredentialsToRealm(const Credentials& creds, absl::string_view realm_url,
                               absl::string_view endpoint_host, bool realm_host_insecure);

}  // namespace berth::registry

#endif  // BERTH_STORAGE_REGISTRY_TRUST_H_
