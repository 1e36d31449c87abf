// CNI result and error JSON parsing, tolerant of fields added by newer spec versions.
#include "network/cni_result.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace berth::network {
namespace {

std::string Str(const nlohmann::json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::vector<std::string> StrList(const nlohmann::json& o, const char* key) {
  std::vector<std::string> out;
  auto it = o.find(key);
  if (it == o.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

int VersionOf(const std::string& address) { return address.find(':') != std::string::npos ? 6 : 4; }

}  // namespace

absl::StatusOr<CniResult> ParseCniResult(absl::string_view json) {
  nlohmann::json j = nlohmann::json::parse(json.begin(), json.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("CNI result is not a JSON object: ", json.substr(0, 200)));
  }
  CniResult r;
  r.cni_version = Str(j, "cniVersion");
  if (auto it = j.find("interfaces"); it != j.end() && it->is_array()) {
    for (const auto& i : *it) {
      if (!i.is_object()) continue;
      r.interfaces.push_back({Str(i, "name"), Str(i, "mac"), Str(i, "sandbox")});
    }
  }
  if (auto it = j.find("ips"); it != j.end() && it->is_array()) {
    for (const auto& i : *it) {
      if (!i.is_object()) continue;
      CniIpConfig ip;
      ip.address = Str(i, "address");
      if (ip.address.empty()) {
        return absl::InvalidArgumentError("CNI result has an IP entry without \"address\"");
      }
      ip.gateway = Str(i, "gateway");
      ip.version = VersionOf(ip.address);
      if (auto idx = i.find("interface"); idx != i.end() && idx->is_number_integer()) {
        ip.interface = idx->get<int>();
      }
      r.ips.push_back(std::move(ip));
    }
  }
  // Spec 0.1/0.2: one address per family and no interface list.
  for (const char* key : {"ip4", "ip6"}) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_object()) continue;
    CniIpConfig ip;
    ip.address = Str(*it, "ip");
    ip.gateway = Str(*it, "gateway");
    if (ip.address.empty()) continue;
    ip.version = VersionOf(ip.address);
    r.ips.push_back(std::move(ip));
  }
  if (auto it = j.find("dns"); it != j.end() && it->is_object()) {
    r.dns.nameservers = StrList(*it, "nameservers");
    r.dns.domain = Str(*it, "domain");
    r.dns.search = StrList(*it, "search");
    r.dns.options = StrList(*it, "options");
  }
  return r;
}

std::vector<std::string> PodIps(const CniResult& result) {
  auto in_sandbox = [&](const CniIpConfig& ip) {
    if (ip.interface < 0 || ip.interface >= static_cast<int>(result.interfaces.size())) return true;
    return !result.interfaces[ip.interface].sandbox.empty();
  };
  std::vector<const CniIpConfig*> picked;
  for (const auto& ip : result.ips) {
    if (in_sandbox(ip)) picked.push_back(&ip);
  }
  std::stable_sort(picked.begin(), picked.end(), [](const CniIpConfig* a, const CniIpConfig* b) {
    return a->version < b->version;
  });
  std::vector<std::string> out;
  for (const CniIpConfig* ip : picked) {
    std::string addr = ip->ip();
    if (std::find(out.begin(), out.end(), addr) == out.end()) out.push_back(std::move(addr));
  }
  return out;
}

std::optional<CniError> ParseCniError(absl::string_view json) {
  nlohmann::json j = nlohmann::json::parse(json.begin(), json.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto code = j.find("code");
  if (code == j.end() || !code->is_number_integer()) return std::nullopt;
  CniError e;
  e.code = code->get<int>();
  e.msg = Str(j, "msg");
  e.details = Str(j, "details");
  return e;
}

}  // namespace berth::network
