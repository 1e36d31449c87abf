// Test helpers: a named network namespace with a dummy eth0 (removed on destruction), and a
// forked process living in it that has sent some UDP datagrams out of eth0.
#ifndef BERTH_RUNTIME_STATS_SCRATCH_NETNS_H_
#define BERTH_RUNTIME_STATS_SCRATCH_NETNS_H_

#include <sys/types.h>

#include <string>

namespace berth::engine::stats::testing {

// `ip netns add berth-stats-<random>`; eth0 (10.213.7.1/24) is one end of a veth pair whose
// other end, peer0, is in the same namespace.
class ScratchNetns {
 public:
  ScratchNetns();
  ~ScratchNetns();  // `ip netns del`
  ScratchNetns(const ScratchNetns&) = delete;
  ScratchNetns& operator=(const ScratchNetns&) = delete;

  const std::string& error() const { return error_; }
  std::string path() const { return "/run/netns/" + name_; }

 private:
  std::string name_;
  bool added_ = false;
  std::string error_;
};

// A child that joins the netns at `netns_path`, sends `datagrams` UDP datagrams of `payload`
// bytes to 10.213.7.2:9 (out of eth0, to peer0, which drops them), reports it is
// done, then sleeps until killed. SIGKILLed and reaped on destruction.
class ProcessInNetns {
 public:
  ProcessInNetns(const std::string& netns_path, int datagrams, int payload);
  ~ProcessInNetns();
  ProcessInNetns(const ProcessInNetns&) = delete;
  ProcessInNetns& operator=(const ProcessInNetns&) = delete;

  // The child's pid once it has sent everything; -1 when it could not join or send.
  pid_t pid() const { return ready_ ? pid_ : -1; }

 private:
  pid_t pid_ = -1;
  bool ready_ = false;
};

}  // namespace berth::engine::stats::testing

#endif  // BERTH_RUNTIME_STATS_SCRATCH_NETNS_H_
