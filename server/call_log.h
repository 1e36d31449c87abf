// One log line for every failed CRI call: the method, the objects it named and the gRPC code,
// as containerd's instrumented service does, so a failure kubelet retries is seen once per try.
#ifndef BERTH_SERVER_CALL_LOG_H_
#define BERTH_SERVER_CALL_LOG_H_

#include <memory>
#include <string>

#include "google/protobuf/message.h"
#include "grpcpp/support/server_interceptor.h"

namespace berth::server {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> CallLogInterceptorFactory();

// "container_id=3f2a… pod_sandbox_id=…": the ids, names and image a CRI request names, for logs.
std::string DescribeRequest(const google::protobuf::Message& request);

}  // namespace berth::server

#endif  // BERTH_SERVER_CALL_LOG_H_
