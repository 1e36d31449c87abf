// The stdio of an interactive session (exec, attach) between the streaming server and the engine.
#ifndef BERTH_RUNTIME_STREAM_IO_H_
#define BERTH_RUNTIME_STREAM_IO_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace berth::engine {

// Terminal size changes from a streaming client to a session. Thread-safe.
class ResizeQueue {
 public:
  void Push(uint16_t width, uint16_t height);
  void Close();
  // Waits up to `timeout` for a size; false when none came (check closed()).
  bool Pop(uint16_t* width, uint16_t* height, absl::Duration timeout);
  bool closed() const;

 private:
  mutable absl::Mutex mu_;
  std::deque<std::pair<uint16_t, uint16_t>> sizes_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// The stdio of an interactive session, as the streaming server hands it over. The engine never
// closes these descriptors; the caller owns them.
struct StreamIO {
  int in = -1;   // bytes for the process's stdin; -1: no stdin
  int out = -1;  // stdout (with a tty: everything); -1: discarded
  int err = -1;  // stderr; -1: discarded
  bool tty = false;
  std::shared_ptr<ResizeQueue> resize;  // may be null
};

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_STREAM_IO_H_
