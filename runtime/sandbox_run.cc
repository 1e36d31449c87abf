// RunPodSandbox: the pod's shm, namespaces, network and infra container, undone on failure.
#include "runtime/engine_internal.h"

namespace berth::engine {

// ---------------------------------------------------------------------------------------------
// Sandboxes

absl::StatusOr<std::string> Engine::RunPodSandbox(const cri::PodSandboxConfig& config,
                                                  const std::string& runtime_handler) {
  const auto& md = config.metadata();
  if (!config.has_metadata()) return absl::InvalidArgumentError("config.metadata is required");
  if (md.name().empty()) return absl::InvalidArgumentError("config.metadata.name is required");
  if (md.namespace_().empty()) {
    return absl::InvalidArgumentError("config.metadata.namespace is required");
  }
  if (md.uid().empty()) return absl::InvalidArgumentError("config.metadata.uid is required");
  if (!runtime_handler.empty() && runtime_handler != "runc" &&
      !handlers_.contains(runtime_handler)) {
    std::vector<std::string> names = {"runc"};
    for (const auto& [handler, rt] : handlers_) names.push_back(handler);
    return absl::InvalidArgumentError(absl::StrCat("runtime_handler \"", runtime_handler,
                                                   "\" is not configured (berth has ",
                                                   absl::StrJoin(names, ", "), ")"));
  }
  const std::string name = SandboxName(md);
  std::string existing;
  absl::StatusOr<std::shared_ptr<Reservation>> r =
      Reserve(&sandbox_names_, name, Deterministic(config), &existing);
  if (!r.ok()) return r.status();
  if (!*r) return existing;
  absl::StatusOr<std::string> id = absl::InternalError("pod creation did not finish");
  // Released however this returns: a name left held would make every retry wait forever.
  absl::Cleanup release = [&] { Release(&sandbox_names_, name, *r, id); };
  id = NoThrow(absl::StrCat("creating pod ", name),
               [&] { return DoRunPodSandbox(config, runtime_handler, name); });
  // Before the return: returning `id` moves it, and the release must see the real outcome.
  std::move(release).Invoke();
  return id;
}

absl::StatusOr<std::string> Engine::DoRunPodSandbox(const cri::PodSandboxConfig& config,
                                                    const std::string& runtime_handler,
                                                    const std::string& name) {
  const std::string id = NewId();
  const auto& nso = config.linux().security_context().namespace_options();
  const bool host_network = nso.network() == cri::NODE;
  absl::StatusOr<bool> pod_userns = ValidatePodUserNamespace(nso);
  if (!pod_userns.ok()) return pod_userns.status();
  HostRoot userns_root;
  if (*pod_userns) {
    if (absl::Status st = UserNamespacesUsable(); !st.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("this node cannot run pods in a user namespace (", kUsernsField,
                       ".mode POD): ", st.message()));
    }
    absl::StatusOr<HostRoot> root =
        HostRootOf(nso.userns_options().uids(), nso.userns_options().gids());
    if (!root.ok()) return root.status();
    userns_root = *root;
    if (absl::Status st = CheckReachableFromUserNamespace(InfraRootfs(), userns_root); !st.ok()) {
      return st;
    }
  }

  Sandbox rec;
  rec.set_id(id);
  rec.set_name(name);
  *rec.mutable_config() = config;
  rec.set_runtime_handler(runtime_handler);
  rec.set_created_at_ns(NowNs());
  rec.set_dir(SandboxDir(id));
  rec.set_infra_container_id(id);
  rec.set_cgroup_parent(config.linux().cgroup_parent());
  if (*pod_userns) {
    rec.set_userns_path(absl::StrCat(rec.dir(), "/userns"));
    *rec.mutable_uid_mappings() = nso.userns_options().uids();
    *rec.mutable_gid_mappings() = nso.userns_options().gids();
  }
  // The pod's shm and netns are named in the first record, before they exist: a crash between
  // making one and saving the next record must not leave it behind (the teardown of a pod being
  // made unmounts and removes what its record names; absent is fine). Found by
  // //test/integration:crash_points_test at tmpfs:mount and netns:create.
  if (nso.ipc() != cri::NODE) rec.set_shm_path(absl::StrCat(rec.dir(), "/shm"));
  if (!host_network && network_ != nullptr) {
    rec.set_netns_path(*pod_userns ? absl::StrCat(rec.dir(), "/netns") : network_->NetnsPath(id));
  }

