// SPDY/3.1 sessions: remotecommand (exec/attach, channel.k8s.io v1-v4) and portforward.k8s.io,
// on one thread that reads frames while session threads write.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "glog/logging.h"
#include "server/streaming/session.h"
#include "server/streaming/spdy.h"

namespace berth::streaming::internal {
namespace {

int RemoteCommandVersion(const std::string& protocol) {
  if (protocol == "v4.channel.k8s.io") return 4;
  if (protocol == "v3.channel.k8s.io") return 3;
  if (protocol == "v2.channel.k8s.io") return 2;
  return 1;
}

// One SPDY connection: frames are read on the calling thread (Run); any thread may write.
class SpdyConnection {
 public:
  SpdyConnection(int fd, std::string leftover) : fd_(fd), buf_(std::move(leftover)) {}

  struct Stream {
    uint32_t id = 0;
    spdy::Headers headers;
    std::string type;
  };

  bool Send(const std::string& frame) {
    absl::MutexLock l(&write_mu_);
    return WriteAll(fd_, frame.data(), frame.size());
  }
  bool SendData(uint32_t id, const char* data, size_t n, bool fin = false) {
    while (n > spdy::kMaxFrameLength) {
      if (!Send(spdy::DataFrame(id, 0, data, spdy::kMaxFrameLength))) return false;
      data += spdy::kMaxFrameLength;
      n -= spdy::kMaxFrameLength;
    }
    return Send(spdy::DataFrame(id, fin ? spdy::kFlagFin : 0, data, n));
  }
  void Fin(uint32_t id) {
    if (id != 0) SendData(id, "", 0, true);
  }

  // Reads frames until the connection ends. on_stream runs for each new stream once its
  // SYN_REPLY is sent; on_data for its bytes (fin: the peer's end of that stream, or a reset).
  void Run(const std::function<void(const Stream&)>& on_stream,
           const std::function<void(uint32_t, const char*, size_t, bool)>& on_data) {
    char tmp[65536];
    for (;;) {
      spdy::Frame f;
      absl::StatusOr<size_t> used = spdy::ParseFrame(buf_.data(), buf_.size(), &f);
      if (!used.ok()) {
        LOG(WARNING) << "streaming: " << used.status();
        Send(spdy::GoAwayFrame(last_stream_, 1));  // PROTOCOL_ERROR
        return;
      }
      if (*used == 0) {
        ssize_t n = read(fd_, tmp, sizeof(tmp));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        buf_.append(tmp, n);
        continue;
      }
      buf_.erase(0, *used);
      if (!f.control) {
        on_data(f.stream_id, f.payload.data(), f.payload.size(), f.flags & spdy::kFlagFin);
        continue;
      }
      switch (f.type) {
        case spdy::kSynStream: {
          absl::StatusOr<spdy::SynStream> s = spdy::ParseSynStream(f);
          if (!s.ok()) return;
          // Every header block must be inflated, in order, to keep the zlib context in step.
          absl::StatusOr<spdy::Headers> h = inflate_.Decompress(s->header_block);
          if (!h.ok()) {
            LOG(WARNING) << "streaming: SYN_STREAM " << s->stream_id << ": " << h.status();
            return;
          }
          last_stream_ = s->stream_id;
          Stream st{s->stream_id, *h, spdy::HeaderValue(*h, "streamtype")};
          absl::StatusOr<std::string> reply;
          {
            absl::MutexLock l(&write_mu_);
            reply = deflate_.Compress({});
          }
          if (!reply.ok() || !Send(spdy::SynReplyFrame(st.id, 0, *reply))) return;
          on_stream(st);
          if (f.flags & spdy::kFlagFin) on_data(st.id, "", 0, true);
          break;
        }
        case spdy::kPing: {
          absl::StatusOr<uint32_t> id = spdy::ParseStreamIdPrefix(f);
          if (id.ok()) Send(spdy::PingFrame(*id));
          break;
        }
        case spdy::kRstStream: {
          absl::StatusOr<uint32_t> id = spdy::ParseStreamIdPrefix(f);
          if (id.ok()) on_data(*id, "", 0, true);
          break;
        }
        case spdy::kGoAway:
          return;
        case spdy::kHeaders:
          if (f.payload.size() > 4) inflate_.Decompress(f.payload.substr(4)).IgnoreError();
          break;
        default:
          break;  // SETTINGS, WINDOW_UPDATE: spdystream sends them but enforces no window
      }
    }
  }

