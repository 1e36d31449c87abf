// StartThread's logging and its failure injection for tests.
#include "server/streaming/threads.h"

#include <atomic>

#include "glog/logging.h"

namespace berth::streaming {
namespace {
std::atomic<int> injected_failures{0};
}  // namespace

namespace threads_internal {

bool TakeInjectedFailure() {
  int n = injected_failures.load();
  while (n > 0) {
    if (injected_failures.compare_exchange_weak(n, n - 1)) return true;
  }
  return false;
}

void LogStartFailure(const std::exception& e) {
  LOG(WARNING) << "streaming: cannot start a thread: " << e.what();
}

void LogEscaped(const std::exception& e) {
  LOG(ERROR) << "streaming: a session thread ended with an exception: " << e.what();
}

}  // namespace threads_internal

void FailThreadStartsForTest(int n) { injected_failures.store(n); }

}  // namespace berth::streaming
