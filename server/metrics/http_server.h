// Serves a Registry at GET /metrics over plain HTTP (meant for a loopback address).
#ifndef BERTH_SERVER_METRICS_HTTP_SERVER_H_
#define BERTH_SERVER_METRICS_HTTP_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/metrics/registry.h"

namespace berth::metrics {

class HttpServer {
 public:
  // address: "host:port"; port 0 picks a free one.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& address,
                                                           const Registry* registry);
  ~HttpServer();
  int port() const;

  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::metrics

#endif  // BERTH_SERVER_METRICS_HTTP_SERVER_H_
