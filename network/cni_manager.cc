// CNI plugin chains run per the CNI spec (libcni's behaviour), with an on-disk cache of each ADD so
// DEL after a berthd restart or config change uses the config and result the pod was set up with.
#include "network/cni_manager.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "glog/logging.h"
#include "network/netns.h"
#include "nlohmann/json.hpp"
#include "util/fd.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace berth::network {

using nlohmann::json;

// The config dir as last read: `signature` tells whether it must be read again.
struct CniManager::Loaded {
  std::string signature;
  absl::StatusOr<std::shared_ptr<const CniNetworkConfig>> config;
};

namespace {

constexpr char kIfName[] = "eth0";
constexpr char kCacheKind[] = "berth-cni-cache/v1";

// Names, sizes and mtimes of every candidate file plus the dir's own mtime: cheap to compute on
// each Ready() call and changes whenever a config is added, replaced, edited or removed.
std::string ConfDirSignature(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) return "absent";
  std::vector<std::string> parts = {absl::StrCat(st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec)};
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
  if (!d) return "unreadable";
  while (dirent* e = readdir(d.get())) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    std::string p = absl::StrCat(dir, "/", n);
    if (stat(p.c_str(), &st) != 0) continue;
    parts.push_back(
        absl::StrCat(n, ":", st.st_size, ":", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec));
  }
  std::sort(parts.begin() + 1, parts.end());
  return absl::StrJoin(parts, "|");
}

absl::Status CheckPodId(const std::string& pod_id) {
  if (pod_id.empty() || pod_id.find('/') != std::string::npos || pod_id == "." || pod_id == "..") {
    return absl::InvalidArgumentError(absl::StrCat("invalid pod id \"", pod_id, "\""));
  }
  return absl::OkStatus();
}

std::string CniArgs(const PodNetworkRequest& r) {
  return absl::StrCat("IgnoreUnknown=1;K8S_POD_NAMESPACE=", r.namespace_, ";K8S_POD_NAME=", r.name,
                      ";K8S_POD_INFRA_CONTAINER_ID=", r.pod_id, ";K8S_POD_UID=", r.uid);
}

// Capability arguments as libcni names them; each plugin gets only those it declares.
json RuntimeConfig(const PodNetworkRequest& r) {
  json rc = json::object();
  if (!r.port_mappings.empty()) {
    json pms = json::array();
    for (const PortMapping& pm : r.port_mappings) {
      json m = {{"hostPort", pm.host_port},
                {"containerPort", pm.container_port},
                {"protocol", pm.protocol.empty() ? "tcp" : pm.protocol}};
      if (!pm.host_ip.empty()) m["hostIP"] = pm.host_ip;
      pms.push_back(std::move(m));
    }
    rc["portMappings"] = std::move(pms);
  }
  if (r.bandwidth) {
    rc["bandwidth"] = {{"ingressRate", r.bandwidth->ingress_rate},
                       {"ingressBurst", r.bandwidth->ingress_burst},
                       {"egressRate", r.bandwidth->egress_rate},
                       {"egressBurst", r.bandwidth->egress_burst}};
  }
  if (r.dns && !r.dns->empty()) {
    rc["dns"] = {
        {"servers", r.dns->servers}, {"searches", r.dns->searches}, {"options", r.dns->options}};
  }
  return rc;
}

// The stdin of plugin `index`: its own config plus the list's name and version, the previous
// plugin's result, and the runtime arguments for the capabilities it declares.
json PluginConfig(const CniNetworkConfig& net, size_t index, const json& prev_result,
                  const json& runtime_config) {
  json conf = net.plugins()[index];
  conf["name"] = net.name;
  conf["cniVersion"] = net.cni_version;
  if (!prev_result.is_null()) conf["prevResult"] = prev_result;
  if (auto caps = conf.find("capabilities"); caps != conf.end() && caps->is_object()) {
    json rc = conf.contains("runtimeConfig") && conf["runtimeConfig"].is_object()
                  ? conf["runtimeConfig"]
                  : json::object();
    for (auto& [cap, enabled] : caps->items()) {
      if (enabled.is_boolean() && enabled.get<bool>() && runtime_config.contains(cap)) {
        rc[cap] = runtime_config[cap];
      }
    }
    if (!rc.empty()) conf["runtimeConfig"] = std::move(rc);
  }
  return conf;
}

