// A small blocking HTTP client over libcurl that reuses connections across requests and threads.
#ifndef BERTH_STORAGE_REGISTRY_HTTP_H_
#define BERTH_STORAGE_REGISTRY_HTTP_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace berth::registry {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  bool skip_tls_verify = false;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // lowercase names, of the final response
  std::string body;                            // unless a sink took it
};

// Receives body bytes of a 2xx response; returning false aborts the transfer.
using BodySink = std::function<bool(absl::string_view)>;

class HttpClient {
 public:
  HttpClient(absl::Duration stall_timeout, absl::Duration connect_timeout);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Follows redirects. A transfer with no progress for the stall timeout fails with
  // DeadlineExceeded; connection failures are Unavailable. Bodies not given to `sink` are kept up
  // to `max_body` bytes (more is ResourceExhausted). The URL's credentials and headers are never
  // logged.
  absl::StatusOr<HttpResponse> Do(const HttpRequest& request, const BodySink& sink = nullptr,
                                  size_t max_body = 4 << 20);

 private:
  struct Pool;
  std::unique_ptr<Pool> pool_;
  absl::Duration stall_timeout_;
  absl::Duration connect_timeout_;
};

// "host:port" of an http(s) URL ("https://a.b:5000/x" -> "a.b:5000"; "a.b" without a port;
// empty when curl cannot parse it), lowercase.
std::string UrlHost(absl::string_view url);

}  // namespace berth::registry

#endif  // BERTH_STORAGE_REGISTRY_HTTP_H_
