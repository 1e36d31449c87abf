// The one way out of the server: absl::Status to grpc::Status (one code to one code, messages
// kept), INVALID_ARGUMENT for a request that lacks a field, and streamed list answers written in
// bounded batches.
#ifndef BERTH_SERVER_GRPC_STATUS_H_
#define BERTH_SERVER_GRPC_STATUS_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "google/protobuf/message_lite.h"
#include "grpcpp/support/status.h"
#include "grpcpp/support/sync_stream.h"

namespace berth::server {

inline grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

inline grpc::Status InvalidArgument(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

// A streamed answer's message holds at most this many entries and, past the entry that crosses
// it, no more than about this many bytes: far below any client's receive limit (grpc-go's
// default is 4 MiB) even for containers with large annotations.
inline constexpr int kStreamBatchEntries = 100;
inline constexpr size_t kStreamBatchBytes = 1 << 20;

// Writes `items` to `writer` in batches: `add(item, &batch)` adds the entry for `item` to the
// message `batch` and returns it, or returns nullptr to leave the item out (a filter). A write
// that fails (the client went away) ends the call: CANCELLED, nothing more is written.
template <typename Response, typename Items, typename Add>
grpc::Status WriteInBatches(Items&& items, grpc::ServerWriterInterface<Response>* writer, Add add) {
  const grpc::Status cancelled(grpc::StatusCode::CANCELLED, "the client went away mid-stream");
  Response batch;
  int entries = 0;
  size_t bytes = 0;
  for (auto& item : items) {
    const google::protobuf::MessageLite* added = add(item, &batch);
    if (added == nullptr) continue;
    ++entries;
    bytes += added->ByteSizeLong();
    if (entries == kStreamBatchEntries || bytes >= kStreamBatchBytes) {
      if (!writer->Write(batch)) return cancelled;
      batch.Clear();
      entries = 0;
      bytes = 0;
    }
  }
  if (entries > 0 && !writer->Write(batch)) return cancelled;
  return grpc::Status::OK;
}

}  // namespace berth::server

#endif  // BERTH_SERVER_GRPC_STATUS_H_
