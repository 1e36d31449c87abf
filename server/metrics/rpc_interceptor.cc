// Interception points: the start of a call (initial metadata in) and its status going out.
#include "server/metrics/rpc_interceptor.h"

#include <chrono>
#include <string>

namespace berth::metrics {
namespace {

// "/runtime.v1.RuntimeService/RunPodSandbox" -> "RunPodSandbox".
std::string ShortMethod(const char* full) {
  std::string m = full ? full : "";
  size_t slash = m.rfind('/');
  return slash == std::string::npos ? m : m.substr(slash + 1);
}

// The names grpc-go's codes.Code.String() gives, so dashboards built for other runtimes match.
const char* CodeName(grpc::StatusCode c) {
  switch (c) {
    case grpc::OK:
      return "OK";
    case grpc::CANCELLED:
      return "Canceled";
    case grpc::UNKNOWN:
      return "Unknown";
    case grpc::INVALID_ARGUMENT:
      return "InvalidArgument";
    case grpc::DEADLINE_EXCEEDED:
      return "DeadlineExceeded";
    case grpc::NOT_FOUND:
      return "NotFound";
    case grpc::ALREADY_EXISTS:
      return "AlreadyExists";
    case grpc::PERMISSION_DENIED:
      return "PermissionDenied";
    case grpc::RESOURCE_EXHAUSTED:
      return "ResourceExhausted";
    case grpc::FAILED_PRECONDITION:
      return "FailedPrecondition";
    case grpc::ABORTED:
      return "Aborted";
    case grpc::OUT_OF_RANGE:
      return "OutOfRange";
    case grpc::UNIMPLEMENTED:
      return "Unimplemented";
    case grpc::INTERNAL:
      return "Internal";
    case grpc::UNAVAILABLE:
      return "Unavailable";
    case grpc::DATA_LOSS:
      return "DataLoss";
    case grpc::UNAUTHENTICATED:
      return "Unauthenticated";
    default:
      return "Unknown";
  }
}

class RpcMetrics final : public grpc::experimental::Interceptor {
 public:
  RpcMetrics(Registry* r, std::string method) : registry_(r), method_(std::move(method)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    using H = grpc::experimental::InterceptionHookPoints;
    if (m->QueryInterceptionHookPoint(H::POST_RECV_INITIAL_METADATA)) {
      start_ = std::chrono::steady_clock::now();
    }
    if (m->QueryInterceptionHookPoint(H::PRE_SEND_STATUS)) {
      grpc::Status st = m->GetSendStatus();
      double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      registry_->Add(kRpcTotal, {method_, CodeName(st.error_code())});
      registry_->Observe(kRpcSeconds, {method_}, secs);
    }
    m->Proceed();
  }

 private:
  Registry* registry_;
  std::string method_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

class Factory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit Factory(Registry* r) : registry_(r) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    // gRPC takes ownership of the interceptor it asks for.
    return std::make_unique<RpcMetrics>(registry_, ShortMethod(info->method())).release();
  }

 private:
  Registry* registry_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> RpcMetricsInterceptorFactory(
    Registry* registry) {
  registry->DeclareCounter(kRpcTotal, "CRI calls served, by method and gRPC code.",
                           {"method", "code"});
  registry->DeclareHistogram(
      kRpcSeconds, "Time to serve a CRI call, by method.", {"method"},
      {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60});
  return std::make_unique<Factory>(registry);
}

}  // namespace berth::metrics
