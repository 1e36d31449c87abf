// berth's lifecycle benchmark: pod start/stop, container create+start next to a bare runc
// create+start of the same bundle, list and stats latency by count, concurrent pod starts, image
// pull+unpack next to tar -xzf, memory (daemon RSS/PSS idle, with pods, at density and over
// create/remove cycles; monitor PSS per container), and a restart under 1,000 containers next to
// a `runc state` per container. Prints a table and JSON.
//
// With --against=unix:///path the same workloads also run on a second CRI endpoint (containerd,
// for instance) in the same run, interleaved call by call where the figure is a latency, and the
// table shows both columns and berth's figure divided by the other's.
//
//   bazel run //bench:lifecycle_bench -- --runs=20 --list_counts=10,100
//   (see scripts/bench.sh and docs/BENCHMARKS.md)
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/impl/codegen/client_unary_call.h"
#include "grpcpp/impl/codegen/rpc_method.h"
#include "nlohmann/json.hpp"
#include "bench/restart_section.h"
#include "test/registry/tar_builder.h"
#include "test/registry/test_registry.h"
#include "test/util/berthd.h"
#include "test/util/busybox_image.h"
#include "test/util/temp_dir.h"
#include "util/fd.h"
#include "util/fs.h"
#include "util/subprocess.h"

ABSL_FLAG(int, runs, 20, "Repetitions of each timed operation");
ABSL_FLAG(int, pods, 10, "Pods (without containers) alive for the 'with N pods' memory figure");
ABSL_FLAG(std::string, list_counts, "10,100", "Container counts for the List latency figures");
ABSL_FLAG(int, list_calls, 200, "Timed calls per List figure");
ABSL_FLAG(int, stats_calls, 20, "Timed calls per stats figure");
ABSL_FLAG(
    std::string, crictl, "",
    "A crictl binary: the lists section also times `crictl ps -a` and `crictl version` (its "
    "process start and connection, subtracted) against each endpoint, as an operator runs it");
ABSL_FLAG(int, crictl_runs, 30, "Timed runs of each crictl command");
ABSL_FLAG(int, list_settle_seconds, 0,
          "Seconds to wait after creating the containers before timing the List calls");
ABSL_FLAG(int, density_pods, 100, "Pods of the density figure (memory section)");
ABSL_FLAG(int, density_containers_per_pod, 10, "Containers per pod of the density figure");
ABSL_FLAG(int, concurrent, 100, "Pods, each with one container, started concurrently");
ABSL_FLAG(int, cycles, 1000, "Create/remove cycles (pod + container) of the memory section");
ABSL_FLAG(int, cycle_parallel, 4, "Concurrent loops running the cycles, per endpoint");
ABSL_FLAG(
    int, mem_settle_seconds, 3,
    "Seconds to wait before each memory reading (lets the daemon finish its background work)");
ABSL_FLAG(std::string, json_out, "", "Also write the JSON report to this file");
ABSL_FLAG(bool, sync_writes, true, "berthd's runtime.sync_writes (fsync every state write)");
ABSL_FLAG(std::string, runc, "runc", "The runc the restart section's `runc state` baseline runs");
ABSL_FLAG(int, restart_pods, 100, "Pods running during the restart section");
ABSL_FLAG(int, restart_containers_per_pod, 10, "Containers (sleep) per pod of the restart section");
ABSL_FLAG(std::string, sections, "pull,pods,containers,lists,concurrent,memory,restart",
          "Which figures to measure (comma-separated subset of "
          "pull,pods,containers,lists,concurrent,memory,restart)");
ABSL_FLAG(std::string, against, "",
          "A second CRI endpoint (unix:///path) to run the same workloads on, side by side. It "
          "must mirror docker.io and registry.k8s.io to --registry.");
ABSL_FLAG(std::string, against_name, "other", "Column name of the --against endpoint");
ABSL_FLAG(std::string, registry, "",
          "Push the bench images to this registry (host:port) instead of starting one");
ABSL_FLAG(std::string, cni, "loopback",
          "Pod network of the berthd the bench starts: loopback, or bridge (an isolated bridge "
          "without host address or NAT; what bench/containerd-side.sh gives containerd)");
ABSL_FLAG(bool, remove_all_pods, false,
          "Remove every pod the endpoints already run, then exit (cleans up after an aborted run)");
ABSL_FLAG(std::string, endpoint, "",
          "Benchmark a berthd that is already running at this endpoint instead of starting one "
          "(to profile it under heaptrack or massif); it must mirror docker.io to --registry");

