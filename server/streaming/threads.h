// Starting threads without letting exceptions out: the streaming server refuses the work a
// thread was for (503, RST_STREAM, an error on the error stream) instead of aborting berthd when
// the system has no thread to give.
#ifndef BERTH_SERVER_STREAMING_THREADS_H_
#define BERTH_SERVER_STREAMING_THREADS_H_

#include <exception>
#include <system_error>
#include <thread>
#include <utility>

namespace berth::streaming {

namespace threads_internal {
bool TakeInjectedFailure();
void LogStartFailure(const std::exception& e);
void LogEscaped(const std::exception& e);
}  // namespace threads_internal

// Starts `f` on a new thread stored in *t; false, with *t untouched, when no thread could be
// made. An exception `f` lets out is logged on that thread rather than ending the process.
template <typename F>
bool StartThread(std::thread* t, F&& f) noexcept {
  try {
    if (threads_internal::TakeInjectedFailure()) {
      throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                              "injected by FailThreadStartsForTest");
    }
    *t = std::thread([f = std::forward<F>(f)]() mutable {
      try {
        f();
      } catch (const std::exception& e) {
        threads_internal::LogEscaped(e);
      }
    });
    return true;
  } catch (const std::exception& e) {  // std::system_error (EAGAIN), std::bad_alloc
    threads_internal::LogStartFailure(e);
    return false;
  }
}

// For tests: the next `n` StartThread calls fail as if the system were out of threads.
void FailThreadStartsForTest(int n);

}  // namespace berth::streaming

#endif  // BERTH_SERVER_STREAMING_THREADS_H_
