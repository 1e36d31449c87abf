// CDI (Container Device Interface, cncf-tags/container-device-interface SPEC.md) device injection:
// spec files from /etc/cdi and /var/run/cdi, qualified-name resolution and OCI spec edits.
#ifndef BERTH_RUNTIME_CDI_CDI_H_
#define BERTH_RUNTIME_CDI_CDI_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"

namespace berth::cdi {

// Bounds on what a spec file may hold. Spec files are written by root-owned device drivers, but a
// DRA driver that goes wrong must cost berth an error, not its memory or its stack.
inline constexpr size_t kMaxSpecFileBytes = 1 << 20;
inline constexpr size_t kMaxSpecFilesPerDir = 1024;
inline constexpr size_t kMaxDevicesPerSpec = 4096;
inline constexpr size_t kMaxEditsPerList = 4096;  // entries of any one list (env, mounts, ...)
inline constexpr size_t kMaxStringBytes = 32 * 1024;
inline constexpr size_t kMaxNestingDepth = 32;          // the schema itself needs 7
inline constexpr size_t kMaxYamlNodes = 1 << 20;        // counts alias expansions too
inline constexpr size_t kMaxYamlScalarBytes = 4 << 20;  // likewise
inline constexpr size_t kMaxRequestedDevices = 256;     // per container

// "cdi.k8s.io/<key>": container annotations that request devices (device plugins use these).
inline constexpr absl::string_view kAnnotationPrefix = "cdi.k8s.io/";

// {"/etc/cdi", "/var/run/cdi"}: static specs, then generated ones (which take priority).
std::vector<std::string> DefaultSpecDirs();

// ---- Names -----------------------------------------------------------------------------------

struct QualifiedName {
  std::string vendor;  // "nvidia.com"
  std::string cls;     // "gpu"
  std::string name;    // "0", "all", "mig-1g.5gb-0"
  std::string Kind() const { return vendor + "/" + cls; }
  std::string String() const { return vendor + "/" + cls + "=" + name; }
};

// "vendor.com/class=name" split and checked against the spec's character rules; InvalidArgument
// naming `device` otherwise. "=all" is not special: the spec has no such notion, so it resolves
// only when a spec defines a device named "all" (NVIDIA's do).
absl::StatusOr<QualifiedName> ParseQualifiedName(absl::string_view device);
absl::Status ValidateVendorName(absl::string_view vendor);
absl::Status ValidateClassName(absl::string_view cls);
absl::Status ValidateDeviceName(absl::string_view name);

// The devices a container asks for: CRI's ContainerConfig.CDI_devices names first, then those of
// every "cdi.k8s.io/" annotation (comma-separated, in key order), each once (containerd's order).
// InvalidArgument naming a name that is not fully qualified.
absl::StatusOr<std::vector<std::string>> CollectDeviceNames(
    const std::vector<std::string>& cri_devices,
    const std::map<std::string, std::string>& annotations);

// ---- Parsed specs ----------------------------------------------------------------------------

struct DeviceNode {
  std::string path;       // in the container, absolute
  std::string host_path;  // absolute; empty means `path`
  std::string type;       // "", "b", "c", "u" or "p"
  int64_t major = 0;      // 0: taken from the host node (the CDI library's rule)
  int64_t minor = 0;
  std::optional<uint32_t> file_mode;
  std::string permissions;  // subset of "rwm", "" = "rwm", "none" = no access rule
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
};

struct Mount {
  std::string host_path;
  std::string container_path;
  std::string type;
  std::vector<std::string> options;
};

struct Hook {
  std::string
      hook_name;  // prestart, createRuntime, createContainer, startContainer, poststart, poststop
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::optional<int64_t> timeout;  // seconds, > 0
};

struct ContainerEdits {
  std::vector<std::string> env;  // KEY=VALUE
  std::vector<DeviceNode> device_nodes;
  std::vector<Mount> mounts;
  std::vector<Hook> hooks;
  std::vector<uint32_t> additional_gids;
  // Parsed and validated, but berth does not apply them: ApplyDevices refuses a device whose
  // edits use them (Unimplemented) rather than start a container without what it asked for.
  bool has_intel_rdt = false;
  bool has_net_devices = false;

  bool empty() const {
    return env.empty() && device_nodes.empty() && mounts.empty() && hooks.empty() &&
           additional_gids.empty() && !has_intel_rdt && !has_net_devices;
  }
};

struct Device {
  std::string name;
  ContainerEdits edits;
};

struct Spec {
  std::string path;     // the file it came from (or what the caller called it)
  int priority = 0;     // index of its directory; higher wins
  std::string version;  // cdiVersion as written
  std::string kind;     // vendor/class
  std::string vendor;
  std::string cls;
  ContainerEdits edits;  // applied once when any of its devices is
  std::vector<Device> devices;

