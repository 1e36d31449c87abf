// berthd: the berth CRI runtime daemon. Wires config, flags, the state database, the engine and
// the gRPC services onto the CRI socket, and shuts down cleanly on SIGTERM/SIGINT.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "grpcpp/grpcpp.h"
#include "runtime/engine.h"
#include "server/config.h"
#include "server/daemon.h"
#include "server/version.h"
#include "util/memory.h"

ABSL_FLAG(std::string, config, "/etc/berth/berth.toml",
          "Configuration file (TOML). A missing file at the default path means built-in defaults.");
ABSL_FLAG(std::string, listen, "",
          "CRI socket address, e.g. unix:///run/berth/berth.sock "
          "(overrides `listen` in the config file)");
ABSL_FLAG(std::string, root, "", "Persistent state directory (default /var/lib/berth)");
ABSL_FLAG(std::string, state_dir, "", "Volatile state directory on tmpfs (default /run/berth)");
ABSL_FLAG(std::string, log_level, "", "debug, info, warning or error (default info)");
ABSL_FLAG(std::string, pause_binary, "",
          "Path of berth-pause (default: next to berthd, then PATH)");
ABSL_FLAG(bool, version, false, "Print berthd's version and exit");

namespace {

absl::StatusOr<berth::Config> EffectiveConfig() {
  const std::string path = absl::GetFlag(FLAGS_config);
  const bool explicit_path = path != "/etc/berth/berth.toml";
  absl::StatusOr<berth::Config> c = berth::LoadConfigFile(path, explicit_path);
  if (!c.ok()) return c.status();
  auto override_with = [](const std::string& flag, std::string* field) {
    if (!flag.empty()) *field = flag;
  };
  override_with(absl::GetFlag(FLAGS_listen), &c->listen);
  override_with(absl::GetFlag(FLAGS_root), &c->root);
  override_with(absl::GetFlag(FLAGS_state_dir), &c->state_dir);
  override_with(absl::GetFlag(FLAGS_log_level), &c->log_level);
  override_with(absl::GetFlag(FLAGS_pause_binary), &c->runtime.pause_binary);
  if (absl::Status st = berth::ValidateConfig(*c); !st.ok()) return st;
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  berth::ConfigureMalloc();  // before any thread: arenas are made as threads first allocate
  absl::SetProgramUsageMessage(
      "berth CRI runtime daemon.\n\n"
      "Usage:\n"
      "  berthd [flags]          serve the CRI on the configured socket\n"
      "  berthd config [flags]   print the effective configuration as TOML\n"
      "  berthd check [flags]    verify that this host can run containers");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);

  if (absl::GetFlag(FLAGS_version)) {
    std::cout << "berthd " << berth::kBerthVersion << " (CRI v1)\n";
    return 0;
  }
  absl::StatusOr<berth::Config> config = EffectiveConfig();
  if (!config.ok()) {
    std::cerr << "berthd: " << config.status().message() << "\n";
    return 2;
  }
  std::string command = args.size() > 1 ? args[1] : "";
  if (command == "config") {
    std::cout << berth::ConfigToToml(*config);
    return 0;
  }
  if (command == "check") return berth::server::CheckHost(*config) ? 0 : 1;
  if (!command.empty()) {
    std::cerr << "berthd: unknown command \"" << command << "\" (see --help)\n";
    return 2;
  }
  const std::string& level = config->log_level;
  FLAGS_minloglevel = level == "error" ? 2 : level == "warning" ? 1 : 0;
  if (level == "debug") FLAGS_v = 1;

  absl::Status st = berth::server::RunDaemon(*config);
  if (!st.ok()) {
    LOG(ERROR) << st;
    return 1;
  }
  return 0;
}