namespace berth::bench {
namespace {

namespace cri = runtime::v1;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

struct Series {
  std::vector<double> ms;
  int errors = 0;
  std::string first_error;
  void Add(Clock::time_point start) {
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  void Fail(const std::string& e) {
    if (errors++ == 0) first_error = e;
  }
  double Pct(double p) const {
    std::vector<double> v = ms;
    std::sort(v.begin(), v.end());
    if (v.empty()) return 0;
    size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
    return v[i];
  }
  json Json() const {
    json j = {{"min_ms", Pct(0)},
              {"median_ms", Pct(0.5)},
              {"p99_ms", Pct(0.99)},
              {"max_ms", Pct(1)},
              {"n", ms.size()}};
    if (errors) {
      j["errors"] = errors;
      j["first_error"] = first_error;
    }
    return j;
  }
};

[[noreturn]] void Die(const std::string& what) {
  fprintf(stderr, "lifecycle_bench: %s\n", what.c_str());
  exit(1);
}

void Check(const grpc::Status& st, const std::string& what) {
  if (!st.ok()) Die(absl::StrCat(what, ": ", st.error_message()));
}

void Note(const std::string& what) {
  fprintf(stderr, "[lifecycle_bench] %s\n", what.c_str());
  fflush(stderr);
}

// One process's memory, from smaps_rollup (RSS, PSS, anonymous) and status (threads).
// USS (unique set size) is the private part: what would be freed if the process exited.
struct ProcMem {
  int64_t rss_kb = 0, pss_kb = 0, uss_kb = 0, anon_kb = 0, threads = 0;
};

int64_t FieldKb(const std::string& text, const std::string& field) {
  size_t pos = text.find("\n" + field);
  if (pos == std::string::npos) pos = text.rfind(field, 0) == 0 ? 0 : std::string::npos;
  if (pos == std::string::npos) return 0;
  pos = text.find(':', pos);
  return strtoll(text.c_str() + pos + 1, nullptr, 10);
}

ProcMem ReadProcMem(pid_t pid) {
  ProcMem m;
  std::string rollup = ReadFile(absl::StrCat("/proc/", pid, "/smaps_rollup")).value_or("");
  m.rss_kb = FieldKb(rollup, "Rss");
  m.pss_kb = FieldKb(rollup, "Pss");
  m.anon_kb = FieldKb(rollup, "Anonymous");
  m.uss_kb = FieldKb(rollup, "Private_Clean") + FieldKb(rollup, "Private_Dirty");
  m.threads = FieldKb(ReadFile(absl::StrCat("/proc/", pid, "/status")).value_or(""), "Threads");
  return m;
}

// The process holding the listening Unix socket at `path` (via /proc/net/unix and fd links).
pid_t PidListeningOn(const std::string& path) {
  std::string table = ReadFile("/proc/net/unix").value_or("");
  std::string inode;
  for (absl::string_view line : absl::StrSplit(table, '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    // Num RefCount Protocol Flags Type St Inode Path; St 01 is listening.
    if (f.size() >= 8 && f[7] == path && f[5] == "01") inode = std::string(f[6]);
  }
  if (inode.empty()) return -1;
  const std::string want = absl::StrCat("socket:[", inode, "]");
  std::error_code ec;
  for (const auto& p : std::filesystem::directory_iterator("/proc", ec)) {
    int pid = 0;
    if (!absl::SimpleAtoi(p.path().filename().string(), &pid)) continue;
    for (const auto& fd : std::filesystem::directory_iterator(p.path() / "fd", ec)) {
      std::error_code lec;
      if (std::filesystem::read_symlink(fd.path(), lec).string() == want) return pid;
    }
  }
  return -1;
}

std::string SocketPathOf(const std::string& endpoint) {
  return absl::StartsWith(endpoint, "unix://") ? endpoint.substr(7) : endpoint;
}

// A CRI endpoint under test.
struct Target {
  std::string name;
  std::string socket;      // Unix socket path
  std::string state_hint;  // a string in its monitors' command lines (berth's state dir)
  bool berth = false;
  pid_t pid = -1;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<cri::RuntimeService::Stub> rt;
  std::unique_ptr<cri::ImageService::Stub> img;
  json fig = json::object();

  void Connect(const std::string& endpoint) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    channel = grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
    rt = cri::RuntimeService::NewStub(channel);
    img = cri::ImageService::NewStub(channel);
    cri::VersionResponse v;
    grpc::Status st = rt->Version(test::Ctx(10).get(), cri::VersionRequest(), &v);
    if (!st.ok()) Die(absl::StrCat(endpoint, ": Version: ", st.error_message()));
    Note(absl::StrCat(name, ": ", v.runtime_name(), " ", v.runtime_version(), " on ", endpoint));
    fig["runtime"] = absl::StrCat(v.runtime_name(), " ", v.runtime_version());
  }

  // Monitors (berth's conmon, containerd's shims) that belong to this endpoint.
  std::vector<pid_t> Monitors() const {
    std::vector<pid_t> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
      int p = 0;
      if (!absl::SimpleAtoi(e.path().filename().string(), &p)) continue;
      std::string comm = ReadFile(e.path().string() + "/comm").value_or("");
      if (!absl::StartsWith(comm, "conmon") && !absl::StartsWith(comm, "containerd-shim")) continue;
      std::string cmd = ReadFile(e.path().string() + "/cmdline").value_or("");
      std::string status = ReadFile(e.path().string() + "/status").value_or("");
      bool mine = FieldKb(status, "PPid") == pid || absl::StrContains(cmd, socket) ||
                  (!state_hint.empty() && absl::StrContains(cmd, state_hint));
      if (mine) out.push_back(p);
    }
    return out;
  }

  // Records the daemon's RSS/PSS/anonymous/threads under `label` ("<label>_rss_kb", ...).
  ProcMem Record(const std::string& label) {
    ProcMem m = ReadProcMem(pid);
    fig[label + "_rss_kb"] = m.rss_kb;
    fig[label + "_pss_kb"] = m.pss_kb;
    fig[label + "_uss_kb"] = m.uss_kb;
    fig[label + "_anon_kb"] = m.anon_kb;
    fig[label + "_threads"] = m.threads;
    return m;
  }
};

class Bench {
 public:
  Bench() = default;
  ~Bench() {
    berthd_.reset();  // stops berthd (its pods' veths go with their network namespaces)
    if (absl::GetFlag(FLAGS_cni) == "bridge")
      RunProcess({"ip", "link", "del", kBridge}).IgnoreError();
  }

