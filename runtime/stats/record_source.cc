// RecordSource adapters: the engine's index, or fixed records shared by every copy of the source.
#include "runtime/stats/record_source.h"

#include <memory>

#include "absl/container/flat_hash_map.h"
#include "runtime/record_index.h"

namespace berth::engine::stats {

RecordSource EngineRecords(Engine* engine) {
  return RecordSource{
      .list_containers = [engine] { return engine->ListContainers(); },
      .list_sandboxes = [engine] { return engine->ListSandboxes(); },
      .get_container = [engine](const std::string& id) { return engine->GetContainer(id); },
      .get_sandbox = [engine](const std::string& id) { return engine->GetSandbox(id); },
  };
}

RecordSource FixedRecords(std::vector<berth::v1::Container> containers,
                          std::vector<berth::v1::Sandbox> sandboxes) {
  struct Records {
    absl::flat_hash_map<std::string, ContainerView> by_id;
    std::vector<ContainerView> apps;
    absl::flat_hash_map<std::string, SandboxView> sandbox_by_id;
    std::vector<SandboxView> sandboxes;
  };
  auto r = std::make_shared<Records>();
  for (auto& c : containers) {
    auto v = std::make_shared<const berth::v1::Container>(std::move(c));
    r->by_id[v->config().id()] = v;
    if (!v->config().infra()) r->apps.push_back(v);
  }
  for (auto& s : sandboxes) {
    auto v = std::make_shared<const berth::v1::Sandbox>(std::move(s));
    r->sandbox_by_id[v->id()] = v;
    r->sandboxes.push_back(v);
  }
  return RecordSource{
      .list_containers = [r] { return r->apps; },
      .list_sandboxes = [r] { return r->sandboxes; },
      .get_container =
          [r](const std::string& id) {
            return LookUpByIdOrPrefix(r->by_id, id, "container", "container_id");
          },
      .get_sandbox =
          [r](const std::string& id) {
            return LookUpByIdOrPrefix(r->sandbox_by_id, id, "pod sandbox", "pod_sandbox_id");
          },
  };
}

}  // namespace berth::engine::stats
