// CreateContainer: record first, then rootfs, spec, bundle and runc create (or a restore).
#include "runtime/engine_internal.h"

namespace berth::engine {

// ---------------------------------------------------------------------------------------------
// Containers

absl::StatusOr<std::string> Engine::CreateContainer(const std::string& sandbox_id,
                                                    const cri::ContainerConfig& config) {
  if (!config.has_metadata() || config.metadata().name().empty()) {
    return absl::InvalidArgumentError("config.metadata.name is required");
  }
  if (config.image().image().empty())
    return absl::InvalidArgumentError("config.image.image is required");
  absl::StatusOr<SandboxView> sb = GetSandbox(sandbox_id);
  if (!sb.ok()) return sb.status();
  // CRI-O's restore: the image names a checkpoint archive, checked before anything is made.
  std::optional<CheckpointArchive> restore;
  if (IsCheckpointArchiveRef(config.image().image())) {
    absl::StatusOr<CheckpointArchive> archive = ReadCheckpointArchive(config.image().image());
    if (!archive.ok()) return archive.status();
    // The request must bring every mount the checkpointed process had (CRIU expects them).
    if (absl::Status st = CheckRestoreMounts(archive->container.config().cri(), config); !st.ok()) {
      return st;
    }
    if (absl::Status st = criu_.Usable(); !st.ok()) return st;
    restore = std::move(*archive);
  }
  const std::string name = ContainerName(config.metadata(), (*sb)->config().metadata());
  std::string existing;
  absl::StatusOr<std::shared_ptr<Reservation>> r =
      Reserve(&container_names_, name, Deterministic(config), &existing);
  if (!r.ok()) return r.status();
  if (!*r) return existing;
  absl::StatusOr<std::string> id = absl::InternalError("container creation did not finish");
  // Released however this returns: a name left held would make every retry wait forever.
  absl::Cleanup release = [&] { Release(&container_names_, name, *r, id); };
  id = NoThrow(absl::StrCat("creating container ", name), [&] {
    return restore ? DoCreateContainer(
                         (*sb)->id(), MergeRestoreConfig(restore->container.config().cri(), config),
                         name, &*restore)
                   : DoCreateContainer((*sb)->id(), config, name);
  });
  // Before the return: returning `id` moves it, and the release must see the real outcome.
  std::move(release).Invoke();
  return id;
}

absl::StatusOr<std::string> Engine::DoCreateContainer(const std::string& sandbox_id,
                                                      const cri::ContainerConfig& config,
                                                      const std::string& name,
                                                      const CheckpointArchive* restore) {
  absl::Status err;
  std::shared_ptr<SandboxObj> sobj = FindSandboxObj(sandbox_id, &err);
  if (!sobj) return err;
  Sandbox sandbox;
  {
    absl::MutexLock l(&sobj->mu);
    sandbox = sobj->rec;
  }
  if (absl::Status st = ValidateContainerUserNamespace(
          config.linux().security_context().namespace_options(),
          sandbox.config().linux().security_context().namespace_options());
      !st.ok()) {
    return st;
  }
  if (absl::Status st = EnsureState(sandbox, PodOperation::kCreateContainer); !st.ok()) return st;
  pid_t infra_pid = 0;
  {
    absl::MutexLock l(&index_mu_);
    auto it = container_views_.find(sandbox.infra_container_id());
    if (it != container_views_.end() &&
        it->second->state().status() == berth::v1::CONTAINER_STATUS_RUNNING) {
      infra_pid = it->second->state().pid();
    }
  }
  if (infra_pid == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the infra container of pod sandbox \"", sandbox_id, "\" is not running"));
  }
  if (images_ == nullptr) return absl::FailedPreconditionError("berth has no image store");
  // A restore needs the very image the checkpoint ran on, whatever its tag names now.
  absl::StatusOr<berth::v1::Image> image = images_->ResolveImage(
      restore ? restore->container.config().image_id() : config.image().image());
  if (!image.ok()) {
    if (absl::IsNotFound(image.status())) {
      return absl::NotFoundError(
          absl::StrCat("image \"", config.image().image(), "\" is not present: pull it first"));
    }
    return image.status();
  }

  const std::string id = NewId();
  Container rec;
  auto* cc = rec.mutable_config();
  cc->set_id(id);
  cc->set_name(name);
  cc->set_sandbox_id(sandbox_id);
  cc->set_runtime_handler(sandbox.runtime_handler());
  *cc->mutable_cri() = config;
  cc->set_image_id(image->id());
  cc->set_image_ref(image->repo_digests_size() > 0 ? image->repo_digests(0) : image->id());
  cc->set_image_name(config.image().image());
  cc->set_created_at_ns(NowNs());
  cc->set_bundle_dir(BundleDir(id));
  cc->set_rootfs(absl::StrCat(BundleDir(id), "/rootfs"));
  cc->set_overlay_rootfs(true);
  // KEP-4960: the request's stop signal, else the image's STOPSIGNAL, else SIGTERM. An image
  // signal berth cannot read is an error now, not a surprise SIGTERM at the pod's deletion.
  if (config.stop_signal() != cri::SIGNAL_RUNTIME_DEFAULT) {
    int sig = FromCriSignal(config.stop_signal());
    if (sig == 0) {
      return absl::InvalidArgumentError(absl::StrCat("config.stop_signal ", config.stop_signal(),
                                                     " is not a signal berth knows"));
    }
    cc->set_stop_signal(SignalName(sig));
  } else if (!image->config().stop_signal().empty()) {
    absl::StatusOr<int> sig = ParseSignal(image->config().stop_signal());
    if (!sig.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("image \"", config.image().image(), "\" has STOPSIGNAL \"",
                       image->config().stop_signal(), "\", which is not a signal"));
    }
    cc->set_stop_signal(SignalName(*sig));
  } else {
    cc->set_stop_signal("SIGTERM");
  }
  if (!sandbox.config().log_directory().empty() && !config.log_path().empty()) {
    absl::StatusOr<std::string> log =
        LogPathInside(sandbox.config().log_directory(), config.log_path());
    if (!log.ok()) return log.status();
    cc->set_log_path(*log);
  }
  if (restore != nullptr) {
    auto* from = cc->mutable_restore();
    from->set_archive(restore->path);
    from->set_checkpoint_dir(absl::StrCat(cc->bundle_dir(), "/restore/", kCheckpointImagesDir));
    from->set_source_id(restore->container.config().id());
    from->set_checkpointed_at_ns(restore->checkpointed_at_ns);
  }
  auto obj = std::make_shared<ContainerObj>();
  absl::MutexLock lock(&obj->mu);
  // Saved before anything is made, so a crash leaves a record that recovery cleans up. Not
  // fsynced: a Configured record only guides cleanup after a berthd crash; after a power loss its
  // mounts and bundle are gone with the tmpfs anyway. (Lists do not show Configured containers.)
  if (absl::Status st = Transition(obj.get(), Operation::kConfigure, rec, {.durable = false});
      !st.ok()) {
    return st;
  }
  {
    absl::MutexLock l(&index_mu_);
    containers_[id] = obj;
  }
  bool ok = false;
  absl::Cleanup undo = [&] {
    if (ok) return;
    // Runs as this function returns, inside the MutexLock above (the analysis cannot see that).
    obj->mu.AssertHeld();
    if (absl::Status st = CleanupContainer(obj); !st.ok()) {
      LOG(ERROR) << "undoing failed container " << id << ": " << st;
    }
  };

  if (absl::Status st = MakeDirs(cc->bundle_dir(), 0700); !st.ok()) return st;
  if (absl::Status st = MakeDirs(cc->rootfs(), 0755); !st.ok()) return st;
  if (restore != nullptr) {
    if (!sandbox.userns_path().empty()) {
      // Its files and CRIU images carry the host IDs of the checkpointed container's namespace.
      return absl::FailedPreconditionError(absl::StrCat(
          "pod sandbox \"", sandbox_id,
          "\" has its own user namespace: berth restores checkpoints only into pods without one"));
    }
    // The CRIU images, and the checkpointed writable layer into the new one before it is mounted.
    const std::string unpacked = absl::StrCat(cc->bundle_dir(), "/restore");
    if (absl::Status st = MakeDirs(unpacked, 0700); !st.ok()) return st;
    if (absl::Status st = UnpackCheckpointArchive(*restore, unpacked); !st.ok()) return st;
    absl::StatusOr<std::string> upper = images_->WritableLayerDir(id);
    if (!upper.ok()) return upper.status();
    if (absl::Status st = UnpackRootfsDiff(*restore, unpacked, *upper); !st.ok()) return st;
  }
  // A pod in a user namespace: runc reaches the rootfs by path from inside the namespace, and the
  // image's files must show as owned by the namespace's IDs.
  UniqueFd userns_fd;
  RootfsIdmap idmap;
  if (!sandbox.userns_path().empty()) {
    absl::StatusOr<HostRoot> root = HostRootOf(sandbox.uid_mappings(), sandbox.gid_mappings());
    if (!root.ok()) return root.status();
    // The bundle stays private (0700): its owner becomes the pod's root, not everyone.
    if (chown(cc->bundle_dir().c_str(), root->uid, root->gid) != 0) {
      return Errno(absl::StrCat("chown ", cc->bundle_dir()));
    }
    if (absl::Status st = CheckReachableFromUserNamespace(cc->rootfs(), *root); !st.ok()) return st;
    absl::StatusOr<UniqueFd> fd = OpenUserNamespace(sandbox.userns_path());
    if (!fd.ok()) return fd.status();
    userns_fd = std::move(*fd);
    idmap = RootfsIdmap{userns_fd.get(), root->uid, root->gid};
  }
  if (absl::Status st =
          images_->MountRootfs(id, image->id(), cc->rootfs(), userns_fd.valid() ? &idmap : nullptr);
      !st.ok()) {
    return st;
  }
  if (!cc->log_path().empty()) {
    std::string dir = cc->log_path().substr(0, cc->log_path().rfind('/'));
    if (absl::Status st = MakeDirs(dir, 0755); !st.ok()) return st;
  }

  PodContext pod = PodContextOf(sandbox);
  pod.infra_pid = infra_pid;
  absl::StatusOr<std::string> cgroups_path = CgroupsPath(sandbox.cgroup_parent(), id);
  if (!cgroups_path.ok()) return cgroups_path.status();
  SpecOptions so{*cgroups_path, oom_floor_, options_.seccomp_default_when_empty};
  cri::ContainerConfig effective = config;
  // Image volumes: each mounted read-only in the bundle and bound from there.
  if (absl::Status st =
          PrepareImageVolumes(images_, id, cc->bundle_dir() + "/image-volumes", &effective);
      !st.ok()) {
    return st;
  }
  auto* cnso = effective.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  if (pod.host_pid) cnso->set_pid(cri::NODE);
  if (cnso->pid() == cri::TARGET) {
    absl::StatusOr<ContainerView> target = GetContainer(cnso->target_id());
    if (!target.ok() || (*target)->state().status() != berth::v1::CONTAINER_STATUS_RUNNING) {
      return absl::NotFoundError(
          absl::StrCat("linux.security_context.namespace_options.target_id \"", cnso->target_id(),
                       "\" is not a running container"));
    }
    pod.infra_pid = (*target)->state().pid();  // join the target's PID namespace
    cnso->set_pid(cri::POD);
  }
  absl::StatusOr<json> spec =
      BuildContainerSpec(pod, effective, image->config(), id, cc->rootfs(), so);
  if (!spec.ok()) return spec.status();
  if (cnso->pid() == cri::POD && pod.infra_pid != infra_pid) {
    // Network/IPC/UTS still come from the pod's infra container.
    for (auto& ns : (*spec)["linux"]["namespaces"]) {
      std::string type = ns["type"];
      if (type == "ipc" || type == "uts" || (type == "network" && pod.netns_path.empty())) {
        std::string which = type == "network" ? "net" : type;
        ns["path"] = absl::StrCat("/proc/", infra_pid, "/ns/", which);
      }
    }
  }
  // CDI devices: the request's CDI_devices, then the "cdi.k8s.io/" annotations (containerd's
  // order), edited into the spec before the hooks, which see the container as it will run.
  {
    std::vector<std::string> requested;
    for (const auto& d : config.cdi_devices()) requested.push_back(d.name());
    absl::StatusOr<std::vector<std::string>> devices = cdi::CollectDeviceNames(
        requested, std::map<std::string, std::string>(config.annotations().begin(),
                                                      config.annotations().end()));
    if (!devices.ok()) return devices.status();
    if (absl::Status st = cdi_.InjectDevices(*devices, &*spec); !st.ok()) return st;
  }
  if (absl::Status st = ApplyHooks(hooks_, &*spec); !st.ok()) return st;
  // Volumes with ID mappings are bound from idmapped copies, attached only until runc create has
  // made its own mounts of them (this object detaches them when the creation is done).
  absl::StatusOr<StagedMounts> staged_mounts = StageIdmappedMounts(
      effective, sandbox.userns_path(), sandbox.uid_mappings(), sandbox.gid_mappings(),
      absl::StrCat(options_.state_dir, "/idmap/", id), &*spec);
  if (!staged_mounts.ok()) return staged_mounts.status();
  cc->set_oci_spec(DumpJson(*spec));
  // What the process really runs as, after the image's files and the policy (ContainerStatus.user).
  if (const json& user = (*spec)["process"]["user"]; user.is_object()) {
    auto* u = cc->mutable_user();
    u->set_uid(user.value("uid", 0));
    u->set_gid(user.value("gid", 0));
    u->add_supplemental_groups(u->gid());
    for (const auto& g : user.value("additionalGids", json::array())) {
      if (g.is_number_unsigned() && g.get<int64_t>() != u->gid())
        u->add_supplemental_groups(g.get<int64_t>());
    }
  }
  {
    Container configured = obj->rec;
    *configured.mutable_config() = rec.config();
    if (absl::Status st = Update(obj.get(), std::move(configured), /*durable=*/false); !st.ok()) {
      return st;
    }
  }
  if (restore != nullptr) {
    // runc learns of it only at StartContainer, which restores it: Created without a process.
    if (absl::Status st = Transition(obj.get(), Operation::kCreate); !st.ok()) return st;
  } else if (absl::Status st = CreateInRuntime(obj.get()); !st.ok()) {
    return st;
  }
  ok = true;
  return id;
}