  const Device* FindDevice(absl::string_view name) const;
};

enum class SpecFormat { kJson, kYaml };

// Parses and validates one spec file's text. Strict, as the CDI library's loader: unknown fields,
// cdiVersion outside 0.3.0..1.1.0 (a leading "v" allowed), a version lower than the fields used
// need, bad names, relative paths, unknown hook names, duplicate device names, no devices,
// a device without edits, or any bound exceeded → InvalidArgument "CDI spec <origin>: <where>:
// <what>". Field names match case-insensitively (Go's encoding/json does, so files that work
// with containerd and CRI-O work here). Never throws.
absl::StatusOr<Spec> ParseSpec(absl::string_view text, SpecFormat format, absl::string_view origin);

// YAML (first document) as JSON: plain scalars resolve as Go's yaml.v2 (the CDI library's) for
// ints (so `fileMode: 0666` is octal, 0x hex), null and true/false (YAML 1.2's, not yes/no/on),
// anything else a string; quoted ones stay strings. Aliases are expanded within kMaxYamlNodes and
// kMaxYamlScalarBytes; duplicate keys and non-scalar keys are refused. Never throws.
absl::StatusOr<nlohmann::json> YamlToJson(absl::string_view text);

// ---- Applying edits --------------------------------------------------------------------------

// A requested device and the spec that defines it (kept alive by the shared_ptr).
struct ResolvedDevice {
  std::string qualified_name;
  std::shared_ptr<const Spec> spec;
  const Device* device = nullptr;  // points into *spec
};

// Edits `oci_spec` (berth's config.json as JSON) for `devices`, in order: for each device, its
// spec's own edits the first time that spec comes up, then the device's. All or nothing: on error
// `oci_spec` is left as it was.
//  - process.env: KEY=VALUE replaces the entry with the same key in place, else is appended.
//  - linux.devices: replaces any entry with the same path; type/major/minor/fileMode missing from
//    the spec are read by lstat of hostPath (a node that is missing or not a device →
//    InvalidArgument unless type and major are given); uid/gid default to process.user's when those
//    are > 0.
//  - linux.resources.devices: an allow rule per b/c/u node with its permissions ("rwm" default,
//    none for "none").
//  - mounts: replace a mount at the same destination, then all mounts are sorted stably by
//    depth of destination (parents before children, as containerd and CRI-O do).
//  - hooks.<hookName>: appended.
//  - process.user.additionalGids: appended, without 0 and duplicates.
absl::Status ApplyDevices(const std::vector<ResolvedDevice>& devices, nlohmann::json* oci_spec);

// ---- Registry --------------------------------------------------------------------------------

// A spec file that could not be used, and why (InvalidArgument from ParseSpec, a read error, or a
// device name defined twice in one directory).
struct SpecFileError {
  std::string path;
  std::string kind;  // when the file got far enough to say; else empty
  std::string message;
};

// The spec files of a list of directories, re-read when they change. Files ending in .json are
// JSON, .yaml/.yml YAML; others and subdirectories are ignored. For one qualified name a spec in a
// later directory wins over one in an earlier; two specs in the SAME directory that define it
// cancel out (the name is unresolvable, both files get an error), as in the CDI library's cache.
// A broken file is logged once per version and hides nothing but its own devices; its error is
// named in the message when a device of its kind (or of any kind, if unreadable) is not found.
// Thread-safe.
class Registry {
 public:
  explicit Registry(std::vector<std::string> spec_dirs = DefaultSpecDirs());
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // The devices named (fully qualified), duplicates dropped, order kept. Rescans first if a file
  // was added, removed, or changed (name, size, mtime, ctime, inode) since the last call: a
  // readdir and an fstatat per file, no reading or parsing when nothing changed. InvalidArgument
  // naming a malformed or unknown device (and its kind when no spec defines the kind).
  absl::StatusOr<std::vector<ResolvedDevice>> Resolve(const std::vector<std::string>& devices)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Resolve + ApplyDevices; nothing to do (and no scan) for an empty list.
  absl::Status InjectDevices(const std::vector<std::string>& devices, nlohmann::json* oci_spec)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Every resolvable qualified name, sorted (rescans as Resolve does).
  std::vector<std::string> ListDevices() ABSL_LOCKS_EXCLUDED(mu_);
  // The files refused at the last scan (rescans as Resolve does).
  std::vector<SpecFileError> Errors() ABSL_LOCKS_EXCLUDED(mu_);

  const std::vector<std::string>& spec_dirs() const { return dirs_; }

 private:
  struct FileSig {
    std::string path;
    int priority = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    ino_t ino = 0;
    dev_t dev = 0;
    bool operator==(const FileSig&) const = default;
  };
  struct FileEntry {
    FileSig sig;
    std::shared_ptr<const Spec> spec;  // null when the file is broken
    SpecFileError error;
  };
  struct DeviceRef {
    std::shared_ptr<const Spec> spec;
    const Device* device = nullptr;
  };

  void RefreshLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<FileSig> ScanLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  FileEntry Load(const FileSig& sig);
  void RebuildIndexLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::vector<std::string> dirs_;
  absl::Mutex mu_;
  bool scanned_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<FileEntry> files_ ABSL_GUARDED_BY(mu_);  // scan order: directory, then name
  std::vector<SpecFileError> dir_errors_ ABSL_GUARDED_BY(mu_);
  std::vector<SpecFileError> conflict_errors_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, DeviceRef> devices_ ABSL_GUARDED_BY(mu_);      // qualified name → device
  std::map<std::string, std::string> conflicts_ ABSL_GUARDED_BY(mu_);  // qualified name → why
};

}  // namespace berth::cdi

#endif  // BERTH_RUNTIME_CDI_CDI_H_