 private:
  int fd_;
  std::string buf_;
  uint32_t last_stream_ = 0;
  absl::Mutex write_mu_;
  spdy::HeaderCompressor deflate_ ABSL_GUARDED_BY(write_mu_);
  spdy::HeaderDecompressor inflate_;
};

// portforward.k8s.io: streams come in pairs (error, data) per request id; each pair is one
// forwarded connection, run once both streams exist.
void ServePortForward(int fd, SpdyConnection& conn, const Request& r, const SessionOptions& opt) {
  struct Forward {
    uint32_t error_stream = 0, data_stream = 0;
    int32_t port = 0;
    bool port_ok = false;
    // The socketpair the backend copies to: made with the first stream, since the client may
    // send data as soon as its data stream is open.
    UniqueFd local, remote;
    std::thread worker;
    absl::Mutex mu;
    bool complete ABSL_GUARDED_BY(mu) = false;
    bool abandoned ABSL_GUARDED_BY(mu) = false;
  };
  absl::Mutex mu;
  std::map<std::string, std::shared_ptr<Forward>> by_request;
  std::map<uint32_t, std::shared_ptr<Forward>> by_data_stream;
  std::vector<std::shared_ptr<Forward>> all;

  auto run = [&conn, &r, &opt](std::shared_ptr<Forward> fwd) {
    {
      absl::MutexLock l(&fwd->mu);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(fwd->mu) {
        return fwd->complete || fwd->abandoned;
      };
      fwd->mu.AwaitWithTimeout(absl::Condition(&ready), opt.stream_creation_timeout);
      if (!fwd->complete) {
        std::string msg = "timed out waiting for the port-forward stream pair";
        if (fwd->error_stream) conn.SendData(fwd->error_stream, msg.data(), msg.size(), true);
        conn.Fin(fwd->data_stream);
        shutdown(fwd->local.get(), SHUT_RDWR);  // unblocks a reader writing into it
        return;
      }
    }
    std::thread pump([&conn, fwd] {
      Pump(fwd->local.get(), [&](const char* d, size_t n) {
        return conn.SendData(fwd->data_stream, d, n);
      });
      conn.Fin(fwd->data_stream);
    });
    const bool allowed = r.ports.empty() ||
                         std::find(r.ports.begin(), r.ports.end(), fwd->port) != r.ports.end();
    absl::Status st = !fwd->port_ok ? absl::InvalidArgumentError("invalid port in the stream headers")
                      : !allowed    ? absl::PermissionDeniedError(absl::StrCat(
                                       "port ", fwd->port, " was not in the port-forward request"))
                                    : opt.backend->PortForward(r.pod_id, fwd->port, fwd->remote.get());
    fwd->remote.reset();  // the pump sees EOF once the backend is done
    if (!st.ok()) {
      std::string msg = absl::StrCat("error forwarding port ", fwd->port, " to pod ", r.pod_id,
                                     ": ", st.message());
      conn.SendData(fwd->error_stream, msg.data(), msg.size());
    }
    conn.Fin(fwd->error_stream);
    pump.join();
  };

  auto on_stream = [&](const SpdyConnection::Stream& s) {
    std::string rid = spdy::HeaderValue(s.headers, "requestid");
    if (rid.empty()) {
      // Clients older than request ids open error then data with consecutive odd ids.
      rid = std::to_string(s.type == "data" ? s.id - 2 : s.id);
    }
    absl::MutexLock l(&mu);
    std::shared_ptr<Forward>& fwd = by_request[rid];
    bool fresh = false;
    if (!fwd) {
      fwd = std::make_shared<Forward>();
      int pair[2];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        LOG(WARNING) << "streaming: socketpair: " << strerror(errno);
        by_request.erase(rid);
        return;
      }
      fwd->local.reset(pair[0]);
      fwd->remote.reset(pair[1]);
      all.push_back(fwd);
      fresh = true;
    }
    if (s.type == "error") {
      fwd->error_stream = s.id;
    } else if (s.type == "data") {
      fwd->data_stream = s.id;
      fwd->port_ok = absl::SimpleAtoi(spdy::HeaderValue(s.headers, "port"), &fwd->port) &&
                     fwd->port > 0 && fwd->port <= 65535;
      by_data_stream[s.id] = fwd;
    } else {
      LOG(WARNING) << "streaming: unexpected port-forward stream type \"" << s.type << "\"";
    }
    {
      absl::MutexLock fl(&fwd->mu);
      fwd->complete = fwd->error_stream != 0 && fwd->data_stream != 0;
    }
    if (fresh) fwd->worker = std::thread(run, fwd);
  };
  auto on_data = [&](uint32_t id, const char* d, size_t n, bool fin) {
    std::shared_ptr<Forward> fwd;
    {
      absl::MutexLock l(&mu);
      auto it = by_data_stream.find(id);
      if (it == by_data_stream.end()) return;
      fwd = it->second;
    }
    const int local = fwd->local.get();  // set before the stream was known, closed only after Run
    if (n > 0) WriteAll(local, d, n);
    if (fin) shutdown(local, SHUT_WR);
  };
  conn.Run(on_stream, on_data);
  // The client went away: end every forward still running.
  std::vector<std::shared_ptr<Forward>> forwards;
  {
    absl::MutexLock l(&mu);
    forwards = all;
  }
  for (auto& f : forwards) {
    absl::MutexLock l(&f->mu);
    f->abandoned = true;
    shutdown(f->local.get(), SHUT_RDWR);
  }
  for (auto& f : forwards) {
    if (f->worker.joinable()) f->worker.join();
  }
}

// remotecommand: wait for the streams the request implies, then run the session.
void ServeRemoteCommand(int fd, SpdyConnection& conn, const Request& r, int version,
                        const SessionOptions& opt) {
  const bool want_stderr = r.stderr && !r.tty;
  const bool want_resize = r.tty && version >= 3;
  absl::StatusOr<Pipes> pipes = Pipes::Make(r.stdin, r.stdout, want_stderr);
  if (!pipes.ok()) {
    LOG(WARNING) << "streaming: " << pipes.status();
    return;
  }
  auto resize = std::make_shared<runtime::ResizeQueue>();
  ResizeDecoder resize_decoder(resize);
  absl::Mutex mu;
  std::map<std::string, uint32_t> streams ABSL_GUARDED_BY(mu);
  std::map<uint32_t, std::string> types ABSL_GUARDED_BY(mu);
  bool client_gone ABSL_GUARDED_BY(mu) = false;
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return streams.count("error") && (!r.stdin || streams.count("stdin")) &&
           (!r.stdout || streams.count("stdout")) && (!want_stderr || streams.count("stderr")) &&
           (!want_resize || streams.count("resize"));
  };
  std::thread session([&] {
    uint32_t in_id = 0, out_id = 0, err_id = 0, error_id = 0;
    {
      absl::MutexLock l(&mu);
      auto ready_or_gone = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        return client_gone || ready();
      };
      mu.AwaitWithTimeout(absl::Condition(&ready_or_gone), opt.stream_creation_timeout);
      if (!ready()) {
        if (!client_gone) LOG(WARNING) << "streaming: the client did not open its streams in time";
        shutdown(fd, SHUT_RDWR);
        return;
      }
      in_id = r.stdin ? streams["stdin"] : 0;
      out_id = r.stdout ? streams["stdout"] : 0;
      err_id = want_stderr ? streams["stderr"] : 0;
      error_id = streams["error"];
    }
    // v1 servers half-closed stdin at once (1.0.x clients never did); kept for such clients.
    if (version == 1) conn.Fin(in_id);
    auto pump_to = [&conn](UniqueFd& from, uint32_t id) {
      Pump(from.get(), [&](const char* d, size_t n) { return conn.SendData(id, d, n); });
      from.reset();  // a backend still writing gets EPIPE instead of blocking forever
    };
    std::thread out_pump, err_pump;
    if (pipes->out_r.valid()) out_pump = std::thread(pump_to, std::ref(pipes->out_r), out_id);
    if (pipes->err_r.valid()) err_pump = std::thread(pump_to, std::ref(pipes->err_r), err_id);
    absl::StatusOr<int> result = RunBackend(opt.backend, r, pipes->BackendIO(r.tty, resize));
    pipes->CloseBackendEnds();
    if (out_pump.joinable()) out_pump.join();
    if (err_pump.joinable()) err_pump.join();
    std::string message = ErrorStreamMessage(result, r, version);
    if (!message.empty()) conn.SendData(error_id, message.data(), message.size());
    conn.Fin(error_id);
    conn.Fin(out_id);
    conn.Fin(err_id);
    resize->Close();
    // Closing our side ends the client's read loop and with it the connection.
    shutdown(fd, SHUT_WR);
  });
  auto on_stream = [&](const SpdyConnection::Stream& s) {
    absl::MutexLock l(&mu);
    if (s.type != "error" && s.type != "stdin" && s.type != "stdout" && s.type != "stderr" &&
        s.type != "resize") {
      LOG(WARNING) << "streaming: unexpected stream type \"" << s.type << "\"";
      return;
    }
    streams[s.type] = s.id;
    types[s.id] = s.type;
  };
  auto on_data = [&](uint32_t id, const char* d, size_t n, bool fin) {
    std::string type;
    {
      absl::MutexLock l(&mu);
      auto it = types.find(id);
      if (it == types.end()) return;
      type = it->second;
    }
    if (type == "stdin") {
      if (n > 0 && pipes->in_w.valid()) WriteAll(pipes->in_w.get(), d, n);
      if (fin) pipes->in_w.reset();
    } else if (type == "resize") {
      resize_decoder.Feed(d, n);
    }
  };
  conn.Run(on_stream, on_data);
  // The client is gone (or finished): stdin ends, and the session winds down on its own.
  {
    absl::MutexLock l(&mu);
    client_gone = true;
  }
  pipes->in_w.reset();
  resize->Close();
  session.join();
}

}  // namespace

void ServeSpdy(boost::asio::ip::tcp::socket& sock, std::string leftover, const Request& r,
               const std::string& protocol, const SessionOptions& options) {
  const int fd = sock.native_handle();
  SpdyConnection conn(fd, std::move(leftover));
  if (r.kind == Request::kPortForward) {
    ServePortForward(fd, conn, r, options);
  } else {
    ServeRemoteCommand(fd, conn, r, RemoteCommandVersion(protocol), options);
  }
}

}  // namespace berth::streaming::internal