namespace {

// Writes the bundle's config.json and describes the container for conmon.
absl::StatusOr<oci::CreateRequest> PrepareBundle(const berth::v1::ContainerConfig& cc) {
  if (absl::Status st =
          WriteFileAtomic(absl::StrCat(cc.bundle_dir(), "/config.json"), cc.oci_spec(), 0600);
      !st.ok()) {
    return st;
  }
  oci::CreateRequest req;
  req.id = cc.id();
  req.name = cc.name();
  req.bundle = cc.bundle_dir();
  req.log_path = cc.log_path();
  req.terminal = cc.cri().tty();
  req.open_stdin = cc.cri().stdin();
  req.stdin_once = cc.cri().stdin_once();
  return req;
}

}  // namespace

absl::Status Engine::CreateInRuntime(ContainerObj* c) {
  Container rec = c->rec;
  const auto& cc = rec.config();
  if (absl::Status st = EnsureState(rec, Operation::kCreate); !st.ok()) return st;  // before runc
  if (absl::Status st = MakeDirs(cc.bundle_dir(), 0700); !st.ok()) return st;
  absl::StatusOr<oci::CreateRequest> req = PrepareBundle(cc);
  if (!req.ok()) return req.status();
  absl::StatusOr<oci::CreateResult> res = RuntimeOf(cc)->Create(*req);
  if (!res.ok()) return res.status();
  rec.mutable_state()->set_pid(res->pid);
  rec.mutable_state()->set_conmon_pid(res->conmon_pid);
  if (absl::Status st = Transition(c, Operation::kCreate, std::move(rec)); !st.ok()) return st;
  WatchMonitor(c->rec);
  return absl::OkStatus();
}

