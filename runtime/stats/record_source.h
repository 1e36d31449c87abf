// Where the stats collector finds container and pod records: the engine in berthd, fixed record
// lists in tests and benchmarks.
#ifndef BERTH_RUNTIME_STATS_RECORD_SOURCE_H_
#define BERTH_RUNTIME_STATS_RECORD_SOURCE_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/berth/v1/records.pb.h"
#include "runtime/engine.h"

namespace berth::engine::stats {

// All four must be set. They are called from request threads and the refresh thread at once.
struct RecordSource {
  std::function<std::vector<ContainerView>()> list_containers;  // app containers, never infra
  std::function<std::vector<SandboxView>()> list_sandboxes;
  // By full id or unique prefix; finds infra containers too. NotFound naming the id.
  std::function<absl::StatusOr<ContainerView>(const std::string&)> get_container;
  std::function<absl::StatusOr<SandboxView>(const std::string&)> get_sandbox;
};

// The engine's in-memory index (lists never touch disk or runc). `engine` must outlive the source.
RecordSource EngineRecords(Engine* engine);

// A fixed set of records; `containers` may include infra containers (config().infra()), which
// list_containers leaves out as the engine does. Lookups take a full id or a unique prefix.
RecordSource FixedRecords(std::vector<berth::v1::Container> containers,
                          std::vector<berth::v1::Sandbox> sandboxes);

}  // namespace berth::engine::stats

#endif  // BERTH_RUNTIME_STATS_RECORD_SOURCE_H_
