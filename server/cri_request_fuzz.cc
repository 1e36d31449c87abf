// libFuzzer target: CRI requests, as kubelet or anyone who reaches berthd's socket sends them,
// through the real RuntimeService and ImageService handlers. Below them: an engine over the shared
// fakes (runtime/testing/engine_fakes.h: oci::FakeRuntime, fake mounts, a fake pod network, a real
// StateDB), a real image store, a stats collector and a streaming server on loopback, all made
// once per process in a scratch root (a tmpfs at /tmp/berth-cri-fuzz.XXXXXX, gone at exit). Input
// format: server/cri_request_fuzz.h (byte 0 picks the method and the faults, the rest is the
// request; bytes that do not parse are skipped). Half the mutations are made to the request as a
// message (LLVMFuzzerCustomMutator below): byte mutations seldom keep its length prefixes right.
//
// Host paths in the fields kubelet chooses (a pod's log_directory, a mount's host_path, a
// checkpoint's location, a Localhost seccomp profile, a checkpoint archive named as the image) are
// moved below <scratch>/host, as kubelet's own paths lie below its root; what a request adds to
// them (a log_path, names, ids) is what berth must keep inside.
//
// Checked after every call:
// - it returned within kCallLimit (a watchdog aborts otherwise, naming the method);
// - its code is one a handler may answer: never UNKNOWN or DATA_LOSS, and INTERNAL only when the
//   input made a fake fail; an answer parses again (no invalid UTF-8 for kubelet to choke on);
// - nothing was written outside the scratch root. The process runs in a mount namespace of its
//   own where every filesystem is read-only except the scratch root (a tmpfs), /proc and the
//   directories libFuzzer writes to, so any write elsewhere fails with EROFS, and a status or a
//   log line naming EROFS is an escape. The records are checked as well: a container's log file
//   is inside its pod's log directory, bundles and pod directories inside the state dir;
// - descriptors and threads stay bounded.
// Between inputs the engine returns to its baseline: pods and containers an input made are
// removed, the standing pod and container are made again when an input stopped, removed or
// changed them, the image is put back when an input removed it.
//
// BERTH_FUZZ_VERBOSE=1 prints each call and its answer, BERTH_FUZZ_LOG=1 berth's log lines.
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "glog/logging.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/server_context.h"
#include "proto/runtime/v1/api.grpc.pb.h"
#include "runtime/stats/collector.h"
#include "runtime/testing/engine_fakes.h"
#include "server/config.h"
#include "server/cri_request_fuzz.h"
#include "server/cri_request_fuzz_host.h"
#include "server/cri_request_fuzz_world.h"
#include "server/image_service.h"
#include "server/runtime_service.h"
#include "server/streaming/server.h"
#include "storage/images/image_store.h"
#include "util/fs.h"