absl::Status Engine::RestoreInRuntime(ContainerObj* c) {
  Container rec = c->rec;
  const auto& cc = rec.config();
  absl::StatusOr<std::string> criu = criu_.Find();
  if (!criu.ok()) return criu.status();
  absl::StatusOr<oci::CreateRequest> req = PrepareBundle(cc);
  if (!req.ok()) return req.status();
  req->restore_image_path = cc.restore().checkpoint_dir();
  req->criu_path = *criu;
  absl::StatusOr<oci::CreateResult> res = RuntimeOf(cc)->Create(*req);
  if (!res.ok()) {
    std::string criu_errors = CriuLogErrors(absl::StrCat(cc.bundle_dir(), "/restore.log"));
    if (criu_errors.empty()) return res.status();
    return absl::InternalError(absl::StrCat(res.status().message(), " (CRIU: ", criu_errors, ")"));
  }
  // The memory pages are in the process now; on the state tmpfs they would only take room.
  if (absl::Status st = RemoveAll(cc.restore().checkpoint_dir()); !st.ok()) {
    LOG(WARNING) << "removing the CRIU images of restored container " << cc.id() << ": " << st;
  }
  auto* s = rec.mutable_state();
  s->set_pid(res->pid);
  s->set_conmon_pid(res->conmon_pid);
  s->set_started_at_ns(NowNs());
  if (absl::Status st = Transition(c, Operation::kStart, std::move(rec)); !st.ok()) return st;
  WatchMonitor(c->rec);
  return absl::OkStatus();
}

}  // namespace berth::engine