  void Run() {
    const std::string sections = absl::GetFlag(FLAGS_sections);
    auto want = [&](absl::string_view s) {
      for (absl::string_view p : absl::StrSplit(sections, ',')) {
        if (p == s) return true;
      }
      return false;
    };
    std::string registry_host = absl::GetFlag(FLAGS_registry);
    if (registry_host.empty()) {
      auto reg = test::TestRegistry::Start();
      if (!reg.ok()) Die(std::string(reg.status().message()));
      registry_ = std::move(*reg);
      registry_host = registry_->host();
    }
    registry_host_ = registry_host;
    if (auto p = test::PushBusybox(registry_host); !p.ok()) Die(std::string(p.status().message()));
    if (!absl::GetFlag(FLAGS_against).empty()) PushPause();

    auto berth = std::make_unique<Target>();
    berth->name = "berth";
    berth->berth = true;
    if (absl::GetFlag(FLAGS_endpoint).empty()) {
      berthd_ = std::make_unique<test::Berthd>(dir_.path() + "/d");
      MakeDirs(dir_.path() + "/cni").IgnoreError();
      WriteFileAtomic(dir_.path() + "/cni/10-bench.conflist", CniConfig()).IgnoreError();
      berthd_options_.config_toml =
          absl::StrCat("[network]\ncni_conf_dir = \"", dir_.path(), "/cni\"\n", extra_config_,
                       "[registries.\"docker.io\"]\nmirrors = [\"http://", registry_host, "\"]\n");
      if (absl::Status st = berthd_->Start(berthd_options_); !st.ok()) {
        Die(std::string(st.message()));
      }
      berth->socket = berthd_->socket();
      berth->state_hint = berthd_->state_dir();
      berth->Connect("unix://" + berth->socket);
      berth->pid = berthd_->pid();
    } else {
      berth->socket = SocketPathOf(absl::GetFlag(FLAGS_endpoint));
      berth->state_hint = std::filesystem::path(berth->socket).parent_path().string() + "/";
      berth->Connect(absl::GetFlag(FLAGS_endpoint));
      berth->pid = PidListeningOn(berth->socket);
    }
    targets_.push_back(std::move(berth));
    if (!absl::GetFlag(FLAGS_against).empty()) {
      auto other = std::make_unique<Target>();
      other->name = absl::GetFlag(FLAGS_against_name);
      other->socket = SocketPathOf(absl::GetFlag(FLAGS_against));
      // Its monitors' command lines name a path under the socket's directory (containerd's
      // shims name the socket itself).
      other->state_hint = std::filesystem::path(other->socket).parent_path().string() + "/";
      other->Connect(absl::GetFlag(FLAGS_against));
      other->pid = PidListeningOn(other->socket);
      targets_.push_back(std::move(other));
    }
    for (auto& t : targets_) {
      if (t->pid <= 0)
        Die(absl::StrCat(t->name, ": cannot find the process listening on ", t->socket));
    }
    if (absl::GetFlag(FLAGS_remove_all_pods)) {
      for (auto& t : targets_) {
        cri::ListPodSandboxResponse pods;
        Check(t->rt->ListPodSandbox(test::Ctx().get(), cri::ListPodSandboxRequest(), &pods),
              "ListPodSandbox");
        std::vector<std::string> ids;
        for (const auto& p : pods.items()) ids.push_back(p.id());
        MustRemovePods(*t, ids);
        Note(absl::StrCat(t->name, ": removed ", ids.size(), " pods"));
      }
      exit(0);
    }
    // Fresh and idle: before any call but Version.
    Settle();
    for (auto& t : targets_) t->Record("daemon_idle_fresh");

    for (auto& t : targets_) {
      cri::PullImageRequest pull;
      pull.mutable_image()->set_image("busybox");
      cri::PullImageResponse presp;
      Check(t->img->PullImage(test::Ctx().get(), pull, &presp), t->name + ": PullImage busybox");
    }
    if (want("pull")) PullVsTar();
    if (want("pods")) PodStartStop();
    if (want("containers")) Containers();
    if (want("memory")) MemoryPods();
    if (want("lists")) Lists(want("memory"));
    if (want("concurrent")) Concurrent();
    if (want("memory")) {
      if (!density_done_) Density();
      Cycles();
    }
    if (want("restart")) Restart();
  }

  void Print() {
    const bool two = targets_.size() > 1;
    std::vector<std::string> names;
    for (const auto& [name, v] : targets_[0]->fig.items()) names.push_back(name);
    printf("\n%-52s", "figure (median, p99 in brackets)");
    for (const auto& t : targets_) printf(" %24s", t->name.c_str());
    if (two) printf(" %10s", "ratio");
    printf("\n");
    auto cell = [](const json& v) -> std::string {
      if (v.is_null()) return "-";
      if (v.is_object() && v.contains("median_ms")) {
        std::string s = absl::StrFormat("%.2f (%.2f) ms", v["median_ms"].get<double>(),
                                        v["p99_ms"].get<double>());
        if (v.contains("errors")) absl::StrAppend(&s, " ", v["errors"].get<int>(), " err");
        return s;
      }
      return v.is_string() ? v.get<std::string>() : v.dump();
    };
    auto value = [](const std::string& name, const json& v) -> double {
      if (v.is_object() && v.contains("median_ms")) return v["median_ms"].get<double>();
      if (v.is_number()) return v.get<double>();
      return 0;
    };
    for (const std::string& name : names) {
      printf("%-52s", name.c_str());
      std::vector<double> vals;
      for (const auto& t : targets_) {
        json v = t->fig.contains(name) ? t->fig[name] : json();
        std::string c = cell(v);
        if (absl::EndsWith(name, "_kb") && v.is_number()) {
          c = absl::StrFormat("%.1f MiB", v.get<double>() / 1024);
        }
        printf(" %24s", c.c_str());
        vals.push_back(value(name, v));
      }
      if (two && vals[1] > 0 && vals[0] > 0) printf(" %10.2f", vals[0] / vals[1]);
      printf("\n");
    }
    json all = json::object();
    for (const auto& t : targets_) all[t->name] = t->fig;
    std::string out = all.dump(2);
    printf("\n%s\n", out.c_str());
    if (!absl::GetFlag(FLAGS_json_out).empty()) {
      WriteFileAtomic(absl::GetFlag(FLAGS_json_out), out).IgnoreError();
    }
  }

 private:
  static void Settle() {
    std::this_thread::sleep_for(std::chrono::seconds(absl::GetFlag(FLAGS_mem_settle_seconds)));
  }

  // The pod network: loopback only, or (--cni=bridge, which containerd needs: its CRI wants an
  // eth0 with an address) a bridge with no address on the host, no gateway, no masquerading
  // and no iptables rules: pods reach each other and nothing else.
  std::string CniConfig() const {
    if (absl::GetFlag(FLAGS_cni) == "loopback") {
      return R"({"cniVersion":"1.0.0","name":"lo","plugins":[{"type":"loopback"}]})";
    }
    return absl::StrCat(
        R"({"cniVersion":"1.0.0","name":"bench","plugins":[{"type":"bridge","bridge":")", kBridge,
        R"(","isGateway":false,"ipMasq":false,"ipam":{"type":"host-local",)",
        R"("ranges":[[{"subnet":"10.213.0.0/16"}]],"dataDir":")", dir_.path(), R"(/ipam"}}]})");
  }
  static constexpr char kBridge[] = "bbench-berth";

  // The pause image a containerd sandbox needs, from berth's static pause binary.
  void PushPause() {
    std::string pause = ReadFile("runtime/pause/berth-pause").value_or("");
    if (pause.empty()) Die("runtime/pause/berth-pause not found in the runfiles");
    test::ImageToPush img;
    img.layers.push_back(test::MakeLayer({test::File("pause", pause, 0755)}));
    img.cmd = {"/pause"};
    img.env = {};
    auto pushed = test::PushImage(registry_host_, "pause", {"3.9", "3.8", "3.6"}, img);
    if (!pushed.ok()) Die(absl::StrCat("pushing pause: ", pushed.status().message()));
  }

