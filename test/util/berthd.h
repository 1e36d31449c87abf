// A real berthd for integration tests: temporary dirs, its own socket, CRI stubs, clean stop.
#ifndef BERTH_TEST_UTIL_BERTHD_H_
#define BERTH_TEST_UTIL_BERTHD_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "proto/runtime/v1/api.grpc.pb.h"

namespace berth::test {

class Berthd {
 public:
  struct Options {
    std::string config_toml;  // written to <dir>/berth.toml and passed with --config
    std::vector<std::string> extra_args;
    // The binary, relative to the test's runfiles: server/berthd_crash_points for the
    // crash-point tests (the test must have it in its data).
    std::string binary = "server/berthd";
    std::vector<std::string> env;  // "K=V" added to berthd's environment
    // How often Start looks for the socket and asks Version (the restart benchmark times it).
    int poll_interval_ms = 20;
  };
  // Uses `dir` for root, state and socket; dir outlives restarts so state can be recovered.
  explicit Berthd(std::string dir);
  ~Berthd();  // stops berthd (SIGKILL if it does not stop on SIGTERM)

  absl::Status Start(const Options& options);
  absl::Status Start() { return Start(Options()); }
  // SIGTERM and wait; returns the exit status from waitpid.
  absl::StatusOr<int> Stop();
  // Waits for berthd to exit by itself; DeadlineExceeded if it is still running after `seconds`.
  absl::StatusOr<int> WaitForExit(int seconds);
  // SIGKILL, as a crash: containers keep running.
  void Kill();
  pid_t pid() const { return pid_; }
  // When the last Start spawned the process (after its directories and config were written).
  std::chrono::steady_clock::time_point spawned_at() const { return spawned_at_; }

  std::string socket() const { return dir_ + "/berth.sock"; }
  std::string root() const { return dir_ + "/root"; }
  std::string state_dir() const { return dir_ + "/run"; }
  std::string log() const;  // berthd's stderr so far

  runtime::v1::RuntimeService::Stub& runtime() { return *runtime_; }
  runtime::v1::ImageService::Stub& images() { return *images_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

 private:
  std::string dir_;
  pid_t pid_ = -1;
  std::chrono::steady_clock::time_point spawned_at_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<runtime::v1::RuntimeService::Stub> runtime_;
  std::unique_ptr<runtime::v1::ImageService::Stub> images_;
};

// A short deadline context for test RPCs.
std::unique_ptr<grpc::ClientContext> Ctx(int seconds = 60);

}  // namespace berth::test

#endif  // BERTH_TEST_UTIL_BERTHD_H_