struct Invocation {
  std::string command;  // ADD, CHECK or DEL
  std::string pod_id;
  std::string netns;
  std::string cni_args;
};

absl::Status PluginFailure(const std::string& type, const Invocation& inv, const RunResult& r) {
  std::string what =
      absl::StrCat("CNI plugin \"", type, "\" ", inv.command, " for pod \"", inv.pod_id, "\"");
  if (r.term_signal != 0) {
    return absl::InternalError(absl::StrCat(what, " was killed by signal ", r.term_signal));
  }
  std::optional<CniError> e = ParseCniError(r.out);
  if (!e) e = ParseCniError(r.err);
  if (e) {
    std::string msg = absl::StrCat(what, " failed: ", e->msg.empty() ? "(no message)" : e->msg,
                                   e->details.empty() ? "" : absl::StrCat(": ", e->details),
                                   " (CNI error code ", e->code, ")");
    // 11 is the spec's "try again later".
    return e->code == 11 ? absl::UnavailableError(msg) : absl::InternalError(msg);
  }
  std::string out = r.err.empty() ? r.out : r.err;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  if (out.size() > 1000) out = out.substr(0, 1000) + "...";
  return absl::InternalError(
      absl::StrCat(what, " exited with ", r.exit_code, out.empty() ? "" : ": ", out));
}

}  // namespace

CniManager::CniManager(PrivateKey, CniOptions options) : options_(std::move(options)) {}
CniManager::~CniManager() = default;

absl::StatusOr<std::unique_ptr<CniManager>> CniManager::Create(CniOptions options) {
  if (options.conf_dir.empty()) return absl::InvalidArgumentError("CNI config dir is empty");
  if (options.bin_dirs.empty()) return absl::InvalidArgumentError("no CNI plugin directories");
  if (options.cache_dir.empty()) return absl::InvalidArgumentError("CNI cache dir is empty");
  if (options.plugin_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("CNI plugin timeout must be positive");
  }
  if (absl::Status s = MakeDirs(options.cache_dir, 0700); !s.ok()) return s;
  auto m = std::make_unique<CniManager>(PrivateKey(), std::move(options));
  if (absl::Status s = m->Ready(); !s.ok()) {
    LOG(WARNING) << "CNI network not ready yet: " << s.message();
  }
  return m;
}

std::shared_ptr<const CniManager::Loaded> CniManager::Current() const {
  absl::MutexLock lock(&mu_);
  std::string sig = ConfDirSignature(options_.conf_dir);
  if (loaded_ && loaded_->signature == sig) return loaded_;
  auto l = std::make_shared<Loaded>();
  l->signature = sig;
  absl::StatusOr<CniNetworkConfig> c = LoadFirstCniConfig(options_.conf_dir);
  if (c.ok()) {
    LOG(INFO) << "CNI network \"" << c->name << "\" (version " << c->cni_version << ") from "
              << c->source_path;
    l->config = std::make_shared<const CniNetworkConfig>(*std::move(c));
  } else {
    l->config = c.status();
  }
  loaded_ = l;
  return l;
}

absl::StatusOr<std::shared_ptr<const CniNetworkConfig>> CniManager::ReadyConfig() const {
  std::shared_ptr<const Loaded> l = Current();
  if (!l->config.ok()) return l->config.status();
  for (const json& p : (*l->config)->plugins()) {
    absl::StatusOr<std::string> bin =
        FindCniPlugin(p["type"].get<std::string>(), options_.bin_dirs);
    if (!bin.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("CNI network \"", (*l->config)->name,
                                                        "\" from ", (*l->config)->source_path, ": ",
                                                        bin.status().message()));
    }
  }
  return *l->config;
}

absl::Status CniManager::Ready() const { return ReadyConfig().status(); }

std::string CniManager::NetworkName() const {
  auto c = ReadyConfig();
  return c.ok() ? (*c)->name : std::string();
}