  static cri::PodSandboxConfig Pod(const std::string& name) {
    cri::PodSandboxConfig c;
    c.mutable_metadata()->set_name(name);
    c.mutable_metadata()->set_namespace_("bench");
    c.mutable_metadata()->set_uid(absl::StrCat("uid-", name));
    c.set_hostname(name);
    // What kubelet sets on every pod, so list answers carry a realistic payload.
    (*c.mutable_labels())["io.kubernetes.pod.name"] = name;
    (*c.mutable_labels())["io.kubernetes.pod.namespace"] = "bench";
    (*c.mutable_labels())["io.kubernetes.pod.uid"] = absl::StrCat("uid-", name);
    (*c.mutable_labels())["app"] = "bench";
    (*c.mutable_annotations())["kubernetes.io/config.seen"] = "2026-11-23T10:00:00.000000000Z";
    (*c.mutable_annotations())["kubernetes.io/config.source"] = "api";
    return c;
  }

  static grpc::Status RunPod(Target& t, const std::string& name, std::string* id) {
    cri::RunPodSandboxRequest req;
    *req.mutable_config() = Pod(name);
    cri::RunPodSandboxResponse resp;
    grpc::Status st = t.rt->RunPodSandbox(test::Ctx(120).get(), req, &resp);
    *id = resp.pod_sandbox_id();
    return st;
  }

  static std::string MustRunPod(Target& t, const std::string& name) {
    std::string id;
    Check(RunPod(t, name, &id), t.name + ": RunPodSandbox");
    return id;
  }

  static grpc::Status RemovePod(Target& t, const std::string& id) {
    cri::StopPodSandboxRequest s;
    s.set_pod_sandbox_id(id);
    cri::StopPodSandboxResponse sr;
    grpc::Status st = t.rt->StopPodSandbox(test::Ctx(120).get(), s, &sr);
    if (!st.ok()) return st;
    cri::RemovePodSandboxRequest r;
    r.set_pod_sandbox_id(id);
    cri::RemovePodSandboxResponse rr;
    return t.rt->RemovePodSandbox(test::Ctx(120).get(), r, &rr);
  }

  // What kubelet's PLEG does every second: list pods and containers. berthd's list cache lets
  // go of removed records on the next list, so memory figures after removals relist first.
  static void Relist(Target& t) {
    cri::ListPodSandboxResponse pods;
    t.rt->ListPodSandbox(test::Ctx().get(), cri::ListPodSandboxRequest(), &pods);
    cri::ListContainersResponse containers;
    t.rt->ListContainers(test::Ctx().get(), cri::ListContainersRequest(), &containers);
  }

  static void MustRemovePods(Target& t, const std::vector<std::string>& ids) {
    // Removed by a few loops at once: teardown is not what these figures measure.
    std::atomic<size_t> next{0};
    std::vector<std::thread> loops;
    for (int l = 0; l < 4; ++l) {
      loops.emplace_back([&] {
        for (size_t i; (i = next++) < ids.size();)
          Check(RemovePod(t, ids[i]), t.name + ": removing a pod");
      });
    }
    for (auto& l : loops) l.join();
    Relist(t);
  }

  static grpc::Status CreateContainer(Target& t, const std::string& pod_id,
                                      const std::string& pod_name, const std::string& name,
                                      std::string* id) {
    cri::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod_id);
    *req.mutable_sandbox_config() = Pod(pod_name);
    req.mutable_config()->mutable_metadata()->set_name(name);
    req.mutable_config()->mutable_image()->set_image("busybox");
    req.mutable_config()->add_command("/bin/sleep");
    req.mutable_config()->add_command("100000");
    // The labels and annotations kubelet puts on every container.
    auto& labels = *req.mutable_config()->mutable_labels();
    labels["io.kubernetes.container.name"] = name;
    labels["io.kubernetes.pod.name"] = pod_name;
    labels["io.kubernetes.pod.namespace"] = "bench";
    labels["io.kubernetes.pod.uid"] = absl::StrCat("uid-", pod_name);
    auto& ann = *req.mutable_config()->mutable_annotations();
    ann["io.kubernetes.container.hash"] = "5e6f7a8b";
    ann["io.kubernetes.container.restartCount"] = "0";
    ann["io.kubernetes.container.terminationMessagePath"] = "/dev/termination-log";
    ann["io.kubernetes.container.terminationMessagePolicy"] = "File";
    ann["io.kubernetes.pod.terminationGracePeriod"] = "30";
    cri::CreateContainerResponse resp;
    grpc::Status st = t.rt->CreateContainer(test::Ctx(120).get(), req, &resp);
    *id = resp.container_id();
    return st;
  }

  static grpc::Status StartContainer(Target& t, const std::string& id) {
    cri::StartContainerRequest s;
    s.set_container_id(id);
    cri::StartContainerResponse sr;
    return t.rt->StartContainer(test::Ctx(120).get(), s, &sr);
  }

  static grpc::Status CreateAndStart(Target& t, const std::string& pod_id,
                                     const std::string& pod_name, const std::string& name,
                                     std::string* id) {
    grpc::Status st = CreateContainer(t, pod_id, pod_name, name, id);
    return st.ok() ? StartContainer(t, *id) : st;
  }

  static std::string MustCreateAndStart(Target& t, const std::string& pod_id,
                                        const std::string& pod_name, const std::string& name) {
    std::string id;
    Check(CreateAndStart(t, pod_id, pod_name, name, &id),
          t.name + ": CreateContainer+StartContainer");
    return id;
  }

  static grpc::Status StopRemoveContainer(Target& t, const std::string& id) {
    cri::StopContainerRequest s;
    s.set_container_id(id);
    s.set_timeout(0);  // sleep as PID 1 ignores SIGTERM: straight to SIGKILL
    cri::StopContainerResponse sr;
    grpc::Status st = t.rt->StopContainer(test::Ctx(120).get(), s, &sr);
    if (!st.ok()) return st;
    cri::RemoveContainerRequest r;
    r.set_container_id(id);
    cri::RemoveContainerResponse rr;
    return t.rt->RemoveContainer(test::Ctx(120).get(), r, &rr);
  }