  auto obj = std::make_shared<SandboxObj>();
  absl::MutexLock lock(&obj->mu);
  {
    // Saved first, so a crash from here on is found and cleaned up on restart.
    if (absl::Status st = Transition(obj.get(), PodOperation::kCreate, rec); !st.ok()) return st;
    rec = obj->rec;
    absl::MutexLock l(&index_mu_);
    sandboxes_[id] = obj;
  }
  bool ok = false;
  absl::Cleanup undo = [&] {
    if (ok) return;
    // Everything RemovePodSandbox would release: the failure may come after the infra container
    // exists (CNI ADD runs beside its start).
    // Runs as this function returns, inside the MutexLock above (the analysis cannot see that).
    obj->mu.AssertHeld();
    Sandbox cur = obj->rec;
    if (absl::Status st = TearDownSandbox(obj.get(), &cur); !st.ok()) {
      LOG(ERROR) << "undoing failed pod " << id << ": " << st;
    }
    if (std::shared_ptr<ContainerObj> infra = InfraOf(cur)) {
      absl::MutexLock cl(&infra->mu);
      if (absl::Status st = CleanupContainer(infra); !st.ok()) {
        LOG(ERROR) << "undoing failed pod " << id << ": infra container: " << st;
      }
    }
    if (network_ != nullptr && !cur.netns_path().empty()) {
      if (absl::Status st = network_->RemoveNetns(cur.netns_path()); !st.ok()) {
        LOG(ERROR) << "undoing failed pod " << id << ": " << st;
      }
    }
    if (absl::Status st = RemoveAll(cur.dir()); !st.ok()) {
      LOG(ERROR) << "undoing failed pod " << id << ": " << st;
    }
    (void)db_->Delete(storage::Kind::kSandboxes, id);
    absl::MutexLock l(&index_mu_);
    sandboxes_.erase(id);
    sandbox_views_.erase(id);
  };

  // The pod's directory holds its /dev/shm and the files bound into its containers: no other
  // host user may reach them (pod IDs show in conmon's argv). In a user namespace, runc binds
  // them from inside it, so the directory belongs to the pod's root.
  if (absl::Status st = MakeDirs(rec.dir(), 0700); !st.ok()) return st;
  if (*pod_userns && chown(rec.dir().c_str(), userns_root.uid, userns_root.gid) != 0) {
    return Errno(absl::StrCat("chown ", rec.dir()));
  }
  // The pod's /dev/shm, shared by its containers.
  if (nso.ipc() != cri::NODE) {
    std::string shm = absl::StrCat(rec.dir(), "/shm");
    if (absl::Status st = MakeDirs(shm, 0755); !st.ok()) return st;
    std::string shm_options = "mode=1777,size=65536k";
    // In a user namespace the pod's root owns it, as host root does otherwise.
    if (*pod_userns) {
      absl::StrAppend(&shm_options, ",uid=", userns_root.uid, ",gid=", userns_root.gid);
    }
    if (absl::Status st = host_->MountTmpfs(shm, shm_options); !st.ok()) {
      return absl::Status(st.code(), absl::StrCat("the pod's shm: ", st.message()));
    }
  }
  // A pod in a user namespace: the namespace, and the netns it must own (to mount sysfs and to be
  // joined after the user namespace), pinned in the pod's directory (named in the first record).
  if (*pod_userns) {
    if (absl::Status st = CreatePodNamespaces(rec.uid_mappings(), rec.gid_mappings(),
                                              rec.userns_path(), rec.netns_path());
        !st.ok()) {
      return st;
    }
  }
  // Network namespace first: CNI and the infra container both need its path.
  if (!host_network && network_ != nullptr && !*pod_userns) {
    absl::StatusOr<std::string> ns = network_->CreateNetns(id);
    if (!ns.ok()) return ns.status();
    if (*ns != rec.netns_path()) {
      return absl::InternalError(
          absl::StrCat("pod ", id, ": the netns was made at ", *ns, ", not at ", rec.netns_path()));
    }
  }

