// The server's one conversion to gRPC statuses and its one writer of streamed answers: codes and
// messages kept, batches bounded by entries and bytes, filtered items left out, a failed write
// ending the call.
#include "server/grpc_status.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proto/runtime/v1/api.pb.h"

namespace berth::server {
namespace {

namespace cri = runtime::v1;

// Records what is written; fails every write from the `fail_from`th on (0-based).
class FakeWriter final : public grpc::ServerWriterInterface<cri::StreamContainersResponse> {
 public:
  explicit FakeWriter(int fail_from = -1) : fail_from_(fail_from) {}
  void SendInitialMetadata() override {}
  bool Write(const cri::StreamContainersResponse& msg, grpc::WriteOptions) override {
    ++attempts;
    if (fail_from_ >= 0 && attempts > fail_from_) return false;
    sizes.push_back(msg.containers_size());
    return true;
  }
  int attempts = 0;
  std::vector<int> sizes;

 private:
  int fail_from_;
};

std::vector<std::string> Ids(int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back("c" + std::to_string(i));
  return ids;
}

auto AddAll(const std::string& annotation = "") {
  return [annotation](const std::string& id, cri::StreamContainersResponse* batch) {
    cri::Container* c = batch->add_containers();
    c->set_id(id);
    if (!annotation.empty()) (*c->mutable_annotations())["a"] = annotation;
    return c;
  };
}

TEST(GrpcStatusTest, CodesAndMessagesAreKept) {
  EXPECT_TRUE(ToGrpc(absl::OkStatus()).ok());
  grpc::Status st = ToGrpc(absl::NotFoundError("container \"x\" not found"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "container \"x\" not found");
  EXPECT_EQ(ToGrpc(absl::FailedPreconditionError("")).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(InvalidArgument("config is required").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(GrpcStatusTest, BatchesHoldAtMostTheEntryBound) {
  FakeWriter w;
  ASSERT_TRUE(WriteInBatches(Ids(2 * kStreamBatchEntries + 7), &w, AddAll()).ok());
  EXPECT_EQ(w.sizes, (std::vector<int>{kStreamBatchEntries, kStreamBatchEntries, 7}));
  FakeWriter empty;
  ASSERT_TRUE(WriteInBatches(Ids(0), &empty, AddAll()).ok());
  EXPECT_EQ(empty.attempts, 0);
}

TEST(GrpcStatusTest, LargeEntriesMakeSmallerBatches) {
  FakeWriter w;
  // Each entry is a quarter of the byte bound: a batch ends with the entry that crosses it.
  ASSERT_TRUE(WriteInBatches(Ids(10), &w, AddAll(std::string(kStreamBatchBytes / 4, 'x'))).ok());
  EXPECT_EQ(w.sizes, (std::vector<int>{4, 4, 2}));
}

TEST(GrpcStatusTest, FilteredItemsAreLeftOut) {
  FakeWriter w;
  auto odd = [](const std::string& id,
                cri::StreamContainersResponse* batch) -> const cri::Container* {
    if ((id.back() - '0') % 2 == 0) return nullptr;
    cri::Container* c = batch->add_containers();
    c->set_id(id);
    return c;
  };
  ASSERT_TRUE(WriteInBatches(Ids(10), &w, odd).ok());
  EXPECT_EQ(w.sizes, (std::vector<int>{5}));
}

TEST(GrpcStatusTest, AFailedWriteEndsTheCall) {
  FakeWriter first(0);
  grpc::Status st = WriteInBatches(Ids(3 * kStreamBatchEntries), &first, AddAll());
  EXPECT_EQ(st.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(first.attempts, 1);  // nothing after the failed write
  FakeWriter last(1);            // the final, partial batch fails
  st = WriteInBatches(Ids(kStreamBatchEntries + 1), &last, AddAll());
  EXPECT_EQ(st.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(last.attempts, 2);
}

}  // namespace
}  // namespace berth::server
