// SPDY/3.1 sessions: remotecommand (exec/attach, channel.k8s.io v1-v4) and portforward.k8s.io,
// on one thread that reads frames while session threads write.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <list>
#include <map>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "glog/logging.h"
#include "server/streaming/session.h"
#include "server/streaming/spdy.h"
#include "server/streaming/threads.h"

namespace berth::streaming::internal {
namespace {

int RemoteCommandVersion(const std::string& protocol) {
  if (protocol == "v4.channel.k8s.io") return 4;
  if (protocol == "v3.channel.k8s.io") return 3;
  if (protocol == "v2.channel.k8s.io") return 2;
  return 1;
}

// One SPDY connection: frames are read on the calling thread (Run); any thread may write.
//
// It keeps the streams the peer opened until both sides ended them (FIN or RST_STREAM) or the
// session released them, and refuses streams beyond max_streams with RST_STREAM, so a client
// cannot make it hold more than that many.
class SpdyConnection {
 public:
  SpdyConnection(int fd, std::string leftover, size_t max_streams)
      : fd_(fd), buf_(std::move(leftover)), max_streams_(max_streams) {}

  struct Stream {
    uint32_t id = 0;
    spdy::Headers headers;
    std::string type;
  };

  bool Send(const std::string& frame) {
    absl::MutexLock l(&write_mu_);
    return WriteAll(fd_, frame.data(), frame.size());
  }
  // False, sending nothing, once our side of the stream ended or the stream is gone.
  bool SendData(uint32_t id, const char* data, size_t n, bool fin = false) {
    {
      absl::MutexLock l(&state_mu_);
      auto it = streams_.find(id);
      if (it == streams_.end() || it->second.local_closed) return false;
      if (fin) {
        it->second.local_closed = true;
        if (it->second.remote_closed) streams_.erase(it);
      }
    }
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
  // Ends the stream both ways (RST_STREAM) and forgets it.
  void Reset(uint32_t id, uint32_t status) {
    if (!Forget(id)) return;
    Send(spdy::RstStreamFrame(id, status));
  }
  // The session is done with the stream: it stops counting against the limit and the peer's
  // further data on it is dropped.
  void Release(uint32_t id) {
    if (id != 0) Forget(id);
  }

  // Reads frames until the connection ends. on_stream runs for each new stream once its
  // SYN_REPLY is sent and returns false to refuse it (it is reset); on_data for its bytes (fin:
  // the peer's end of that stream, or a reset).
  void Run(const std::function<bool(const Stream&)>& on_stream,
           const std::function<void(uint32_t, const char*, size_t, bool)>& on_data) {
    char tmp[65536];
    size_t pos = 0;  // buf_ before pos is parsed: erasing each frame would be quadratic
    for (;;) {
      spdy::Frame f;
      absl::StatusOr<size_t> used = spdy::ParseFrame(buf_.data() + pos, buf_.size() - pos, &f);
      absl::Status valid = used.ok() ? absl::OkStatus() : used.status();
      if (valid.ok() && *used > 0 && f.control) valid = spdy::ValidateControlFrame(f);
      if (!valid.ok()) {
        LOG(WARNING) << "streaming: " << valid;
        GoAway();
        return;
      }
      if (*used == 0) {
        buf_.erase(0, pos);
        pos = 0;
        ssize_t n = read(fd_, tmp, sizeof(tmp));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        buf_.append(tmp, n);
        continue;
      }
      pos += *used;
      if (!f.control) {
        const bool fin = f.flags & spdy::kFlagFin;
        if (PeerSent(f.stream_id, fin))
          on_data(f.stream_id, f.payload.data(), f.payload.size(), fin);
        continue;
      }
      switch (f.type) {
        case spdy::kSynStream: {
          absl::StatusOr<spdy::SynStream> s = spdy::ParseSynStream(f);
          if (!s.ok()) {
            GoAway();
            return;
          }
          // Every header block must be inflated, in order, to keep the zlib context in step.
          absl::StatusOr<spdy::Headers> h = inflate_.Decompress(s->header_block);
          if (!h.ok()) {
            LOG(WARNING) << "streaming: SYN_STREAM " << s->stream_id << ": " << h.status();
            GoAway();
            return;
          }
          // As spdystream (kubelet's) does: ids must grow; anything else is reset.
          if (s->stream_id <= last_stream_) {
            Send(spdy::RstStreamFrame(s->stream_id, spdy::kProtocolError));
            break;
          }
          last_stream_ = s->stream_id;
          const bool fin = f.flags & spdy::kFlagFin;
          if (!Open(s->stream_id, fin)) {
            if (refused_++ == 0) {
              LOG(WARNING) << "streaming: refusing streams beyond " << max_streams_
                           << " open on one connection";
            }
            Send(spdy::RstStreamFrame(s->stream_id, spdy::kRefusedStream));
            break;
          }
          Stream st{s->stream_id, std::move(*h), ""};
          st.type = spdy::HeaderValue(st.headers, "streamtype");
          absl::StatusOr<std::string> reply;
          {
            absl::MutexLock l(&write_mu_);
            reply = deflate_.Compress({});
          }
          if (!reply.ok() || !Send(spdy::SynReplyFrame(st.id, 0, *reply))) return;
          if (!on_stream(st)) {
            Reset(st.id, spdy::kRefusedStream);
          } else if (fin) {
            on_data(st.id, "", 0, true);
          }
          break;
        }
        case spdy::kPing: {
          absl::StatusOr<uint32_t> id = spdy::ParsePingId(f);
          if (id.ok()) Send(spdy::PingFrame(*id));
          break;
        }
        case spdy::kRstStream: {
          absl::StatusOr<uint32_t> id = spdy::ParseStreamIdPrefix(f);
          if (id.ok() && Forget(*id)) on_data(*id, "", 0, true);
          break;
        }
        case spdy::kGoAway:
          return;
        case spdy::kHeaders: {
          absl::Status st = f.payload.size() < 4
                                ? absl::InvalidArgumentError("short HEADERS")
                                : inflate_.Decompress(f.payload.substr(4)).status();
          if (!st.ok()) {
            LOG(WARNING) << "streaming: HEADERS: " << st;
            GoAway();
            return;
          }
          break;
        }
        default:
          break;  // SETTINGS, WINDOW_UPDATE: spdystream sends them but enforces no window
      }
    }
  }

 private:
  struct State {
    bool local_closed = false, remote_closed = false;
  };

  void GoAway() { Send(spdy::GoAwayFrame(last_stream_, spdy::kProtocolError)); }

  bool Open(uint32_t id, bool remote_closed) {
    absl::MutexLock l(&state_mu_);
    if (streams_.size() >= max_streams_) return false;
    streams_[id].remote_closed = remote_closed;
    return true;
  }
  // Data from the peer on `id`: false when the stream is not (or no longer) open its way.
  bool PeerSent(uint32_t id, bool fin) {
    absl::MutexLock l(&state_mu_);
    auto it = streams_.find(id);
    if (it == streams_.end() || it->second.remote_closed) return false;
    if (fin) {
      it->second.remote_closed = true;
      if (it->second.local_closed) streams_.erase(it);
    }
    return true;
  }
  bool Forget(uint32_t id) {
    absl::MutexLock l(&state_mu_);
    return streams_.erase(id) > 0;
  }

  int fd_;
  std::string buf_;
  const size_t max_streams_;
  uint32_t last_stream_ = 0;
  size_t refused_ = 0;
  absl::Mutex write_mu_;
  spdy::HeaderCompressor deflate_ ABSL_GUARDED_BY(write_mu_);
  spdy::HeaderDecompressor inflate_;
  absl::Mutex state_mu_;
  std::map<uint32_t, State> streams_ ABSL_GUARDED_BY(state_mu_);
};

// portforward.k8s.io: streams come in pairs (error, data) per request id; each pair is one
// forwarded connection, run once both streams exist.
//
// What a client can make the session hold is bounded: at most max_port_forwards_per_connection
// pairs (and the server-wide count in opt.port_forwards), a half-open pair costs a socketpair and
// no thread and is dropped when the stream-creation timeout expires (one reaper thread per
// connection keeps the deadlines), and a complete pair runs on two threads until its forward ends.
void ServePortForward(int fd, SpdyConnection& conn, const Request& r, const SessionOptions& opt) {
  struct Forward {
    std::string request_id;
    uint32_t error_stream = 0, data_stream = 0;
    int32_t port = 0;
    bool port_ok = false;
    // The socketpair the backend copies to: made with the first stream, since the client may
    // send data as soon as its data stream is open. Closed when the last holder lets go (the
    // session's maps, the worker, a write in progress on the reading thread), never under one.
    UniqueFd local, remote;
    absl::Time deadline;   // for the second stream
    bool running = false;  // both streams came: a worker owns the forward
    bool done = false;     // the worker is finished
  };
  struct Worker {
    std::thread thread;
    std::shared_ptr<Forward> fwd;
  };
  // Guarded by mu (locals, which clang's analysis does not check):
  absl::Mutex mu;
  std::map<std::string, std::shared_ptr<Forward>> by_request;
  std::map<uint32_t, std::shared_ptr<Forward>> by_data_stream;
  std::list<Worker> workers;
  bool stopping = false;
  bool added = false;   // a pair the reaper has not seen yet
  size_t finished = 0;  // workers done and not yet joined
  size_t refused = 0;   // streams refused, counted on the reading thread for one log line

  // Drops the session's hold on a forward and its place in the limits. Takes its own reference:
  // a caller's may be the map entry this erases (by_request.begin()->second at the end).
  auto forget = [&](std::shared_ptr<Forward> fwd) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto it = by_request.find(fwd->request_id);
    if (it != by_request.end() && it->second == fwd) {
      by_request.erase(it);
      if (opt.port_forwards) opt.port_forwards->Release();
    }
    if (fwd->data_stream) by_data_stream.erase(fwd->data_stream);
  };
  // Ends a forward that never ran (timed out, or no thread for it), outside mu.
  auto abandon = [&conn](const std::shared_ptr<Forward>& fwd, const std::string& msg) {
    if (fwd->error_stream) conn.SendData(fwd->error_stream, msg.data(), msg.size(), true);
    conn.Fin(fwd->data_stream);
    shutdown(fwd->local.get(), SHUT_RDWR);  // unblocks a reader writing into it
    conn.Release(fwd->error_stream);
    conn.Release(fwd->data_stream);
  };

