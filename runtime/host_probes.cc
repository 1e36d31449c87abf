// What this host can do for pods, probed once when first asked and kept for the engine's life.
#include "runtime/engine_internal.h"
#include "util/mount.h"

namespace berth::engine {

absl::Status Engine::UserNamespacesUsable() {
  absl::MutexLock l(&probes_mu_);
  if (!userns_usable_.has_value()) {
    userns_usable_ = ProbeUserNamespaces(options_.root);
    if (userns_usable_->ok()) {
      LOG(INFO) << "pods may run in user namespaces (idmapped overlay layers work in "
                << options_.root << ")";
    } else {
      LOG(WARNING) << "pods cannot run in user namespaces here: " << *userns_usable_;
    }
  }
  return *userns_usable_;
}

bool Engine::RecursiveReadOnlyMounts() {
  absl::MutexLock l(&probes_mu_);
  if (!rro_usable_.has_value()) {
    // A real probe on berth's state directory: open_tree + mount_setattr(MOUNT_ATTR_RDONLY).
    absl::Status st = ProbeRecursiveReadOnly(options_.state_dir);
    if (!st.ok()) LOG(WARNING) << "recursive read-only mounts are not available: " << st;
    rro_usable_ = st.ok();
  }
  return *rro_usable_;
}

}  // namespace berth::engine
