// CRI port mappings and pod identity → CNI requests; CNI results → pod IPs.
#include "runtime/adapters/cni_network.h"

#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "network/netns.h"
#include "util/crash_point.h"

namespace berth::engine {
namespace {

network::PodNetworkRequest ToRequest(const PodNetworkSpec& spec) {
  network::PodNetworkRequest r;
  r.pod_id = spec.sandbox_id;
  r.name = spec.name;
  r.namespace_ = spec.namespace_;
  r.uid = spec.uid;
  r.netns_path = spec.netns_path;
  r.interrupted = spec.interrupted;
  for (const auto& pm : spec.port_mappings) {
    if (pm.host_port() <= 0) continue;  // only host ports need the portmap plugin
    network::PortMapping m;
    m.host_port = pm.host_port();
    m.container_port = pm.container_port();
    m.protocol = runtime::v1::Protocol_Name(pm.protocol());
    m.protocol = absl::AsciiStrToLower(m.protocol);
    m.host_ip = pm.host_ip();
    r.port_mappings.push_back(m);
  }
  return r;
}

}  // namespace

CniNetwork::CniNetwork(std::string netns_dir, std::unique_ptr<network::CniManager> cni,
                       std::function<void(const std::string&, double)> observe)
    : netns_dir_(std::move(netns_dir)), cni_(std::move(cni)), observe_(std::move(observe)) {}

std::string CniNetwork::NetnsPath(const std::string& sandbox_id) const {
  return network::NetnsPath(netns_dir_, sandbox_id);
}

absl::StatusOr<std::string> CniNetwork::CreateNetns(const std::string& sandbox_id) {
  return AfterStep(network::CreateNetns(netns_dir_, sandbox_id), "netns", "create");
}

absl::Status CniNetwork::RemoveNetns(const std::string& path) {
  return AfterStep(network::RemoveNetns(path), "netns", "remove");
}

absl::StatusOr<PodNetworkStatus> CniNetwork::SetUp(const PodNetworkSpec& spec) {
  const absl::Time start = absl::Now();
  absl::StatusOr<network::PodNetworkResult> r = cni_->SetUp(ToRequest(spec));
  if (observe_) observe_("ADD", absl::ToDoubleSeconds(absl::Now() - start));
  if (!r.ok()) return r.status();
  PodNetworkStatus out;
  out.ips = r->ips;
  out.result = r->raw_result_json;
  out.config = cni_->NetworkName();
  CrashPoint("cni", "add");
  return out;
}

absl::Status CniNetwork::TearDown(const PodNetworkSpec& spec) {
  const absl::Time start = absl::Now();
  absl::Status st = cni_->TearDown(ToRequest(spec));
  if (observe_) observe_("DEL", absl::ToDoubleSeconds(absl::Now() - start));
  return AfterStep(st, "cni", "del");
}

absl::Status CniNetwork::Ready() { return cni_->Ready(); }

}  // namespace berth::engine