namespace berth::server::fuzz {
namespace {

// How far descriptors and threads may grow past their count after the first inputs.
constexpr int kFdSlack = 128;
constexpr int kThreadSlack = 32;

// ---------------------------------------------------------------------------------------------
// One call.

struct Process {
  std::string scratch;
  int parent_fd = -1;  // the scratch root's parent as the host sees it, for the cleanup
  bool confined = false;
  bool verbose = false;  // BERTH_FUZZ_VERBOSE=1: each call and its answer on stderr
  std::unique_ptr<EscapeSink> sink;
  std::unique_ptr<Watchdog> watchdog;
  std::unique_ptr<World> world;
  uint64_t inputs = 0;
  int fds = -1, threads = -1;  // after the first inputs
};

Process* process = nullptr;

void Cleanup() {
  if (process == nullptr) return;
  process->world.reset();
  process->watchdog.reset();
  if (process->sink) google::RemoveLogSink(process->sink.get());
  if (process->confined) {
    umount2(process->scratch.c_str(), MNT_DETACH);
    unlinkat(process->parent_fd, std::filesystem::path(process->scratch).filename().c_str(),
             AT_REMOVEDIR);
  } else {
    RemoveAll(process->scratch).IgnoreError();
  }
}

void CheckMethodTable();

void Setup(int argc, char** argv) {
  process = new Process;
  process->verbose = getenv("BERTH_FUZZ_VERBOSE") != nullptr;
  CheckMethodTable();
  const std::vector<std::string> writable = FuzzerOutputDirs(argc, argv);
  std::string tmpl = "/tmp/berth-cri-fuzz.XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) Fail(absl::StrCat("mkdtemp: ", strerror(errno)));
  process->scratch = tmpl;
  process->parent_fd = open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC);
  process->confined = Confine(process->scratch, writable);
  if (process->confined) {
    // The detector must hold: beside the scratch root nothing can be made.
    const std::string probe = process->scratch + ".probe";
    const int fd = open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      close(fd);
      unlink(probe.c_str());
      Fail("a file beside the scratch root could be made: the read-only view does not hold");
    }
    if (errno != EROFS) Fail(absl::StrCat("making ", probe, ": ", strerror(errno), ", not EROFS"));
  } else {
    fprintf(stderr,
            "cri_request_fuzz: no mount namespace of its own here (%s): writes outside %s are "
            "not made read-only, only the records are checked\n",
            strerror(errno), process->scratch.c_str());
  }
  // berth's log lines go to the sink only (BERTH_FUZZ_LOG=1: to stderr as well).
  google::InitGoogleLogging("cri_request_fuzz");
  FLAGS_logtostderr = false;
  FLAGS_minloglevel = google::GLOG_WARNING;
  FLAGS_stderrthreshold =
      getenv("BERTH_FUZZ_LOG") != nullptr ? google::GLOG_INFO : google::GLOG_FATAL;
  for (int sev = google::GLOG_INFO; sev < google::NUM_SEVERITIES; ++sev) {
    google::SetLogDestination(sev, "");  // no log files
  }
  process->sink = std::make_unique<EscapeSink>();
  google::AddLogSink(process->sink.get());
  google::protobuf::SetLogHandler(nullptr);  // requests that do not parse are not news
  process->watchdog = std::make_unique<Watchdog>();
  process->world = std::make_unique<World>(process->scratch);
  process->world->Start();
  // Registered last, so it runs before the destructors of what starting the world made (RocksDB's
  // statics among them): the world must go first.
  atexit(Cleanup);
}

void CheckEscapes(const char* method, const std::string& message) {
  if (absl::StrContains(message, Erofs())) {
    Fail(absl::StrCat(method, " wrote outside the scratch root: ", message));
  }
  std::string logged = process->sink->Take();
  if (!logged.empty()) {
    Fail(absl::StrCat("berth wrote outside the scratch root (during or after ", method,
                      "): ", logged));
  }
}

void CheckStatus(const char* method, const grpc::Status& st, bool faults) {
  const int code = st.error_code();
  if (code < grpc::StatusCode::OK || code > grpc::StatusCode::UNAUTHENTICATED) {
    Fail(absl::StrCat(method, " answered code ", code));
  }
  CheckEscapes(method, st.error_message());
  if (code == grpc::StatusCode::UNKNOWN || code == grpc::StatusCode::DATA_LOSS ||
      (code == grpc::StatusCode::INTERNAL && !faults)) {
    Fail(absl::StrCat(method, " answered ", code, ": ", st.error_message()));
  }
}

// Parses the request, rewrites it, calls the handler and checks what it answered; bytes that are
// no such request are skipped.
template <typename Req, typename Resp, typename Svc>
void Call(const char* method, Svc* svc,
          grpc::Status (Svc::*handler)(grpc::ServerContext*, const Req*, Resp*),
          const uint8_t* data, size_t size, uint8_t faults) {
  Req req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return;
  World& w = *process->world;
  w.Rewrite(&req);
  w.InjectFaults(faults);
  Resp resp;
  grpc::Status st;
  {
    grpc::ServerContext ctx;
    process->watchdog->Arm(method);
    st = (svc->*handler)(&ctx, &req, &resp);
    process->watchdog->Disarm();
  }
  if (process->verbose) {
    fprintf(stderr, "%s%s: %d %s\n", method, faults != kNoFault ? " (faults)" : "", st.error_code(),
            st.error_message().substr(0, 300).c_str());
  }
  CheckStatus(method, st, faults != kNoFault);
  if (st.ok()) {
    // What kubelet receives must parse on its side: proto3 strings must be UTF-8.
    Resp again;
    if (!again.ParseFromString(resp.SerializeAsString())) {
      Fail(absl::StrCat(method, " answered a message that does not parse: ",
                        resp.ShortDebugString().substr(0, 2000)));
    }
  }
  // What a creation answers names what it made.
  if constexpr (std::is_same_v<Resp, cri::RunPodSandboxResponse>) {
    if (st.ok() && !w.HasPod(resp.pod_sandbox_id())) {
      Fail(absl::StrCat(method, " answered pod ", resp.pod_sandbox_id(), ", which is not there"));
    }
  }
  if constexpr (std::is_same_v<Resp, cri::CreateContainerResponse>) {
    if (st.ok() && !w.HasContainer(resp.container_id())) {
      Fail(absl::StrCat(method, " answered container ", resp.container_id(),
                        ", which is not there"));
    }
  }
  w.CheckRecords();
}

