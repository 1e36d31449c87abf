// The engine's NetworkProvider on network/: persistent netns files and a CNI manager.
#ifndef BERTH_RUNTIME_ADAPTERS_CNI_NETWORK_H_
#define BERTH_RUNTIME_ADAPTERS_CNI_NETWORK_H_

#include <functional>
#include <memory>
#include <string>

#include "network/cni_manager.h"
#include "runtime/providers.h"

namespace berth::engine {

class CniNetwork final : public NetworkProvider {
 public:
  // observe(operation, seconds) is told how long each CNI ADD and DEL took.
  CniNetwork(std::string netns_dir, std::unique_ptr<network::CniManager> cni,
             std::function<void(const std::string&, double)> observe = nullptr);

  std::string NetnsPath(const std::string& sandbox_id) const override;
  absl::StatusOr<std::string> CreateNetns(const std::string& sandbox_id) override;
  absl::Status RemoveNetns(const std::string& path) override;
  absl::StatusOr<PodNetworkStatus> SetUp(const PodNetworkSpec& spec) override;
  absl::Status TearDown(const PodNetworkSpec& spec) override;
  absl::Status Ready() override;

 private:
  std::string netns_dir_;
  std::unique_ptr<network::CniManager> cni_;
  std::function<void(const std::string&, double)> observe_;
};

}  // namespace berth::engine

#endif  // BERTH_RUNTIME_ADAPTERS_CNI_NETWORK_H_