  auto run = [&conn, &r, &opt, &mu, &finished](std::shared_ptr<Forward> fwd) {
    bool client_gone = false;
    std::thread pump;
    const bool pumping = StartThread(&pump, [&conn, fwd, &client_gone] {
      Pump(fwd->local.get(), [&](const char* d, size_t n) {
        client_gone = !conn.SendData(fwd->data_stream, d, n);
        return !client_gone;
      });
      // Nobody takes the port's bytes any more: end both directions so the backend returns
      // instead of blocking on a full socket.
      if (client_gone) shutdown(fwd->local.get(), SHUT_RDWR);
      conn.Fin(fwd->data_stream);
    });
    const bool allowed =
        r.ports.empty() || std::find(r.ports.begin(), r.ports.end(), fwd->port) != r.ports.end();
    absl::Status st = !pumping ? absl::ResourceExhaustedError("no thread to forward with")
                      : !fwd->port_ok
                          ? absl::InvalidArgumentError("invalid port in the stream headers")
                      : !allowed ? absl::PermissionDeniedError(absl::StrCat(
                                       "port ", fwd->port, " was not in the port-forward request"))
                                 : opt.backend->PortForward(r.pod_id, fwd->port, fwd->remote.get());
    fwd->remote.reset();  // the pump sees EOF once the backend is done; the reader's writes fail
    if (!st.ok()) {
      std::string msg = absl::StrCat("error forwarding port ", fwd->port, " to pod ", r.pod_id,
                                     ": ", st.message());
      conn.SendData(fwd->error_stream, msg.data(), msg.size());
    }
    conn.Fin(fwd->error_stream);
    if (pump.joinable()) pump.join();
    if (!pumping) conn.Fin(fwd->data_stream);
    absl::MutexLock l(&mu);
    fwd->done = true;
    ++finished;
  };