namespace {

struct CacheEntry {
  CniNetworkConfig config;
  json runtime_config;
  json result;  // null until ADD completed
};

std::string CacheDir(const CniOptions& o, const std::string& pod_id) {
  return absl::StrCat(o.cache_dir, "/", pod_id);
}

absl::Status WriteCache(const CniOptions& o, const Invocation& inv, const CniNetworkConfig& net,
                        const json& runtime_config, const json& result) {
  std::string dir = CacheDir(o, inv.pod_id);
  if (absl::Status s = MakeDirs(dir, 0700); !s.ok()) return s;
  json j = {{"kind", kCacheKind}, {"containerId", inv.pod_id},
            {"ifName", kIfName},  {"networkName", net.name},
            {"netns", inv.netns}, {"cniArgs", inv.cni_args},
            {"config", net.list}, {"runtimeConfig", runtime_config},
            {"result", result}};
  return WriteFileAtomic(absl::StrCat(dir, "/", net.name, ".json"), j.dump(), 0600, /*sync=*/true);
}

// The cached entry of a pod (its one network), NotFound when there is none.
absl::StatusOr<CacheEntry> ReadCache(const CniOptions& o, const std::string& pod_id) {
  std::string dir = CacheDir(o, pod_id);
  std::vector<std::string> files;
  {
    std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
    if (!d) return absl::NotFoundError(absl::StrCat("no CNI cache for pod \"", pod_id, "\""));
    while (dirent* e = readdir(d.get())) {
      std::string n = e->d_name;
      if (n.size() > 5 && n.compare(n.size() - 5, 5, ".json") == 0) files.push_back(dir + "/" + n);
    }
  }
  std::sort(files.begin(), files.end());
  for (const std::string& f : files) {
    absl::StatusOr<std::string> text = ReadFile(f);
    if (!text.ok()) continue;
    json j = json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.value("kind", "") != kCacheKind ||
        j.value("containerId", "") != pod_id || !j.contains("config")) {
      LOG(WARNING) << "ignoring unreadable CNI cache file " << f;
      continue;
    }
    absl::StatusOr<CniNetworkConfig> c = CniConfigFromList(j["config"], f);
    if (!c.ok()) {
      LOG(WARNING) << "ignoring CNI cache file " << f << ": " << c.status().message();
      continue;
    }
    CacheEntry e{*std::move(c), j.value("runtimeConfig", json::object()),
                 j.value("result", json())};
    return e;
  }
  return absl::NotFoundError(absl::StrCat("no CNI cache for pod \"", pod_id, "\""));
}

absl::StatusOr<std::string> RunPlugin(const CniOptions& o, const CniNetworkConfig& net,
                                      size_t index, const Invocation& inv, const json& prev_result,
                                      const json& runtime_config) {
  const std::string type = net.plugins()[index]["type"].get<std::string>();
  absl::StatusOr<std::string> bin = FindCniPlugin(type, o.bin_dirs);
  if (!bin.ok()) return absl::FailedPreconditionError(bin.status().message());
  RunOptions ro;
  ro.stdin_data = PluginConfig(net, index, prev_result, runtime_config).dump();
  ro.env = {absl::StrCat("CNI_COMMAND=", inv.command),
            absl::StrCat("CNI_CONTAINERID=", inv.pod_id),
            absl::StrCat("CNI_NETNS=", inv.netns),
            absl::StrCat("CNI_IFNAME=", kIfName),
            absl::StrCat("CNI_ARGS=", inv.cni_args),
            absl::StrCat("CNI_PATH=", absl::StrJoin(o.bin_dirs, ":"))};
  ro.timeout = o.plugin_timeout;
  ro.max_output = 4 << 20;
  VLOG(1) << "CNI " << inv.command << " " << type << " for pod " << inv.pod_id;
  absl::StatusOr<RunResult> r = RunProcess({*bin}, ro);
  if (!r.ok()) {
    return absl::InternalError(absl::StrCat("running CNI plugin \"", type, "\" ", inv.command,
                                            " for pod \"", inv.pod_id,
                                            "\": ", r.status().message()));
  }
  if (r->timed_out) {
    return absl::DeadlineExceededError(absl::StrCat(
        "CNI plugin \"", type, "\" ", inv.command, " for pod \"", inv.pod_id,
        "\" did not finish within ", absl::FormatDuration(o.plugin_timeout), " and was killed"));
  }
  if (!r->ok()) return PluginFailure(type, inv, *r);
  return std::move(r->out);
}

