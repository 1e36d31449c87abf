// Name reservations: one creation per kubelet name; a retry of the same request shares its outcome.
#include "runtime/engine_internal.h"

namespace berth::engine {

absl::StatusOr<std::shared_ptr<Engine::Reservation>> Engine::Reserve(
    absl::flat_hash_map<std::string, std::shared_ptr<Reservation>>* table, const std::string& name,
    const std::string& request, std::string* existing_id) {
  for (;;) {
    std::shared_ptr<Reservation> other;
    {
      absl::MutexLock l(&names_mu_);
      auto it = table->find(name);
      if (it == table->end()) {
        auto r = std::make_shared<Reservation>();
        r->request = request;
        (*table)[name] = r;
        return r;
      }
      other = it->second;
    }
    // Another request holds the name: a retry of the same request waits for it and shares its
    // outcome, as kubelet retries a RunPodSandbox/CreateContainer whose deadline passed.
    if (other->request != request) {
      return absl::AlreadyExistsError(
          absl::StrCat("name \"", name, "\" is in use by ",
                       other->id.empty() ? "a request in progress" : other->id,
                       " with a different configuration"));
    }
    other->done.WaitForNotification();
    if (other->status.ok() && !other->id.empty()) {
      *existing_id = other->id;
      return std::shared_ptr<Reservation>();
    }
    // The first attempt failed and released the name: try again.
  }
}

void Engine::Release(absl::flat_hash_map<std::string, std::shared_ptr<Reservation>>* table,
                     const std::string& name, const std::shared_ptr<Reservation>& r,
                     const absl::StatusOr<std::string>& result) {
  absl::MutexLock l(&names_mu_);
  r->status = result.status();
  if (result.ok()) {
    r->id = *result;
  } else {
    auto it = table->find(name);
    if (it != table->end() && it->second == r) table->erase(it);
  }
  r->done.Notify();
}

}  // namespace berth::engine
