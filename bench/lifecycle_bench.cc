// berth's lifecycle benchmark: pod start/stop, container create+start next to a bare runc
// create+start of the same bundle, list latency by count, image pull+unpack next to tar -xzf,
// and memory (berthd RSS idle and with pods, conmon RSS per container). Prints a table and JSON.
//
//   bazel run -c opt //bench:lifecycle_bench -- --runs=20 --pods=100 --list_counts=10,100
#include <signal.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

#include "absl/flags/flag.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/impl/codegen/client_unary_call.h"
#include "grpcpp/impl/codegen/rpc_method.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "test/registry/tar_builder.h"
#include "test/registry/test_registry.h"
#include "test/util/berthd.h"
#include "test/util/busybox_image.h"
#include "test/util/temp_dir.h"
#include "util/fd.h"
#include "util/fs.h"
#include "util/subprocess.h"

ABSL_FLAG(int, runs, 20, "Repetitions of each timed operation");
ABSL_FLAG(int, pods, 100, "Pods alive for the loaded RSS figure");
ABSL_FLAG(std::string, list_counts, "10,100", "Container counts for the List latency figures");
ABSL_FLAG(int, list_calls, 200, "Timed calls per List figure");
ABSL_FLAG(int, list_settle_seconds, 0,
          "Seconds to wait after creating the containers before timing the List calls");
ABSL_FLAG(std::string, json_out, "", "Also write the JSON report to this file");
ABSL_FLAG(bool, sync_writes, true, "berthd's runtime.sync_writes (fsync every state write)");
ABSL_FLAG(std::string, sections, "pull,pods,containers,lists,memory",
          "Which figures to measure (comma-separated subset of pull,pods,containers,lists,memory)");

namespace berth::bench {
namespace {

namespace cri = ::runtime::v1;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

struct Series {
  std::vector<double> ms;
  void Add(Clock::time_point start) {
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  double Pct(double p) const {
    std::vector<double> v = ms;
    std::sort(v.begin(), v.end());
    if (v.empty()) return 0;
    size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
    return v[i];
  }
  json Json() const {
    return {{"min_ms", Pct(0)}, {"median_ms", Pct(0.5)}, {"p99_ms", Pct(0.99)}, {"max_ms", Pct(1)},
            {"n", ms.size()}};
  }
};

[[noreturn]] void Die(const std::string& what) {
  fprintf(stderr, "lifecycle_bench: %s\n", what.c_str());
  exit(1);
}

void Check(const grpc::Status& st, const std::string& what) {
  if (!st.ok()) Die(absl::StrCat(what, ": ", st.error_message()));
}

int64_t RssKb(pid_t pid) {
  std::string status = ReadFile(absl::StrCat("/proc/", pid, "/status")).value_or("");
  size_t pos = status.find("VmRSS:");
  if (pos == std::string::npos) return 0;
  return strtoll(status.c_str() + pos + 6, nullptr, 10);
}

class Bench {
 public:
  Bench() : berthd_(dir_.path() + "/d") {}

  void Run() {
    auto reg = test::TestRegistry::Start();
    if (!reg.ok()) Die(std::string(reg.status().message()));
    registry_ = std::move(*reg);
    if (auto p = test::PushBusybox(registry_->host()); !p.ok()) Die(std::string(p.status().message()));
    MakeDirs(dir_.path() + "/cni").IgnoreError();
    WriteFileAtomic(dir_.path() + "/cni/10-lo.conflist",
                    R"({"cniVersion":"1.0.0","name":"lo","plugins":[{"type":"loopback"}]})")
        .IgnoreError();
    if (absl::Status st = berthd_.Start({.config_toml = absl::StrCat(
                                             "[network]\ncni_conf_dir = \"", dir_.path(), "/cni\"\n", extra_config_,
                                             "[registries.\"docker.io\"]\nmirrors = [\"http://",
                                             registry_->host(), "\"]\n")});
        !st.ok()) {
      Die(std::string(st.message()));
    }
    report_["berthd_rss_idle_kb"] = RssKb(berthd_.pid());
    cri::PullImageRequest pull;
    pull.mutable_image()->set_image("busybox");
    cri::PullImageResponse presp;
    Check(berthd_.images().PullImage(test::Ctx().get(), pull, &presp), "PullImage busybox");
    const std::string sections = absl::GetFlag(FLAGS_sections);
    auto want = [&](absl::string_view s) {
      for (absl::string_view p : absl::StrSplit(sections, ',')) {
        if (p == s) return true;
      }
      return false;
    };
    if (want("pull")) PullVsTar();
    if (want("pods")) PodStartStop();
    if (want("containers")) ContainerVsRunc();
    if (want("lists")) Lists();
    if (want("memory")) Memory();
  }

