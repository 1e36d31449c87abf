// The pending requests a streaming URL stands for, as the CRI layer hands them to the server.
#ifndef BERTH_SERVER_STREAMING_REQUEST_H_
#define BERTH_SERVER_STREAMING_REQUEST_H_

#include <cstdint>
#include <string>
#include <vector>

namespace berth::streaming {

// A CRI ExecRequest: run `cmd` in the container with the chosen stdio.
struct ExecRequest {
  std::string container_id;
  std::vector<std::string> cmd;
  bool tty = false;  // with a tty, stdout carries stderr too, and the client may resize it
  bool stdin = false;
  bool stdout = false;
  bool stderr = false;
};

// A CRI AttachRequest: join the container's main process's stdio.
struct AttachRequest {
  std::string container_id;
  bool tty = false;
  bool stdin = false;
  bool stdout = false;
  bool stderr = false;
};

// A CRI PortForwardRequest: connections to these ports in the pod's network namespace. An empty
// list allows any port the client names.
struct PortForwardRequest {
  std::string pod_sandbox_id;
  std::vector<int32_t> ports;
};

// Any of the three, as a token remembers it.
struct Request {
  enum Kind { kExec, kAttach, kPortForward } kind = kExec;
  std::string container_id;  // exec, attach
  std::vector<std::string> cmd;
  bool tty = false, stdin = false, stdout = false, stderr = false;
  std::string pod_id;  // port-forward
  std::vector<int32_t> ports;
};

}  // namespace berth::streaming

#endif  // BERTH_SERVER_STREAMING_REQUEST_H_
