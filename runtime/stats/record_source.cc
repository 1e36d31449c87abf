// RecordSource adapters: the engine's index, or fixed records shared by every copy of the source.
#include "runtime/stats/record_source.h"

#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace berth::runtime::stats {
namespace {

template <typename View>
absl::StatusOr<View> FindByPrefix(const std::vector<View>& views, const std::string& id,
                                  const std::function<const std::string&(const View&)>& id_of,
                                  const char* kind) {
  View found;
  for (const View& v : views) {
    const std::string& vid = id_of(v);
    if (vid == id) return v;
    if (!id.empty() && absl::StartsWith(vid, id)) {
      if (found) {
        return absl::InvalidArgumentError(absl::StrCat(kind, " id prefix \"", id, "\" is ambiguous"));
      }
      found = v;
    }
  }
  if (!found) return absl::NotFoundError(absl::StrCat(kind, " \"", id, "\" not found"));
  return found;
}

}  // namespace

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
    std::vector<ContainerView> all;
    std::vector<ContainerView> apps;
    std::vector<SandboxView> sandboxes;
  };
  auto r = std::make_shared<Records>();
  for (auto& c : containers) {
    auto v = std::make_shared<const berth::v1::Container>(std::move(c));
    r->all.push_back(v);
    if (!v->config().infra()) r->apps.push_back(v);
  }
  for (auto& s : sandboxes) {
    r->sandboxes.push_back(std::make_shared<const berth::v1::Sandbox>(std::move(s)));
  }
  return RecordSource{
      .list_containers = [r] { return r->apps; },
      .list_sandboxes = [r] { return r->sandboxes; },
      .get_container =
          [r](const std::string& id) {
            return FindByPrefix<ContainerView>(
                r->all, id, [](const ContainerView& v) -> const std::string& { return v->config().id(); },
                "container");
          },
      .get_sandbox =
          [r](const std::string& id) {
            return FindByPrefix<SandboxView>(
                r->sandboxes, id, [](const SandboxView& v) -> const std::string& { return v->id(); },
                "pod sandbox");
          },
  };
}

}  // namespace berth::runtime::stats