  // Monitor PSS per container and per monitor process, under `label`.
  static void RecordMonitors(Target& t, const std::string& label, int containers) {
    std::vector<pid_t> monitors = t.Monitors();
    int64_t pss = 0, rss = 0;
    for (pid_t p : monitors) {
      ProcMem m = ReadProcMem(p);
      pss += m.pss_kb;
      rss += m.rss_kb;
    }
    t.fig[label + "_monitor_processes"] = monitors.size();
    if (containers > 0) t.fig[label + "_monitor_pss_kb_per_container"] = pss / containers;
    if (!monitors.empty()) {
      t.fig[label + "_monitor_pss_kb_per_process"] = pss / static_cast<int64_t>(monitors.size());
      t.fig[label + "_monitor_rss_kb_per_process"] = rss / static_cast<int64_t>(monitors.size());
    }
  }

  void PullVsTar() {
    // A 4-layer image of ~8 MB, pulled fresh each run, by each endpoint in turn.
    std::string busybox = ReadFile("/bin/busybox").value_or("");
    std::vector<Series> pull(targets_.size());
    Series tar;
    const int runs = std::max(3, absl::GetFlag(FLAGS_runs) / 4);
    for (int i = 0; i < runs; ++i) {
      test::ImageToPush img;
      img.env = {absl::StrCat("RUN=", i)};  // a new config digest: a new image
      // Fresh layer blobs every run so nothing is cached: vary one file per layer.
      for (int l = 0; l < 4; ++l) {
        img.layers.push_back(
            test::MakeLayer({test::File(absl::StrCat("layer", l, "/file0"), busybox),
                             test::File(absl::StrCat("layer", l, "/run"), std::to_string(i)),
                             test::File(absl::StrCat("layer", l, "/file1"), busybox + "x")}));
      }
      auto pushed = test::PushImage(registry_host_, "bench/pull", {absl::StrCat("r", i)}, img);
      if (!pushed.ok()) Die(std::string(pushed.status().message()));
      for (size_t k = 0; k < targets_.size(); ++k) {
        cri::PullImageRequest req;
        req.mutable_image()->set_image(absl::StrCat("docker.io/bench/pull:r", i));
        cri::PullImageResponse resp;
        auto t0 = Clock::now();
        Check(targets_[k]->img->PullImage(test::Ctx().get(), req, &resp),
              targets_[k]->name + ": PullImage");
        pull[k].Add(t0);
        cri::RemoveImageRequest rm;
        rm.mutable_image()->set_image(resp.image_ref());
        cri::RemoveImageResponse rmr;
        targets_[k]->img->RemoveImage(test::Ctx().get(), rm, &rmr);
      }
      // Baseline: the same compressed layers from local disk through tar -xzf.
      test::TempDir out;
      std::vector<std::string> files;
      for (int l = 0; l < 4; ++l) {
        std::string f = absl::StrCat(out.path(), "/l", l, ".tgz");
        WriteFileAtomic(f, img.layers[l].blob).IgnoreError();
        files.push_back(f);
      }
      MakeDirs(out.path() + "/x").IgnoreError();
      auto t1 = Clock::now();
      for (const auto& f : files) {
        auto r = RunProcess({"tar", "-xzf", f, "-C", out.path() + "/x"});
        if (!r.ok() || !r->ok()) Die("tar -xzf failed");
      }
      tar.Add(t1);
    }
    for (size_t k = 0; k < targets_.size(); ++k) {
      targets_[k]->fig["image_pull_unpack_4_layers"] = pull[k].Json();
      targets_[k]->fig["ratio_pull_over_tar_median"] = pull[k].Pct(0.5) / tar.Pct(0.5);
    }
    targets_[0]->fig["baseline_tar_xzf_same_layers"] = tar.Json();
  }

  void PodStartStop() {
    std::vector<Series> start(targets_.size()), stop(targets_.size());
    for (int i = 0; i < absl::GetFlag(FLAGS_runs); ++i) {
      for (size_t k = 0; k < targets_.size(); ++k) {
        Target& t = *targets_[k];
        auto t0 = Clock::now();
        std::string id = MustRunPod(t, absl::StrCat("pss", i));
        start[k].Add(t0);
        auto t1 = Clock::now();
        Check(RemovePod(t, id), t.name + ": StopPodSandbox+RemovePodSandbox");
        stop[k].Add(t1);
      }
    }
    for (size_t k = 0; k < targets_.size(); ++k) {
      targets_[k]->fig["RunPodSandbox"] = start[k].Json();
      targets_[k]->fig["StopPodSandbox+RemovePodSandbox"] = stop[k].Json();
    }
  }