  // CNI ADD runs while the infra container is created and started: both only need the netns,
  // and together they are most of a pod's start. The pod files need the IPs, so they wait.
  // Joined before anything returns (declared after `undo`, so it runs first), so an undo
  // tears down a finished ADD.
  absl::StatusOr<PodNetworkStatus> net_result = PodNetworkStatus{};
  std::thread cni;
  absl::Cleanup join_cni = [&] {
    if (cni.joinable()) cni.join();
  };
  if (!host_network && network_ != nullptr) {
    PodNetworkSpec net{id,
                       config.metadata().name(),
                       config.metadata().namespace_(),
                       config.metadata().uid(),
                       rec.netns_path(),
                       {config.port_mappings().begin(), config.port_mappings().end()}};
    cni = std::thread(
        [this, net = std::move(net), &net_result] { net_result = network_->SetUp(net); });
  }

  // The infra container: berth's pause in berth's read-only rootfs.
  PodContext pod = PodContextOf(rec);
  absl::StatusOr<std::string> cgroups_path = CgroupsPath(rec.cgroup_parent(), id);
  if (!cgroups_path.ok()) return cgroups_path.status();
  SpecOptions so{*cgroups_path, oom_floor_, options_.seccomp_default_when_empty};
  absl::StatusOr<json> spec = BuildInfraSpec(pod, InfraRootfs(), "/pause", so);
  if (!spec.ok()) return spec.status();

  Container infra;
  auto* cc = infra.mutable_config();
  cc->set_id(id);
  cc->set_name(name);
  cc->set_sandbox_id(id);
  cc->set_infra(true);
  cc->set_runtime_handler(runtime_handler);
  cc->set_created_at_ns(rec.created_at_ns());
  cc->set_bundle_dir(BundleDir(id));
  cc->set_rootfs(InfraRootfs());
  cc->set_stop_signal("SIGKILL");
  cc->set_oci_spec(DumpJson(*spec));
  cc->mutable_cri()->mutable_metadata()->set_name("POD");
  auto cobj = std::make_shared<ContainerObj>();
  {
    absl::MutexLock cl(&cobj->mu);
    if (absl::Status st = Transition(cobj.get(), Operation::kConfigure, infra); !st.ok()) return st;
    {
      absl::MutexLock l(&index_mu_);
      containers_[id] = cobj;
    }
    if (absl::Status st = CreateInRuntime(cobj.get()); !st.ok()) return st;
    if (absl::Status st = RuntimeOf(cobj->rec.config())->Start(id); !st.ok()) return st;
    Container running = cobj->rec;
    running.mutable_state()->set_started_at_ns(NowNs());
    // The pod's STARTED event waits until the pod is READY (below).
    if (absl::Status st =
            Transition(cobj.get(), Operation::kStart, std::move(running), {.emit = false});
        !st.ok()) {
      return st;
    }
  }
  if (cni.joinable()) {
    cni.join();
    if (!net_result.ok()) return net_result.status();
    for (const auto& ip : net_result->ips) rec.add_ips(ip);
    rec.set_cni_result(net_result->result);
    rec.set_cni_config(net_result->config);
    if (absl::Status st = Update(obj.get(), rec); !st.ok()) return st;
  }
  if (absl::Status st = WritePodFiles(rec, host_network); !st.ok()) return st;
  if (*pod_userns) {
    // The pod's files belong to its root, as they belong to root in a pod without one.
    for (const char* f : {"hosts", "resolv.conf", "hostname"}) {
      const std::string path = absl::StrCat(rec.dir(), "/", f);
      if (chown(path.c_str(), userns_root.uid, userns_root.gid) != 0 && errno != ENOENT) {
        return Errno(absl::StrCat("chown ", path));
      }
    }
  }
  if (absl::Status st = Transition(obj.get(), PodOperation::kReady, rec); !st.ok()) return st;
  ok = true;
  // The pod's STARTED event only once it is READY, as containerd sends it: kubelet's evented
  // PLEG caches the pod as the event shows it, and a NOTREADY pod is one kubelet recreates.
  {
    absl::MutexLock cl(&cobj->mu);
    Emit(cobj->rec, EventType::kStarted);
  }
  return id;
}

}  // namespace berth::engine