// DEL through the chain in reverse. Every plugin runs even after one fails, so an IPAM release
// is not skipped because, say, a port mapping was already gone; the first error is returned.
absl::Status RunDel(const CniOptions& o, const CniNetworkConfig& net, const Invocation& inv,
                    const json& cached_result, const json& runtime_config) {
  json prev = CompareCniVersions(net.cni_version, "0.4.0") >= 0 ? cached_result : json();
  absl::Status first;
  for (size_t i = net.plugins().size(); i-- > 0;) {
    absl::StatusOr<std::string> out = RunPlugin(o, net, i, inv, prev, runtime_config);
    if (!out.ok()) {
      LOG(WARNING) << out.status().message();
      if (first.ok()) first = out.status();
    }
  }
  return first;
}

}  // namespace

absl::StatusOr<PodNetworkResult> CniManager::SetUp(const PodNetworkRequest& request) {
  if (absl::Status s = CheckPodId(request.pod_id); !s.ok()) return s;
  if (request.netns_path.empty() || !IsNetnsMounted(request.netns_path)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "pod \"", request.pod_id, "\" has no network namespace at \"", request.netns_path, "\""));
  }
  absl::StatusOr<std::shared_ptr<const CniNetworkConfig>> cfg = ReadyConfig();
  if (!cfg.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "CNI network not ready for pod \"", request.pod_id, "\": ", cfg.status().message()));
  }
  const CniNetworkConfig& net = **cfg;
  const json rc = RuntimeConfig(request);
  Invocation inv{"ADD", request.pod_id, request.netns_path, CniArgs(request)};

  // Cached before ADD too: a crash halfway still leaves DEL the config to undo it with.
  if (absl::Status s = WriteCache(options_, inv, net, rc, json()); !s.ok()) return s;

  json prev;
  for (size_t i = 0; i < net.plugins().size(); ++i) {
    absl::StatusOr<std::string> out = RunPlugin(options_, net, i, inv, prev, rc);
    json parsed;
    if (out.ok() && !out->empty()) {
      parsed = json::parse(*out, nullptr, false);
      if (parsed.is_discarded() || !parsed.is_object()) {
        out = absl::InternalError(
            absl::StrCat("CNI plugin \"", net.plugins()[i]["type"].get<std::string>(),
                         "\" ADD for pod \"", request.pod_id, "\" printed no JSON result"));
      }
    }
    if (!out.ok()) {
      Invocation del = inv;
      del.command = "DEL";
      if (absl::Status s = RunDel(options_, net, del, prev, rc); !s.ok()) {
        LOG(WARNING) << "undoing failed CNI ADD for pod " << request.pod_id << ": " << s.message();
      } else {
        RemoveAll(CacheDir(options_, request.pod_id)).IgnoreError();
      }
      return out.status();
    }
    if (!parsed.is_null()) prev = std::move(parsed);
  }
  if (prev.is_null()) {
    return absl::InternalError(absl::StrCat(
        "CNI network \"", net.name, "\" returned no result for pod \"", request.pod_id, "\""));
  }
  PodNetworkResult out;
  out.raw_result_json = prev.dump();
  absl::StatusOr<CniResult> parsed = ParseCniResult(out.raw_result_json);
  if (!parsed.ok()) return parsed.status();
  out.result = *std::move(parsed);
  out.ips = PodIps(out.result);
  if (absl::Status s = WriteCache(options_, inv, net, rc, prev); !s.ok()) return s;
  LOG(INFO) << "pod " << request.pod_id << " attached to CNI network \"" << net.name
            << "\" with IPs " << absl::StrJoin(out.ips, ",");
  return out;
}