  void Containers() {
    const size_t n = targets_.size();
    std::vector<std::string> pods(n);
    for (size_t k = 0; k < n; ++k) pods[k] = MustRunPod(*targets_[k], "cvr");
    std::vector<Series> create(n), start(n), remove(n);
    std::vector<std::vector<std::string>> ids(n);
    for (int i = 0; i < absl::GetFlag(FLAGS_runs); ++i) {
      for (size_t k = 0; k < n; ++k) {
        Target& t = *targets_[k];
        std::string id;
        auto t0 = Clock::now();
        Check(CreateContainer(t, pods[k], "cvr", absl::StrCat("c", i), &id),
              t.name + ": CreateContainer");
        create[k].Add(t0);
        Check(StartContainer(t, id), t.name + ": StartContainer");
        start[k].Add(t0);
        ids[k].push_back(id);
      }
    }
    for (size_t k = 0; k < n; ++k) {
      Target& t = *targets_[k];
      t.fig["CreateContainer"] = create[k].Json();
      t.fig["CreateContainer+StartContainer"] = start[k].Json();
      RecordMonitors(t, "containers_section", static_cast<int>(ids[k].size()));
    }
    // The bare baseline on berth: the identical config.json (its own namespaces instead of the
    // pod's) on a copy of the same rootfs, with runc create + runc start and nothing else.
    Target& b = *targets_[0];
    Series runc;
    {
      cri::ContainerStatusRequest req;
      req.set_container_id(ids[0][0]);
      req.set_verbose(true);
      cri::ContainerStatusResponse resp;
      Check(b.rt->ContainerStatus(test::Ctx().get(), req, &resp), "ContainerStatus");
      json info = json::parse(resp.info().at("info"));
      std::string spec_json = info["runtimeSpec"].dump();
      std::string rootfs = info["rootfs"];
      std::string bundle = dir_.path() + "/bare";
      MakeDirs(bundle).IgnoreError();
      RunProcess({"cp", "-a", rootfs, bundle + "/rootfs"}).IgnoreError();
      json spec = json::parse(spec_json);
      spec["root"]["path"] = bundle + "/rootfs";
      for (auto& ns : spec["linux"]["namespaces"]) ns.erase("path");
      json keep = json::array();
      for (auto& m : spec["mounts"]) {
        if (m["type"] != "bind") keep.push_back(m);  // the pod's files belong to the pod
      }
      spec["mounts"] = keep;
      std::string runc_root = dir_.path() + "/bare-runc";
      UniqueFd devnull(open("/dev/null", O_RDWR | O_CLOEXEC));
      for (int i = 0; i < absl::GetFlag(FLAGS_runs); ++i) {
        std::string id = absl::StrCat("berth-bench-bare-", i);
        spec["linux"]["cgroupsPath"] = absl::StrCat("/berth-bench/", id);
        WriteFileAtomic(bundle + "/config.json", spec.dump()).IgnoreError();
        auto t0 = Clock::now();
        auto pid = SpawnProcess({"runc", "--root", runc_root, "create", "--bundle", bundle, id}, {},
                                devnull.get(), devnull.get(), devnull.get());
        if (!pid.ok() || WaitProcess(*pid).value_or(1) != 0) Die("bare runc create failed");
        auto started = RunProcess({"runc", "--root", runc_root, "start", id});
        if (!started.ok() || !started->ok()) Die("bare runc start failed");
        runc.Add(t0);
        RunProcess({"runc", "--root", runc_root, "delete", "--force", id}).IgnoreError();
      }
      RunProcess({"rm", "-rf", bundle}).IgnoreError();
    }
    b.fig["baseline_bare_runc_create+start"] = runc.Json();
    b.fig["ratio_container_start_over_runc_median"] = start[0].Pct(0.5) / runc.Pct(0.5);
    for (size_t i = 0; i < ids[0].size(); ++i) {
      for (size_t k = 0; k < n; ++k) {
        auto t0 = Clock::now();
        Check(StopRemoveContainer(*targets_[k], ids[k][i]),
              targets_[k]->name + ": Stop+RemoveContainer");
        remove[k].Add(t0);
      }
    }
    for (size_t k = 0; k < n; ++k) {
      targets_[k]->fig["StopContainer+RemoveContainer"] = remove[k].Json();
      Check(RemovePod(*targets_[k], pods[k]), "removing the container pod");
    }
  }

  // count containers, 10 per pod, on every endpoint; returns the pod ids per endpoint.
  std::vector<std::vector<std::string>> Populate(int count, int per_pod, const std::string& tag) {
    std::vector<std::vector<std::string>> pods(targets_.size());
    for (size_t k = 0; k < targets_.size(); ++k) {
      Target& t = *targets_[k];
      // Two loops per endpoint: the population is set-up, not a figure.
      std::mutex mu;
      std::atomic<int> next{0};
      std::vector<std::thread> loops;
      const int npods = (count + per_pod - 1) / per_pod;
      for (int l = 0; l < 2; ++l) {
        loops.emplace_back([&] {
          for (int p; (p = next++) < npods;) {
            std::string name = absl::StrCat(tag, "-", p);
            std::string pod = MustRunPod(t, name);
            {
              std::lock_guard<std::mutex> lock(mu);
              pods[k].push_back(pod);
            }
            for (int c = 0; c < per_pod && p * per_pod + c < count; ++c) {
              MustCreateAndStart(t, pod, name, absl::StrCat("c", c));
            }
          }
        });
      }
      for (auto& l : loops) l.join();
      Note(absl::StrCat(t.name, ": ", count, " containers in ", pods[k].size(), " pods"));
    }
    return pods;
  }

