// libFuzzer target: image references, registry host literals and WWW-Authenticate challenges
// (strings kubelet and registries hand berth) parse without crashing, and a parsed reference
// prints back to a reference that parses to itself.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "storage/registry/auth.h"
#include "storage/registry/http.h"
#include "storage/registry/reference.h"
#include "storage/registry/trust.h"

namespace {

void Check(bool ok) {
  if (!ok) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace berth::registry;
  absl::string_view in(reinterpret_cast<const char*>(data), size);

  absl::StatusOr<Reference> r = ParseReference(in);
  if (r.ok()) {
    Check(!r->domain.empty() && !r->repository.empty());
    Check(!r->tag.empty() || !r->digest.empty());
    std::string printed = r->String();
    absl::StatusOr<Reference> again = ParseReference(printed);
    Check(again.ok());
    Check(again->domain == r->domain && again->repository == r->repository &&
          again->tag == r->tag && again->digest == r->digest);
    Check(again->String() == printed);
    (void)IsLoopbackHost(r->domain);
  }

  (void)IsLoopbackHost(in);
  std::string host = UrlHost(in);
  // A host curl parsed out of a URL is never more trusted than the URL's text says.
  if (IsLoopbackHost(host)) Check(!host.empty());

  absl::StatusOr<Challenge> c = ParseChallenge(in);
  if (c.ok()) Check(!c->scheme.empty());
  Credentials creds;
  (void)DecodeAuthField(in, &creds);
  return 0;
}
