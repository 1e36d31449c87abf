// What SPDY and WebSocket sessions share: stdio pipes, pumps, exit statuses, resize decoding.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "server/streaming/session.h"
#include "server/streaming/threads.h"

namespace berth::streaming::internal {

using json = nlohmann::json;

void Pump(int fd, const std::function<bool(const char*, size_t)>& send) {
  char buf[32768];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    if (!send(buf, n)) return;
  }
}

absl::StatusOr<Pipes> Pipes::Make(bool in, bool out, bool err) {
  Pipes p;
  auto make = [](bool want, UniqueFd* r, UniqueFd* w) {
    if (!want) return true;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return false;
    r->reset(fds[0]);
    w->reset(fds[1]);
    return true;
  };
  if (!make(in, &p.in_r, &p.in_w) || !make(out, &p.out_r, &p.out_w) ||
      !make(err, &p.err_r, &p.err_w)) {
    return absl::ResourceExhaustedError(absl::StrCat("streaming session pipes: ", strerror(errno)));
  }
  return p;
}

engine::StreamIO Pipes::BackendIO(bool tty, std::shared_ptr<engine::ResizeQueue> resize) const {
  engine::StreamIO io;
  io.in = in_r.valid() ? in_r.get() : -1;
  io.out = out_w.valid() ? out_w.get() : -1;
  io.err = err_w.valid() ? err_w.get() : -1;
  io.tty = tty;
  io.resize = std::move(resize);
  return io;
}

void Pipes::CloseBackendEnds() {
  in_r.reset();
  out_w.reset();
  err_w.reset();
}

absl::StatusOr<int> RunBackend(Backend* backend, const Request& r, const engine::StreamIO& io) {
  if (r.kind == Request::kExec) return backend->Exec(r.container_id, r.cmd, io);
  absl::Status st = backend->Attach(r.container_id, io);
  if (!st.ok()) return st;
  return 0;
}

absl::StatusOr<int> RunWithOutputPumps(Backend* backend, const Request& r, Pipes* pipes,
                                       std::shared_ptr<engine::ResizeQueue> resize,
                                       const std::function<bool(const char*, size_t)>& send_out,
                                       const std::function<bool(const char*, size_t)>& send_err) {
  auto pump = [](UniqueFd& from, const std::function<bool(const char*, size_t)>& send) {
    Pump(from.get(), send);
    from.reset();
  };
  std::thread out_pump, err_pump;
  const bool pumping =
      (!pipes->out_r.valid() || StartThread(&out_pump, [&] { pump(pipes->out_r, send_out); })) &&
      (!pipes->err_r.valid() || StartThread(&err_pump, [&] { pump(pipes->err_r, send_err); }));
  absl::StatusOr<int> result =
      pumping ? RunBackend(backend, r, pipes->BackendIO(r.tty, std::move(resize)))
              : absl::ResourceExhaustedError("no thread to carry the session's output");
  pipes->CloseBackendEnds();
  if (out_pump.joinable()) out_pump.join();
  if (err_pump.joinable()) err_pump.join();
  return result;
}

std::string ErrorStreamMessage(const absl::StatusOr<int>& result, const Request& r, int version) {
  std::string message;
  if (!result.ok()) {
    message = absl::StrCat(r.kind == Request::kExec ? "error executing command in container: "
                                                    : "error attaching to container: ",
                           result.status().message());
  } else if (*result != 0) {
    message = absl::StrCat("command terminated with non-zero exit code: error executing command [",
                           absl::StrJoin(r.cmd, " "), "], exit code ", *result);
  }
  if (version < 4) return message;
  // The message quotes the command and the backend's error, either of which may hold bytes that
  // are not UTF-8: dump() would throw on them, on a session thread.
  auto dump = [](const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); };
  if (result.ok() && *result == 0) {
    return dump(json{{"metadata", json::object()}, {"status", "Success"}});
  }
  if (!result.ok()) {
    return dump(json{{"metadata", json::object()},
                     {"status", "Failure"},
                     {"message", message},
                     {"reason", "InternalError"},
                     {"details", {{"causes", {{{"message", message}}}}}},
                     {"code", 500}});
  }
  return dump(json{
      {"metadata", json::object()},
      {"status", "Failure"},
      {"message", message},
      {"reason", "NonZeroExitCode"},
      {"details", {{"causes", {{{"reason", "ExitCode"}, {"message", std::to_string(*result)}}}}}}});
}

void ResizeDecoder::Feed(const char* data, size_t n) {
  buf_.append(data, n);
  for (;;) {
    size_t start = buf_.find('{');
    if (start == std::string::npos) {
      buf_.clear();
      return;
    }
    size_t end = buf_.find('}', start);
    if (end == std::string::npos) {
      buf_.erase(0, start);
      if (buf_.size() > 4096) buf_.clear();  // not a size object; don't grow without bound
      return;
    }
    json j = json::parse(buf_.substr(start, end - start + 1), nullptr, false);
    buf_.erase(0, end + 1);
    if (!j.is_object()) continue;
    const json& w = j.contains("Width") ? j["Width"] : j["width"];
    const json& h = j.contains("Height") ? j["Height"] : j["height"];
    if (!w.is_number_unsigned() || !h.is_number_unsigned()) continue;
    q_->Push(static_cast<uint16_t>(w.get<uint64_t>()), static_cast<uint16_t>(h.get<uint64_t>()));
  }
}

}  // namespace berth::streaming::internal