absl::Status CniManager::Check(const PodNetworkRequest& request) {
  if (absl::Status s = CheckPodId(request.pod_id); !s.ok()) return s;
  absl::StatusOr<CacheEntry> cache = ReadCache(options_, request.pod_id);
  if (!cache.ok() || cache->result.is_null()) {
    return absl::NotFoundError(
        absl::StrCat("pod \"", request.pod_id, "\" has no CNI network set up"));
  }
  const CniNetworkConfig& net = cache->config;
  if (net.disable_check || CompareCniVersions(net.cni_version, "0.4.0") < 0)
    return absl::OkStatus();
  if (request.netns_path.empty() || !IsNetnsMounted(request.netns_path)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "pod \"", request.pod_id, "\" has no network namespace at \"", request.netns_path, "\""));
  }
  Invocation inv{"CHECK", request.pod_id, request.netns_path, CniArgs(request)};
  for (size_t i = 0; i < net.plugins().size(); ++i) {
    absl::StatusOr<std::string> out =
        RunPlugin(options_, net, i, inv, cache->result, cache->runtime_config);
    if (!out.ok()) return out.status();
  }
  return absl::OkStatus();
}

std::vector<int> PluginsWorkingFor(const std::string& pod_id) {
  std::vector<int> out;
  const std::string want = absl::StrCat("CNI_CONTAINERID=", pod_id);
  const int self = getpid();
  UniqueDir proc(opendir("/proc"));
  if (!proc) return out;
  while (struct dirent* e = readdir(proc.get())) {
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid) || pid == self) continue;
    // A process's environ is readable by its owner and root only, and empty once it is a zombie.
    absl::StatusOr<std::string> env = ReadFile(absl::StrCat("/proc/", pid, "/environ"));
    if (!env.ok()) continue;
    for (absl::string_view v : absl::StrSplit(*env, '\0')) {
      if (v == want) {
        out.push_back(pid);
        break;
      }
    }
  }
  return out;
}

absl::Status CniManager::TearDown(const PodNetworkRequest& request) {
  if (absl::Status s = CheckPodId(request.pod_id); !s.ok()) return s;
  if (request.interrupted) {
    // A crashed berthd's ADD outlives it (its plugins are not its to kill): DEL only after it, or
    // the IP it reserves a moment later stays reserved (crash_points_test, at cni:add's side).
    const absl::Time deadline = absl::Now() + options_.plugin_timeout;
    std::vector<int> busy = PluginsWorkingFor(request.pod_id);
    if (!busy.empty()) {
      LOG(INFO) << "pod " << request.pod_id << ": waiting for " << busy.size()
                << " CNI plugin process(es) left by the last berthd, e.g. pid " << busy.front();
    }
    while (!busy.empty() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
      busy = PluginsWorkingFor(request.pod_id);
    }
    if (!busy.empty()) {
      LOG(WARNING) << "pod " << request.pod_id << ": CNI plugin pid " << busy.front()
                   << " still runs after " << absl::FormatDuration(options_.plugin_timeout)
                   << "; running DEL anyway";
    }
  }
  // CNI allows DEL without a namespace; plugins then release what lives outside it (IPAM, rules).
  std::string netns =
      !request.netns_path.empty() && IsNetnsMounted(request.netns_path) ? request.netns_path : "";
  Invocation inv{"DEL", request.pod_id, netns, CniArgs(request)};
  absl::StatusOr<CacheEntry> cache = ReadCache(options_, request.pod_id);
  absl::Status s;
  if (cache.ok()) {
    s = RunDel(options_, cache->config, inv, cache->result, cache->runtime_config);
  } else {
    absl::StatusOr<std::shared_ptr<const CniNetworkConfig>> cfg = ReadyConfig();
    if (!cfg.ok()) {
      // Nothing records that this pod was ever attached, and there is no network to detach it
      // from: failing would only make the kubelet retry forever.
      LOG(WARNING) << "pod " << request.pod_id << " has no CNI cache and the network is not ready ("
                   << cfg.status().message() << "): skipping CNI DEL";
      return absl::OkStatus();
    }
    s = RunDel(options_, **cfg, inv, json(), RuntimeConfig(request));
  }
  if (!s.ok()) return s;
  return RemoveAll(CacheDir(options_, request.pod_id));
}

}  // namespace berth::network