template <typename H>
struct HandlerOf;
template <typename Svc, typename Req, typename Resp>
struct HandlerOf<grpc::Status (Svc::*)(grpc::ServerContext*, const Req*, Resp*)> {
  using Service = Svc;
  using Request = Req;
};

struct Method {
  CriFuzzMethod id;
  const char* name;
  const Message* request;  // the request type's default instance, for the mutator
  void (*call)(const char* name, const uint8_t* data, size_t size, uint8_t faults);
};

// The table entry of one handler.
template <auto H>
Method M(CriFuzzMethod id, const char* name) {
  using T = HandlerOf<decltype(H)>;
  return {id, name, &T::Request::default_instance(),
          [](const char* name, const uint8_t* data, size_t size, uint8_t faults) {
            World& w = *process->world;
            if constexpr (std::is_same_v<typename T::Service, RuntimeServiceImpl>) {
              Call(name, w.runtime(), H, data, size, faults);
            } else {
              Call(name, w.images(), H, data, size, faults);
            }
          }};
}

using R = RuntimeServiceImpl;
using I = ImageServiceImpl;

// In CriFuzzMethod's order (checked at start).
const std::vector<Method>& Methods() {
  static const std::vector<Method>* methods = new std::vector<Method>{
      M<&R::Version>(kVersion, "Version"),
      M<&R::Status>(kStatus, "Status"),
      M<&R::UpdateRuntimeConfig>(kUpdateRuntimeConfig, "UpdateRuntimeConfig"),
      M<&R::RuntimeConfig>(kRuntimeConfig, "RuntimeConfig"),
      M<&R::RunPodSandbox>(kRunPodSandbox, "RunPodSandbox"),
      M<&R::StopPodSandbox>(kStopPodSandbox, "StopPodSandbox"),
      M<&R::RemovePodSandbox>(kRemovePodSandbox, "RemovePodSandbox"),
      M<&R::PodSandboxStatus>(kPodSandboxStatus, "PodSandboxStatus"),
      M<&R::ListPodSandbox>(kListPodSandbox, "ListPodSandbox"),
      M<&R::UpdatePodSandboxResources>(kUpdatePodSandboxResources, "UpdatePodSandboxResources"),
      M<&R::CreateContainer>(kCreateContainer, "CreateContainer"),
      M<&R::StartContainer>(kStartContainer, "StartContainer"),
      M<&R::StopContainer>(kStopContainer, "StopContainer"),
      M<&R::RemoveContainer>(kRemoveContainer, "RemoveContainer"),
      M<&R::ListContainers>(kListContainers, "ListContainers"),
      M<&R::ContainerStatus>(kContainerStatus, "ContainerStatus"),
      M<&R::UpdateContainerResources>(kUpdateContainerResources, "UpdateContainerResources"),
      M<&R::ReopenContainerLog>(kReopenContainerLog, "ReopenContainerLog"),
      M<&R::ExecSync>(kExecSync, "ExecSync"),
      M<&R::Exec>(kExec, "Exec"),
      M<&R::Attach>(kAttach, "Attach"),
      M<&R::PortForward>(kPortForward, "PortForward"),
      M<&R::ContainerStats>(kContainerStats, "ContainerStats"),
      M<&R::ListContainerStats>(kListContainerStats, "ListContainerStats"),
      M<&R::PodSandboxStats>(kPodSandboxStats, "PodSandboxStats"),
      M<&R::ListPodSandboxStats>(kListPodSandboxStats, "ListPodSandboxStats"),
      M<&R::ListMetricDescriptors>(kListMetricDescriptors, "ListMetricDescriptors"),
      M<&R::ListPodSandboxMetrics>(kListPodSandboxMetrics, "ListPodSandboxMetrics"),
      M<&R::CheckpointContainer>(kCheckpointContainer, "CheckpointContainer"),
      M<&I::ListImages>(kListImages, "ListImages"),
      M<&I::ImageStatus>(kImageStatus, "ImageStatus"),
      M<&I::RemoveImage>(kRemoveImage, "RemoveImage"),
      M<&I::ImageFsInfo>(kImageFsInfo, "ImageFsInfo"),
  };
  return *methods;
}