  void Print() {
    printf("\n%-44s %10s %10s %10s %10s\n", "figure", "min", "median", "p99", "max");
    for (const auto& [name, v] : report_.items()) {
      if (v.is_object() && v.contains("median_ms")) {
        printf("%-44s %8.2fms %8.2fms %8.2fms %8.2fms\n", name.c_str(), v["min_ms"].get<double>(),
               v["median_ms"].get<double>(), v["p99_ms"].get<double>(), v["max_ms"].get<double>());
      }
    }
    for (const auto& [name, v] : report_.items()) {
      if (!v.is_object()) printf("%-44s %s\n", name.c_str(), v.dump().c_str());
    }
    std::string out = report_.dump(2);
    printf("\n%s\n", out.c_str());
    if (!absl::GetFlag(FLAGS_json_out).empty()) {
      WriteFileAtomic(absl::GetFlag(FLAGS_json_out), out).IgnoreError();
    }
  }

 private:
  cri::PodSandboxConfig Pod(const std::string& name) {
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

  std::string RunPod(const std::string& name) {
    cri::RunPodSandboxRequest req;
    *req.mutable_config() = Pod(name);
    cri::RunPodSandboxResponse resp;
    Check(berthd_.runtime().RunPodSandbox(test::Ctx().get(), req, &resp), "RunPodSandbox");
    return resp.pod_sandbox_id();
  }

  void RemovePod(const std::string& id) {
    cri::StopPodSandboxRequest s;
    s.set_pod_sandbox_id(id);
    cri::StopPodSandboxResponse sr;
    Check(berthd_.runtime().StopPodSandbox(test::Ctx().get(), s, &sr), "StopPodSandbox");
    cri::RemovePodSandboxRequest r;
    r.set_pod_sandbox_id(id);
    cri::RemovePodSandboxResponse rr;
    Check(berthd_.runtime().RemovePodSandbox(test::Ctx().get(), r, &rr), "RemovePodSandbox");
  }

  std::string CreateAndStart(const std::string& pod_id, const std::string& pod_name,
                             const std::string& name) {
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
    Check(berthd_.runtime().CreateContainer(test::Ctx().get(), req, &resp), "CreateContainer");
    cri::StartContainerRequest s;
    s.set_container_id(resp.container_id());
    cri::StartContainerResponse sr;
    Check(berthd_.runtime().StartContainer(test::Ctx().get(), s, &sr), "StartContainer");
    return resp.container_id();
  }

  void PullVsTar() {
    // A 4-layer image of ~12 MB of incompressible-ish content, pulled fresh each run.
    std::vector<test::Layer> layers;
    std::string busybox = ReadFile("/bin/busybox").value_or("");
    for (int l = 0; l < 4; ++l) {
      std::vector<test::TarEntry> entries;
      for (int f = 0; f < 3; ++f) {
        entries.push_back(test::File(absl::StrCat("layer", l, "/file", f), busybox + std::to_string(f)));
      }
      layers.push_back(test::MakeLayer(entries));
    }
    Series pull, tar;
    const int runs = std::max(3, absl::GetFlag(FLAGS_runs) / 4);
    for (int i = 0; i < runs; ++i) {
      test::ImageToPush img;
      img.layers = layers;
      img.env = {absl::StrCat("RUN=", i)};  // a new config digest: a new image, same layers
      // Fresh layer blobs every run so nothing is cached: vary one file per layer.
      for (int l = 0; l < 4; ++l) {
        img.layers[l] = test::MakeLayer({test::File(absl::StrCat("layer", l, "/file0"), busybox),
                                         test::File(absl::StrCat("layer", l, "/run"), std::to_string(i)),
                                         test::File(absl::StrCat("layer", l, "/file1"), busybox + "x")});
      }
      auto pushed = test::PushImage(registry_->host(), "bench/pull", {absl::StrCat("r", i)}, img);
      if (!pushed.ok()) Die(std::string(pushed.status().message()));
      cri::PullImageRequest req;
      req.mutable_image()->set_image(absl::StrCat("docker.io/bench/pull:r", i));
      cri::PullImageResponse resp;
      auto t0 = Clock::now();
      Check(berthd_.images().PullImage(test::Ctx().get(), req, &resp), "PullImage");
      pull.Add(t0);
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
    report_["image_pull_unpack_4_layers"] = pull.Json();
    report_["baseline_tar_xzf_same_layers"] = tar.Json();
    report_["ratio_pull_over_tar_median"] = pull.Pct(0.5) / tar.Pct(0.5);
  }

  void PodStartStop() {
    Series start, stop;
    for (int i = 0; i < absl::GetFlag(FLAGS_runs); ++i) {
      auto t0 = Clock::now();
      std::string id = RunPod(absl::StrCat("pss", i));
      start.Add(t0);
      auto t1 = Clock::now();
      RemovePod(id);
      stop.Add(t1);
    }
    report_["RunPodSandbox"] = start.Json();
    report_["StopPodSandbox+RemovePodSandbox"] = stop.Json();
  }

  void ContainerVsRunc() {
    std::string pod = RunPod("cvr");
    Series berth, runc;
    std::string spec_json, rootfs;
    for (int i = 0; i < absl::GetFlag(FLAGS_runs); ++i) {
      auto t0 = Clock::now();
      std::string id = CreateAndStart(pod, "cvr", absl::StrCat("c", i));
      berth.Add(t0);
      if (spec_json.empty()) {
        cri::ContainerStatusRequest req;
        req.set_container_id(id);
        req.set_verbose(true);
        cri::ContainerStatusResponse resp;
        Check(berthd_.runtime().ContainerStatus(test::Ctx().get(), req, &resp), "ContainerStatus");
        json info = json::parse(resp.info().at("info"));
        spec_json = info["runtimeSpec"].dump();
        rootfs = info["rootfs"];
      }
    }
    // The bare baseline: the identical config.json (its own namespaces instead of the pod's) on a
    // copy of the same rootfs, with runc create + runc start and nothing else.
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
    report_["container_create+start"] = berth.Json();
    report_["baseline_bare_runc_create+start"] = runc.Json();
    report_["ratio_container_start_over_runc_median"] = berth.Pct(0.5) / runc.Pct(0.5);
    // conmon RSS per container, measured on this pod's conmons.
    int64_t total = 0, n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      std::string cmd = ReadFile(e.path().string() + "/cmdline").value_or("");
      if (cmd.rfind("/usr/bin/conmon", 0) == 0 && cmd.find(berthd_.state_dir()) != std::string::npos) {
        int pid = 0;
        if (absl::SimpleAtoi(e.path().filename().string(), &pid)) {
          total += RssKb(pid);
          ++n;
        }
      }
    }
    report_["conmon_rss_kb_per_container"] = n ? total / n : 0;
    RemovePod(pod);
  }

  void Lists() {
    for (absl::string_view count_s : absl::StrSplit(absl::GetFlag(FLAGS_list_counts), ',')) {
      int count = 0;
      if (!absl::SimpleAtoi(count_s, &count)) continue;
      std::vector<std::string> pods;
      int per_pod = 10;
      for (int p = 0; p * per_pod < count; ++p) {
        std::string name = absl::StrCat("list", count, "-", p);
        std::string pod = RunPod(name);
        pods.push_back(pod);
        for (int c = 0; c < per_pod && p * per_pod + c < count; ++c) {
          CreateAndStart(pod, name, absl::StrCat("c", c));
        }
      }
      std::this_thread::sleep_for(std::chrono::seconds(absl::GetFlag(FLAGS_list_settle_seconds)));
      Series lc, lp, ls, raw;
      for (int i = 0; i < 20; ++i) {
        cri::ListContainerStatsResponse r;
        auto t0 = Clock::now();
        Check(berthd_.runtime().ListContainerStats(test::Ctx().get(), cri::ListContainerStatsRequest(), &r),
              "ListContainerStats");
        ls.Add(t0);
      }
      for (int i = 0; i < absl::GetFlag(FLAGS_list_calls); ++i) {
        cri::ListContainersResponse r;
        auto t0 = Clock::now();
        Check(berthd_.runtime().ListContainers(test::Ctx().get(), cri::ListContainersRequest(), &r), "ListContainers");
        lc.Add(t0);
        cri::ListPodSandboxResponse pr;
        auto t1 = Clock::now();
        Check(berthd_.runtime().ListPodSandbox(test::Ctx().get(), cri::ListPodSandboxRequest(), &pr), "ListPodSandbox");
        lp.Add(t1);
      }
      // The same call with the answer kept as bytes: the runtime's answer time without the
      // client's protobuf parsing, which is the caller's cost, not berth's.
      const grpc::internal::RpcMethod list_method("/runtime.v1.RuntimeService/ListContainers",
                                                  grpc::internal::RpcMethod::NORMAL_RPC);
      grpc::ByteBuffer request_bytes;
      {
        bool own = false;
        cri::ListContainersRequest empty;
        grpc::GenericSerialize<grpc::ProtoBufferWriter, cri::ListContainersRequest>(empty, &request_bytes, &own)
            .IgnoreError();
      }
      size_t answer_bytes = 0;
      for (int i = 0; i < absl::GetFlag(FLAGS_list_calls); ++i) {
        grpc::ByteBuffer answer;
        auto t0 = Clock::now();
        Check(grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
                  berthd_.channel().get(), list_method, test::Ctx().get(), request_bytes, &answer),
              "ListContainers (bytes)");
        raw.Add(t0);
        answer_bytes = answer.Length();
      }
      report_[absl::StrCat("ListContainers_", count)] = lc.Json();
      report_[absl::StrCat("ListContainers_", count, "_answer_bytes_only")] = raw.Json();
      report_[absl::StrCat("ListContainers_", count, "_answer_size_bytes")] = answer_bytes;
      report_[absl::StrCat("ListContainerStats_", count)] = ls.Json();
      report_[absl::StrCat("ListPodSandbox_", count / per_pod, "_pods")] = lp.Json();
      report_[absl::StrCat("berthd_rss_kb_with_", count, "_containers")] = RssKb(berthd_.pid());
      for (const auto& p : pods) RemovePod(p);
    }
  }

  void Memory() {
    std::vector<std::string> pods;
    for (int i = 0; i < absl::GetFlag(FLAGS_pods); ++i) pods.push_back(RunPod(absl::StrCat("mem", i)));
    report_[absl::StrCat("berthd_rss_kb_with_", pods.size(), "_pods")] = RssKb(berthd_.pid());
    for (const auto& p : pods) RemovePod(p);
  }

  const std::string extra_config_ = absl::StrCat(
      "[runtime]\nsync_writes = ", absl::GetFlag(FLAGS_sync_writes) ? "true" : "false", "\n");
  test::TempDir dir_;
  std::unique_ptr<test::TestRegistry> registry_;
  test::Berthd berthd_;
  json report_ = json::object();
};

}  // namespace
}  // namespace berth::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  berth::bench::Bench b;
  b.Run();
  b.Print();
  return 0;
}