  // Joins finished workers and drops half-open pairs whose time ran out.
  std::thread reaper;
  auto reap = [&] {
    for (;;) {
      std::vector<Worker> joinable;
      std::vector<std::shared_ptr<Forward>> expired;
      {
        absl::MutexLock l(&mu);
        absl::Time next = absl::InfiniteFuture();
        for (const auto& [rid, fwd] : by_request) {
          if (!fwd->running) next = std::min(next, fwd->deadline);
        }
        added = false;
        auto wake = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
          return stopping || added || finished > 0;
        };
        mu.AwaitWithDeadline(absl::Condition(&wake), next);
        if (stopping) return;
        for (auto it = workers.begin(); finished > 0 && it != workers.end();) {
          if (it->fwd->done) {
            forget(it->fwd);
            joinable.push_back(std::move(*it));
            it = workers.erase(it);
            --finished;
          } else {
            ++it;
          }
        }
        const absl::Time now = absl::Now();
        for (auto it = by_request.begin(); it != by_request.end();) {
          std::shared_ptr<Forward> fwd = (it++)->second;
          if (!fwd->running && fwd->deadline <= now) {
            forget(fwd);
            expired.push_back(std::move(fwd));
          }
        }
      }
      for (Worker& w : joinable) {
        w.thread.join();
        conn.Release(w.fwd->error_stream);
        conn.Release(w.fwd->data_stream);
      }
      for (auto& fwd : expired) abandon(fwd, "timed out waiting for the port-forward stream pair");
    }
  };
  if (!StartThread(&reaper, reap)) return;  // the connection closes: nothing was opened yet

