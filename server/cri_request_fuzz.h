// The input format of //server:cri_request_fuzz, shared with its seed generator
// (cri_request_fuzz_seeds.cc).
//
// Byte 0: the CRI method (low 6 bits, an index into CriFuzzMethod) and the faults injected for the
// call (high 2 bits, CriFuzzFaults); the remaining bytes: that method's request message,
// serialized. In the request, a string field that starts with "$POD" or "$CTR" has that prefix
// replaced by the id of the standing pod or container (the fuzz target makes them at start, with
// random ids, so this is how a corpus names them).
#ifndef BERTH_SERVER_CRI_REQUEST_FUZZ_H_
#define BERTH_SERVER_CRI_REQUEST_FUZZ_H_

#include <cstdint>

namespace berth::server::fuzz {

// Committed seeds name methods by these numbers: only ever append.
enum CriFuzzMethod : uint8_t {
  kVersion = 0,
  kStatus,
  kUpdateRuntimeConfig,
  kRuntimeConfig,
  kRunPodSandbox,
  kStopPodSandbox,
  kRemovePodSandbox,
  kPodSandboxStatus,
  kListPodSandbox,
  kUpdatePodSandboxResources,
  kCreateContainer,
  kStartContainer,
  kStopContainer,
  kRemoveContainer,
  kListContainers,
  kContainerStatus,
  kUpdateContainerResources,
  kReopenContainerLog,
  kExecSync,
  kExec,
  kAttach,
  kPortForward,
  kContainerStats,
  kListContainerStats,
  kPodSandboxStats,
  kListPodSandboxStats,
  kListMetricDescriptors,
  kListPodSandboxMetrics,
  kCheckpointContainer,
  kListImages,
  kImageStatus,
  kRemoveImage,
  kImageFsInfo,
  kMethodCount,
};

enum CriFuzzFaults : uint8_t {
  kNoFault = 0,
  kRuntimeFails = 1,  // the fake OCI runtime's next create, start, delete, update, exec and
                      // checkpoint each fail with INTERNAL (kill does not: see the .cc)
  kNetworkFails = 2,  // the fake network's next SetUp and TearDown fail with INTERNAL
};

inline constexpr uint8_t CriFuzzHeader(CriFuzzMethod method, uint8_t faults = kNoFault) {
  return static_cast<uint8_t>(method | (faults << 6));
}

}  // namespace berth::server::fuzz

#endif  // BERTH_SERVER_CRI_REQUEST_FUZZ_H_
