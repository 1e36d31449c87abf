// A gRPC server interceptor that counts every CRI call by method and code and times it.
#ifndef BERTH_SERVER_METRICS_RPC_INTERCEPTOR_H_
#define BERTH_SERVER_METRICS_RPC_INTERCEPTOR_H_

#include <memory>

#include "grpcpp/support/server_interceptor.h"
#include "server/metrics/registry.h"

namespace berth::metrics {

inline constexpr char kRpcTotal[] = "berth_cri_requests_total";
inline constexpr char kRpcSeconds[] = "berth_cri_request_duration_seconds";

// Declares the two families on `registry` and returns the factory to give ServerBuilder.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> RpcMetricsInterceptorFactory(
    Registry* registry);

}  // namespace berth::metrics

#endif  // BERTH_SERVER_METRICS_RPC_INTERCEPTOR_H_