  auto on_stream = [&](const SpdyConnection::Stream& s) {
    if (s.type != "error" && s.type != "data") {
      if (refused++ == 0) {
        LOG(WARNING) << "streaming: unexpected port-forward stream type \"" << s.type << "\"";
      }
      return false;
    }
    std::string rid = spdy::HeaderValue(s.headers, "requestid");
    if (rid.empty()) {
      // Clients older than request ids open error then data with consecutive odd ids.
      rid = std::to_string(s.type == "data" ? s.id - 2 : s.id);
    }
    std::shared_ptr<Forward> unstartable;
    {
      absl::MutexLock l(&mu);
      std::shared_ptr<Forward> fwd;
      auto it = by_request.find(rid);
      if (it != by_request.end()) {
        fwd = it->second;
      } else {
        if (by_request.size() >= opt.max_port_forwards_per_connection ||
            (opt.port_forwards && !opt.port_forwards->TryAcquire())) {
          if (refused++ == 0) {
            LOG(WARNING) << "streaming: port-forward to pod " << r.pod_id
                         << ": refusing pairs beyond the limit";
          }
          return false;
        }
        int pair[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
          LOG(WARNING) << "streaming: socketpair: " << strerror(errno);
          if (opt.port_forwards) opt.port_forwards->Release();
          return false;
        }
        fwd = std::make_shared<Forward>();
        fwd->request_id = rid;
        fwd->local.reset(pair[0]);
        fwd->remote.reset(pair[1]);
        fwd->deadline = absl::Now() + opt.stream_creation_timeout;
        by_request[rid] = fwd;
        added = true;
      }
      uint32_t& slot = s.type == "error" ? fwd->error_stream : fwd->data_stream;
      if (fwd->running || slot != 0) return false;  // a second stream of one kind for one request
      slot = s.id;
      if (s.type == "data") {
        fwd->port_ok = absl::SimpleAtoi(spdy::HeaderValue(s.headers, "port"), &fwd->port) &&
                       fwd->port > 0 && fwd->port <= 65535;
        by_data_stream[s.id] = fwd;
      }
      if (fwd->error_stream != 0 && fwd->data_stream != 0) {
        fwd->running = true;
        workers.emplace_back();
        workers.back().fwd = fwd;
        if (!StartThread(&workers.back().thread, [run, fwd] { run(fwd); })) {
          workers.pop_back();
          forget(fwd);
          unstartable = fwd;
        }
      }
    }
    if (unstartable) abandon(unstartable, "error forwarding: no thread to forward with");
    return true;
  };
  auto on_data = [&](uint32_t id, const char* d, size_t n, bool fin) {
    std::shared_ptr<Forward> fwd;
    {
      absl::MutexLock l(&mu);
      auto it = by_data_stream.find(id);
      if (it == by_data_stream.end()) return;
      fwd = it->second;
    }
    // Our reference keeps the descriptor open however the forward ends meanwhile.
    const int local = fwd->local.get();
    if (n > 0) WriteAll(local, d, n);
    if (fin) shutdown(local, SHUT_WR);
  };
  conn.Run(on_stream, on_data);
  // Nothing more is read, and nothing written now would be read: fail the writes still to come
  // (timeout notices, pumps) at once instead of letting them wait on a peer that stopped reading.
  shutdown(fd, SHUT_RDWR);
  if (refused > 1) {
    LOG(WARNING) << "streaming: port-forward to pod " << r.pod_id << ": refused " << refused
                 << " streams";
  }
  // The client went away: end every forward still running, then wait for them.
  {
    absl::MutexLock l(&mu);
    stopping = true;
  }
  reaper.join();
  std::list<Worker> remaining;
  {
    absl::MutexLock l(&mu);
    for (auto& [rid, fwd] : by_request) shutdown(fwd->local.get(), SHUT_RDWR);
    for (Worker& w : workers) shutdown(w.fwd->local.get(), SHUT_RDWR);
    remaining.splice(remaining.end(), workers);
    while (!by_request.empty()) forget(by_request.begin()->second);
  }
  for (Worker& w : remaining) w.thread.join();
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
  auto resize = std::make_shared<engine::ResizeQueue>();
  ResizeDecoder resize_decoder(resize);
  absl::Mutex mu;
  std::map<std::string, uint32_t> streams ABSL_GUARDED_BY(mu);
  std::map<uint32_t, std::string> types ABSL_GUARDED_BY(mu);
  bool client_gone ABSL_GUARDED_BY(mu) = false;
  size_t unexpected = 0;  // stream types refused, counted on the reading thread
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return streams.count("error") && (!r.stdin || streams.count("stdin")) &&
           (!r.stdout || streams.count("stdout")) && (!want_stderr || streams.count("stderr")) &&
           (!want_resize || streams.count("resize"));
  };
  std::thread session;
  const bool started = StartThread(&session, [&] {
    uint32_t in_id = 0, out_id = 0, err_id = 0, error_id = 0;
    {
      absl::MutexLock l(&mu);
      auto ready_or_gone = [&]()
                               ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return client_gone || ready(); };
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
    absl::StatusOr<int> result = RunWithOutputPumps(
        opt.backend, r, &*pipes, resize,
        [&](const char* d, size_t n) { return conn.SendData(out_id, d, n); },
        [&](const char* d, size_t n) { return conn.SendData(err_id, d, n); });
    std::string message = ErrorStreamMessage(result, r, version);
    if (!message.empty()) conn.SendData(error_id, message.data(), message.size());
    conn.Fin(error_id);
    conn.Fin(out_id);
    conn.Fin(err_id);
    resize->Close();
    // Closing our side ends the client's read loop and with it the connection.
    shutdown(fd, SHUT_WR);
  });
  if (!started) return;  // the connection closes before any stream was opened
  auto on_stream = [&](const SpdyConnection::Stream& s) {
    absl::MutexLock l(&mu);
    if (s.type != "error" && s.type != "stdin" && s.type != "stdout" && s.type != "stderr" &&
        s.type != "resize") {
      // Once per connection: a client opening thousands must not flood the log.
      if (unexpected++ == 0)
        LOG(WARNING) << "streaming: unexpected stream type \"" << s.type << "\"";
      return false;
    }
    if (streams.count(s.type)) return false;  // the session reads and writes the first one only
    streams[s.type] = s.id;
    types[s.id] = s.type;
    return true;
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
  SpdyConnection conn(fd, std::move(leftover), options.max_streams_per_connection);
  if (r.kind == Request::kPortForward) {
    ServePortForward(fd, conn, r, options);
  } else {
    ServeRemoteCommand(fd, conn, r, RemoteCommandVersion(protocol), options);
  }
}

}  // namespace berth::streaming::internal
