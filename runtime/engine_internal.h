// Pieces the engine's files share (internal to runtime/: the engine's own helpers).
#ifndef BERTH_RUNTIME_ENGINE_INTERNAL_H_
#define BERTH_RUNTIME_ENGINE_INTERNAL_H_

#include "runtime/engine.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "glog/logging.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "nlohmann/json.hpp"
#include "runtime/pod_files.h"
#include "runtime/cgroups/paths.h"
#include "runtime/security_adapter.h"
#include "runtime/signals.h"
#include "runtime/spec.h"
#include "runtime/cdi/cdi.h"
#include "runtime/image_volumes.h"
#include "runtime/record_index.h"
#include "runtime/state_machine.h"
#include "runtime/userns.h"
#include "util/crash_point.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/subprocess.h"

namespace berth::engine {

namespace cri = runtime::v1;
using berth::v1::Container;
using berth::v1::Sandbox;
using json = nlohmann::json;

// Runs f and turns any exception (nlohmann on a bad type, std::bad_alloc, a failed thread) into
// an Internal status naming `what`: no exception ever crosses the engine's public face, where
// it would skip the callers' releases and reach gRPC.
template <typename F>
auto NoThrow(absl::string_view what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    LOG(ERROR) << what << ": unexpected exception: " << e.what();
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  } catch (...) {
    LOG(ERROR) << what << ": unexpected exception";
    return absl::InternalError(absl::StrCat(what, ": unexpected exception"));
  }
}

// log_directory/log_path, cleaned, and never outside log_directory: conmon writes it as root.
inline absl::StatusOr<std::string> LogPathInside(const std::string& log_directory,
                                                 const std::string& log_path) {
  if (log_directory[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("sandbox_config.log_directory \"", log_directory,
                                                   "\" is not an absolute path"));
  }
  std::filesystem::path dir = std::filesystem::path(log_directory).lexically_normal();
  std::filesystem::path rel = std::filesystem::path(log_path).lexically_normal();
  // "." is what "c/.." and "./" come to: the directory itself, not a file in it.
  if (rel.is_absolute() || rel.empty() || *rel.begin() == ".." || !rel.has_filename() ||
      rel == "." || log_path.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.log_path \"", log_path,
                     "\" must be a relative path inside the pod's log directory"));
  }
  // conmon makes each missing directory and opens the file: a name longer than NAME_MAX or a
  // path longer than PATH_MAX fails there with ENAMETOOLONG, after the container was made.
  for (const auto& [field, path] :
       {std::pair{"sandbox_config.log_directory", &dir}, std::pair{"config.log_path", &rel}}) {
    for (const std::filesystem::path& part : *path) {
      if (part.native().size() > NAME_MAX) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, " has a name of ", part.native().size(),
                         " bytes, longer than NAME_MAX (", NAME_MAX, ")"));
      }
    }
  }
  std::string full = (dir / rel).string();
  if (full.size() >= PATH_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.log_path: the log file's path inside sandbox_config.log_directory is ",
                     full.size(), " bytes, longer than PATH_MAX (", PATH_MAX, ")"));
  }
  return full;
}

// How long to wait for the exit file after SIGKILL before asking runc directly.
inline constexpr absl::Duration kKillGrace = absl::Seconds(10);

// LookUpByIdOrPrefix with the error in *error and null on failure, for the Find* helpers.
template <typename Obj>
std::shared_ptr<Obj> FindByIdOrPrefix(
    const absl::flat_hash_map<std::string, std::shared_ptr<Obj>>& objects, const std::string& key,
    absl::string_view kind, absl::string_view field, absl::Status* error) {
  auto found = LookUpByIdOrPrefix(objects, key, kind, field);
  if (!found.ok()) {
    *error = found.status();
    return nullptr;
  }
  return *std::move(found);
}

// What the OCI specs of a pod's containers (infra too) take from its record (sandbox_status.cc);
// it points into `rec`, which must outlive it.
PodContext PodContextOf(const berth::v1::Sandbox& rec);

// Removes a scratch directory when the scope ends; a failure is logged (nothing to return it to).
inline auto RemoveWhenDone(std::string dir) {
  return absl::Cleanup([dir = std::move(dir)] {
    if (absl::Status st = RemoveAll(dir); !st.ok()) {
      LOG(WARNING) << "removing scratch directory " << dir << ": " << st;
    }
  });
}

inline int64_t NowNs() { return absl::ToUnixNanos(absl::Now()); }

// For saves on paths that cannot fail the caller (recovery, a stop already in progress).
inline void LogIfFailed(const absl::Status& st, const std::string& id) {
  if (!st.ok()) LOG(ERROR) << "saving container " << id << ": " << st;
}

inline std::string Deterministic(const google::protobuf::MessageLite& m) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream sos(&out);
    google::protobuf::io::CodedOutputStream cos(&sos);
    cos.SetSerializationDeterministic(true);
    m.SerializeToCodedStream(&cos);
  }
  return out;
}

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_ENGINE_INTERNAL_H_
