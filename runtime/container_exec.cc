// ExecSync, UpdateContainerResources and ReopenContainerLog on a live container.
#include "runtime/engine_internal.h"

namespace berth::engine {

absl::StatusOr<ExecSyncResult> Engine::ExecSync(const std::string& id,
                                                const std::vector<std::string>& cmd,
                                                int64_t timeout_seconds) {
  if (cmd.empty()) return absl::InvalidArgumentError("cmd is required");
  if (timeout_seconds < 0) return absl::InvalidArgumentError("timeout must not be negative");
  absl::StatusOr<ContainerView> c = GetContainer(id);
  if (!c.ok()) return c.status();
  if (absl::Status st = EnsureState(**c, Operation::kExec); !st.ok()) return st;
  json spec = json::parse((*c)->config().oci_spec(), nullptr, false);
  if (spec.is_discarded()) return absl::DataLossError("stored OCI spec does not parse");
  json process = ExecProcess(spec, cmd, false);
  absl::StatusOr<oci::ExecResult> r =
      RuntimeOf((*c)->config())
          ->ExecSync((*c)->config().id(), DumpJson(process),
                     timeout_seconds > 0 ? absl::Seconds(timeout_seconds) : absl::ZeroDuration(),
                     options_.exec_sync_max_output);
  if (!r.ok()) return r.status();
  ExecSyncResult out;
  out.exit_code = r->exit_code;
  out.stdout_data = std::move(r->stdout_data);
  out.stderr_data = std::move(r->stderr_data);
  out.timed_out = r->timed_out;
  return out;
}

absl::Status Engine::UpdateContainerResources(const std::string& id,
                                              const cri::LinuxContainerResources& resources) {
  absl::Status err;
  std::shared_ptr<ContainerObj> c = FindContainerObj(id, &err);
  if (!c) return err;
  absl::MutexLock l(&c->mu);
  Container rec = c->rec;
  if (absl::Status st = EnsureState(rec, Operation::kUpdate); !st.ok()) return st;
  if (absl::Status st =
          RuntimeOf(rec.config())->Update(rec.config().id(), DumpJson(ResourcesToOci(resources)));
      !st.ok()) {
    return st;
  }
  *rec.mutable_state()->mutable_resources() = resources;
  return Update(c.get(), std::move(rec));
}

absl::Status Engine::ReopenContainerLog(const std::string& id) {
  absl::StatusOr<ContainerView> c = GetContainer(id);
  if (!c.ok()) return c.status();
  if (absl::Status st = EnsureState(**c, Operation::kReopenLog); !st.ok()) return st;
  // conmon's control message 2 reopens its log files; kubelet expects the new file to exist
  // when this call returns, so wait (bounded) for conmon to act.
  if (absl::Status st =
          RuntimeOf((*c)->config())->WriteControl((*c)->config().bundle_dir(), "2 0 0\n");
      !st.ok()) {
    return st;
  }
  const std::string& log = (*c)->config().log_path();
  if (log.empty()) return absl::OkStatus();
  if (absl::Status st = WaitForPath(log, 5000); !st.ok()) {
    if (absl::IsDeadlineExceeded(st)) {
      return absl::DeadlineExceededError(absl::StrCat("conmon did not reopen ", log));
    }
    return st;
  }
  return absl::OkStatus();
}

}  // namespace berth::engine