  void Lists(bool memory) {
    for (absl::string_view count_s : absl::StrSplit(absl::GetFlag(FLAGS_list_counts), ',')) {
      int count = 0;
      if (!absl::SimpleAtoi(count_s, &count)) continue;
      const int per_pod = 10;
      auto pods = Populate(count, per_pod, absl::StrCat("list", count));
      std::this_thread::sleep_for(std::chrono::seconds(absl::GetFlag(FLAGS_list_settle_seconds)));
      const size_t n = targets_.size();
      std::vector<Series> lc(n), lp(n), ls(n), lps(n), raw(n);
      std::vector<size_t> answer_bytes(n);
      for (int i = 0; i < absl::GetFlag(FLAGS_stats_calls); ++i) {
        for (size_t k = 0; k < n; ++k) {
          cri::ListContainerStatsResponse r;
          auto t0 = Clock::now();
          grpc::Status st = targets_[k]->rt->ListContainerStats(
              test::Ctx().get(), cri::ListContainerStatsRequest(), &r);
          st.ok() ? ls[k].Add(t0) : ls[k].Fail(st.error_message());
          cri::ListPodSandboxStatsResponse pr;
          auto t1 = Clock::now();
          st = targets_[k]->rt->ListPodSandboxStats(test::Ctx().get(),
                                                    cri::ListPodSandboxStatsRequest(), &pr);
          st.ok() ? lps[k].Add(t1) : lps[k].Fail(st.error_message());
        }
      }
      const grpc::internal::RpcMethod list_method("/runtime.v1.RuntimeService/ListContainers",
                                                  grpc::internal::RpcMethod::NORMAL_RPC);
      grpc::ByteBuffer request_bytes;
      {
        bool own = false;
        cri::ListContainersRequest empty;
        grpc::GenericSerialize<grpc::ProtoBufferWriter, cri::ListContainersRequest>(
            empty, &request_bytes, &own)
            .IgnoreError();
      }
      for (int i = 0; i < absl::GetFlag(FLAGS_list_calls); ++i) {
        for (size_t k = 0; k < n; ++k) {
          Target& t = *targets_[k];
          cri::ListContainersResponse r;
          auto t0 = Clock::now();
          Check(t.rt->ListContainers(test::Ctx().get(), cri::ListContainersRequest(), &r),
                "ListContainers");
          lc[k].Add(t0);
          cri::ListPodSandboxResponse pr;
          auto t1 = Clock::now();
          Check(t.rt->ListPodSandbox(test::Ctx().get(), cri::ListPodSandboxRequest(), &pr),
                "ListPodSandbox");
          lp[k].Add(t1);
          // The same call with the answer kept as bytes: the runtime's answer time without the
          // client's protobuf parsing, which is the caller's cost, not the runtime's.
          grpc::ByteBuffer answer;
          auto t2 = Clock::now();
          Check(grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
                    t.channel.get(), list_method, test::Ctx().get(), request_bytes, &answer),
                "ListContainers (bytes)");
          raw[k].Add(t2);
          answer_bytes[k] = answer.Length();
        }
      }
      if (const std::string crictl = absl::GetFlag(FLAGS_crictl); !crictl.empty()) {
        for (size_t k = 0; k < n; ++k) TimeCrictl(*targets_[k], crictl, count);
      }
      if (memory) Settle();
      for (size_t k = 0; k < n; ++k) {
        Target& t = *targets_[k];
        t.fig[absl::StrCat("ListContainers_", count)] = lc[k].Json();
        t.fig[absl::StrCat("ListContainers_", count, "_answer_bytes_only")] = raw[k].Json();
        t.fig[absl::StrCat("ListContainers_", count, "_answer_size_bytes")] = answer_bytes[k];
        t.fig[absl::StrCat("ListContainerStats_", count)] = ls[k].Json();
        t.fig[absl::StrCat("ListPodSandboxStats_", pods[k].size(), "_pods")] = lps[k].Json();
        t.fig[absl::StrCat("ListPodSandbox_", pods[k].size(), "_pods")] = lp[k].Json();
        if (memory) {
          const std::string label = absl::StrCat("daemon_with_", count, "_containers");
          t.Record(label);
          RecordMonitors(t, label, count);
        }
      }
      for (size_t k = 0; k < n; ++k) MustRemovePods(*targets_[k], pods[k]);
      if (memory) {
        Settle();
        for (auto& t : targets_)
          t->Record(absl::StrCat("daemon_after_removing_", count, "_containers"));
      }
      if (count ==
              absl::GetFlag(FLAGS_density_pods) * absl::GetFlag(FLAGS_density_containers_per_pod) &&
          per_pod == absl::GetFlag(FLAGS_density_containers_per_pod)) {
        density_done_ = memory;
      }
    }
  }

  // `crictl ps -a` end to end (a process, a connection, one ListContainers, the table) minus
  // `crictl version` (the process and the connection), alternating so that both see the same load.
  void TimeCrictl(Target& t, const std::string& crictl, int count) {
    const std::string endpoint = absl::StrCat("unix://", t.socket);
    Series ps, version;
    size_t lines = 0;
    for (int i = 0; i < absl::GetFlag(FLAGS_crictl_runs); ++i) {
      for (int which = 0; which < 2; ++which) {
        std::vector<std::string> argv = {crictl, "--runtime-endpoint", endpoint, "--image-endpoint",
                                         endpoint};
        if (which == 0) {
          argv.insert(argv.end(), {"ps", "-a"});
        } else {
          argv.push_back("version");
        }
        auto t0 = Clock::now();
        absl::StatusOr<RunResult> r = RunProcess(argv);
        Series& s = which == 0 ? ps : version;
        if (!r.ok() || !r->ok()) {
          s.Fail(r.ok() ? DescribeFailure(argv, *r) : std::string(r.status().message()));
          continue;
        }
        s.Add(t0);
        if (which == 0) lines = std::count(r->out.begin(), r->out.end(), '\n');
      }
    }
    const std::string label = absl::StrCat("crictl_ps_a_", count);
    t.fig[label] = ps.Json();
    t.fig[label + "_lines"] = lines;
    t.fig[absl::StrCat("crictl_version_during_", count)] = version.Json();
    t.fig[label + "_minus_version_median_ms"] = ps.Pct(0.5) - version.Pct(0.5);
  }

  void MemoryPods() {
    for (auto& t : targets_) {
      std::vector<std::string> pods;
      for (int i = 0; i < absl::GetFlag(FLAGS_pods); ++i)
        pods.push_back(MustRunPod(*t, absl::StrCat("mem", i)));
      Settle();
      t->Record(absl::StrCat("daemon_with_", pods.size(), "_pods"));
      MustRemovePods(*t, pods);
      Settle();
      t->Record(absl::StrCat("daemon_after_removing_", pods.size(), "_pods"));
    }
  }

  void Density() {
    if (absl::GetFlag(FLAGS_density_pods) <= 0) return;
    const int per_pod = absl::GetFlag(FLAGS_density_containers_per_pod);
    const int count = absl::GetFlag(FLAGS_density_pods) * per_pod;
    auto pods = Populate(count, per_pod, "density");
    Settle();
    for (size_t k = 0; k < targets_.size(); ++k) {
      const std::string label = absl::StrCat("daemon_with_", count, "_containers");
      targets_[k]->Record(label);
      RecordMonitors(*targets_[k], label, count);
    }
    for (size_t k = 0; k < targets_.size(); ++k) MustRemovePods(*targets_[k], pods[k]);
    Settle();
    for (auto& t : targets_)
      t->Record(absl::StrCat("daemon_after_removing_", count, "_containers"));
  }

  // N pods, each with one container, started at once: the wall time until all run.
  void Concurrent() {
    const int n = absl::GetFlag(FLAGS_concurrent);
    if (n <= 0) return;
    for (auto& tp : targets_) {
      Target& t = *tp;
      std::vector<std::string> pods(n);
      std::atomic<int> errors{0};
      std::mutex mu;
      std::string first_error;
      std::vector<std::thread> threads;
      auto t0 = Clock::now();
      for (int i = 0; i < n; ++i) {
        threads.emplace_back([&, i] {
          std::string name = absl::StrCat("conc", i), cid;
          grpc::Status st = RunPod(t, name, &pods[i]);
          if (st.ok()) st = CreateAndStart(t, pods[i], name, "c", &cid);
          if (!st.ok() && errors++ == 0) {
            std::lock_guard<std::mutex> lock(mu);
            first_error = st.error_message();
          }
        });
      }
      for (auto& th : threads) th.join();
      double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      t.fig[absl::StrCat("concurrent_", n, "_pods_with_a_container_wall_ms")] = ms;
      t.fig[absl::StrCat("concurrent_", n, "_errors")] = errors.load();
      if (errors) t.fig[absl::StrCat("concurrent_", n, "_first_error")] = first_error;
      std::vector<std::string> made;
      for (const auto& p : pods) {
        if (!p.empty()) made.push_back(p);
      }
      MustRemovePods(t, made);
    }
  }

  // Create/remove cycles (pod, container, start, stop, remove, stop pod, remove pod) on every
  // endpoint at once, RSS sampled while they run: start, peak, end, and end after settling.
  void Cycles() {
    const int cycles = absl::GetFlag(FLAGS_cycles);
    if (cycles <= 0) return;
    const int parallel = std::max(1, absl::GetFlag(FLAGS_cycle_parallel));
    Settle();
    for (auto& t : targets_) t->Record("cycles_start");
    std::atomic<bool> done{false};
    std::vector<int64_t> peak(targets_.size());
    std::thread sampler([&] {
      while (!done) {
        for (size_t k = 0; k < targets_.size(); ++k) {
          peak[k] = std::max(peak[k], ReadProcMem(targets_[k]->pid).rss_kb);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    });
    std::vector<std::thread> loops;
    std::vector<Series> each(targets_.size());
    std::vector<std::mutex> mus(targets_.size());
    auto t0 = Clock::now();
    for (size_t k = 0; k < targets_.size(); ++k) {
      auto next = std::make_shared<std::atomic<int>>(0);
      for (int l = 0; l < parallel; ++l) {
        loops.emplace_back([&, k, next] {
          Target& t = *targets_[k];
          for (int i; (i = (*next)++) < cycles;) {
            auto c0 = Clock::now();
            std::string name = absl::StrCat("cycle", i), pod, cid;
            grpc::Status st = RunPod(t, name, &pod);
            if (st.ok()) st = CreateAndStart(t, pod, name, "c", &cid);
            if (st.ok()) st = StopRemoveContainer(t, cid);
            if (!pod.empty()) {
              grpc::Status rs = RemovePod(t, pod);
              if (st.ok()) st = rs;
            }
            std::lock_guard<std::mutex> lock(mus[k]);
            st.ok() ? each[k].Add(c0) : each[k].Fail(st.error_message());
          }
        });
      }
    }
    for (auto& l : loops) l.join();
    done = true;
    sampler.join();
    double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    for (size_t k = 0; k < targets_.size(); ++k) {
      Target& t = *targets_[k];
      Relist(t);
      t.Record("cycles_end");
      t.fig["cycles_peak_rss_kb"] = peak[k];
      t.fig["cycles_per_endpoint"] = cycles;
      t.fig["cycles_parallel_loops"] = parallel;
      t.fig["cycles_wall_seconds_all_endpoints"] = wall;
      t.fig["cycle_pod_container_create_remove"] = each[k].Json();
    }
    std::this_thread::sleep_for(std::chrono::seconds(10));
    for (auto& t : targets_) {
      ProcMem m = t->Record("cycles_end_after_10s");
      int64_t start = t->fig["cycles_start_rss_kb"].get<int64_t>();
      t->fig["cycles_end_after_10s_over_start_rss"] =
          start ? static_cast<double>(m.rss_kb) / start : 0;
    }
  }

  // N pods x M sleeping containers on berth, then berthd SIGKILLed and started again: the time
  // to Version and to a full ListContainers, with state.json read in-process (twice) and with
  // `runc state` per container (runtime.read_state_in_process = false: the old recovery), and
  // the serial `runc state` baseline over the same containers (bench/restart_section.h).
  void Restart() {
    if (!berthd_) {
      Note("restart: needs the berthd the bench starts (not --endpoint); skipped");
      return;
    }
    Target& t = *targets_[0];
    const int per_pod = absl::GetFlag(FLAGS_restart_containers_per_pod);
    const int npods = absl::GetFlag(FLAGS_restart_pods);
    std::vector<std::string> pods(npods);
    std::atomic<int> next{0};
    std::vector<std::thread> loops;
    for (int l = 0; l < 2; ++l) {
      loops.emplace_back([&] {
        for (int p; (p = next++) < npods;) {
          const std::string name = absl::StrCat("restart-", p);
          pods[p] = MustRunPod(t, name);
          for (int c = 0; c < per_pod; ++c)
            MustCreateAndStart(t, pods[p], name, absl::StrCat("c", c));
        }
      });
    }
    for (auto& l : loops) l.join();
    const size_t count = static_cast<size_t>(npods) * per_pod;
    Note(absl::StrCat("berth: ", count, " containers in ", npods, " pods; restarting"));
    const std::string label = absl::StrCat("restart_", count, "_containers");
    t.fig.update(RuncStateBaseline(absl::GetFlag(FLAGS_runc), berthd_->state_dir() + "/runc"));
    t.fig.update(TimeRestart(*berthd_, berthd_options_, count, label));
    test::Berthd::Options old = berthd_options_;
    old.config_toml.replace(old.config_toml.find("[runtime]\n"), 10,
                            "[runtime]\nread_state_in_process = false\n");
    t.fig.update(TimeRestart(*berthd_, old, count, label + "_runc_state_per_container"));
    t.fig.update(TimeRestart(*berthd_, berthd_options_, count, label + "_again"));
    const double fresh = t.fig.value(label + "_to_full_list_ms", 0.0);
    if (fresh > 0) {
      t.fig["restart_runc_state_serial_over_restart_to_full_list"] =
          t.fig.value("restart_baseline_runc_state_serial_total_ms", 0.0) / fresh;
      t.fig["restart_old_recovery_over_new_to_full_list"] =
          t.fig.value(label + "_runc_state_per_container_to_full_list_ms", 0.0) / fresh;
    }
    t.pid = berthd_->pid();
    t.Connect("unix://" + t.socket);  // the old channel backs off after the kills
    MustRemovePods(t, pods);
  }

  test::Berthd::Options berthd_options_;
  const std::string extra_config_ = absl::StrCat(
      "[runtime]\nsync_writes = ", absl::GetFlag(FLAGS_sync_writes) ? "true" : "false", "\n");
  test::TempDir dir_;
  std::unique_ptr<test::TestRegistry> registry_;
  std::string registry_host_;
  std::unique_ptr<test::Berthd> berthd_;
  std::vector<std::unique_ptr<Target>> targets_;
  bool density_done_ = false;
};

}  // namespace
}  // namespace berth::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  berth::bench::Bench b;
  b.Run();
  b.Print();
  return 0;
}