void CheckMethodTable() {
  const std::vector<Method>& methods = Methods();
  if (methods.size() != kMethodCount) Fail("the method table misses a CriFuzzMethod");
  for (size_t i = 0; i < methods.size(); ++i) {
    if (methods[i].id != i) Fail(absl::StrCat(methods[i].name, " is out of CriFuzzMethod's order"));
  }
}

// Descriptors and threads, measured once the first inputs have opened what stays open.
void CheckBounds() {
  if (process->inputs % 256 != 0) return;
  const int fds = CountEntries("/proc/self/fd");
  const int threads = CountEntries("/proc/self/task");
  if (process->fds < 0) {
    process->fds = fds;
    process->threads = threads;
    return;
  }
  if (fds > process->fds + kFdSlack) {
    Fail(absl::StrCat(fds, " descriptors open, ", process->fds, " after the first inputs"));
  }
  if (threads > process->threads + kThreadSlack) {
    Fail(absl::StrCat(threads, " threads, ", process->threads, " after the first inputs"));
  }
}

// libFuzzer flags this target runs best with, unless its command line sets them (libFuzzer reads
// argv after LLVMFuzzerInitialize). Every input runs much of the engine, and of the baseline's
// restoration, over a large instrumented binary; measured over 20 s from the seeds:
// - -entropic=0: the entropic schedule's per-feature frequency update took 60% of the time
//   (26 executions/s with it, 402 without);
// - -detect_leaks=0: nearly every input leaves more allocations than frees (the engine's state,
//   RocksDB's memtable, caches), so libFuzzer ran each one twice and scanned the heap with LSan
//   (402 executions/s with it, 1427 without). Leaks are still looked for at exit, after the world
//   is destroyed, and growth is bounded by -rss_limit_mb.
void AddFuzzerFlags(int* argc, char*** argv) {
  static std::vector<char*> args;
  args.assign(*argv, *argv + *argc);
  for (const char* flag : {"-entropic=0", "-detect_leaks=0"}) {
    const absl::string_view name(flag, strchr(flag, '=') - flag + 1);
    bool set = false;
    for (int i = 1; i < *argc; ++i) set = set || absl::StartsWith((*argv)[i], name);
    if (!set) args.push_back(const_cast<char*>(flag));
  }
  *argc = static_cast<int>(args.size());
  args.push_back(nullptr);
  *argv = args.data();
}

}  // namespace
}  // namespace berth::server::fuzz

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  namespace f = berth::server::fuzz;
  if (f::process == nullptr) f::Setup(argc ? *argc : 0, argv ? *argv : nullptr);
  if (argc != nullptr && argv != nullptr) f::AddFuzzerFlags(argc, argv);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace f = berth::server::fuzz;
  if (f::process == nullptr) f::Setup(0, nullptr);
  if (size == 0) return 0;
  const uint8_t method = data[0] & 0x3f;
  const uint8_t faults = data[0] >> 6;
  if (method < f::kMethodCount) {
    const f::Method& m = f::Methods()[method];
    m.call(m.name, data + 1, size - 1, faults);
  }
  f::process->watchdog->Arm("restoring the baseline");
  f::process->world->Restore();
  f::process->watchdog->Disarm();
  f::CheckEscapes("restoring the baseline", "");
  ++f::process->inputs;
  f::CheckBounds();
  return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  namespace f = berth::server::fuzz;
  std::minstd_rand rng(seed);
  if (size == 0 || rng() % 2 == 0) return LLVMFuzzerMutate(data, size, max_size);
  const uint8_t method = data[0] & 0x3f;
  if (method >= f::kMethodCount || rng() % 16 == 0) {
    data[0] = static_cast<uint8_t>((data[0] & 0xc0) | rng() % f::kMethodCount);
    return size;
  }
  if (rng() % 16 == 0) {
    data[0] = static_cast<uint8_t>(method | (rng() % 4) << 6);
    return size;
  }
  std::unique_ptr<google::protobuf::Message> req(f::Methods()[method].request->New());
  std::string out;
  if (!req->ParseFromArray(data + 1, static_cast<int>(size - 1)) ||
      !f::MutateRequest(req.get(), rng) || !req->SerializeToString(&out) ||
      out.size() + 1 > max_size) {
    return LLVMFuzzerMutate(data, size, max_size);
  }
  memcpy(data + 1, out.data(), out.size());
  return out.size() + 1;
}
