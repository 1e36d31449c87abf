// Signal names as images (STOPSIGNAL), CRI (the Signal enum of KEP-4960) and kill(2) know them.
#ifndef BERTH_RUNTIME_SIGNALS_H_
#define BERTH_RUNTIME_SIGNALS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/runtime/v1/api.pb.h"

namespace berth::engine {

// "SIGTERM", "TERM", "15", "SIGRTMIN+3", "RTMAX-1" (case-insensitive) → the signal number, as
// Docker and containerd read an image's STOPSIGNAL. InvalidArgument for anything else.
absl::StatusOr<int> ParseSignal(absl::string_view name);
// The canonical name: "SIGTERM", "SIGRTMIN+3".
std::string SignalName(int signal);
// CRI's enum → a signal number; 0 for SIGNAL_RUNTIME_DEFAULT.
int FromCriSignal(runtime::v1::Signal signal);
// A signal number → CRI's enum (SIGNAL_RUNTIME_DEFAULT for a number CRI has no name for).
runtime::v1::Signal ToCriSignal(int signal);

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_SIGNALS_H_
