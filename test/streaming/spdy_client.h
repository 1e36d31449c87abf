// A small blocking SPDY/3.1 client speaking Kubernetes' streaming protocols as client-go does
// (upgrade request, one stream per stdio channel or per port-forward pair), for tests.
#ifndef BERTH_TEST_STREAMING_SPDY_CLIENT_H_
#define BERTH_TEST_STREAMING_SPDY_CLIENT_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/streaming/spdy.h"
#include "util/fd.h"

namespace berth::test {

// Connects to "http://host:port/path" on loopback.
absl::StatusOr<UniqueFd> ConnectToUrl(const std::string& url, std::string* path);

class SpdyClient {
 public:
  // Sends the upgrade request; returns the HTTP status (101 when the connection is now SPDY).
  // `protocols` goes into X-Stream-Protocol-Version, comma separated; empty: no such header.
  absl::StatusOr<int> Connect(const std::string& url, const std::string& protocols);
  const std::string& response_head() const { return head_; }
  // The response body of a refused upgrade (read to EOF).
  std::string ReadBody();

  // Opens a stream with these headers; returns its id once the server replied.
  absl::StatusOr<uint32_t> Open(const streaming::spdy::Headers& headers);
  // The SYN_STREAM Open would send, for a caller that sends it (SendRaw) and does not wait.
  absl::StatusOr<std::string> SynStream(const streaming::spdy::Headers& headers, uint32_t* id);
  bool SendRaw(const std::string& bytes);
  // A PING and its echo: the server has handled every frame sent before it (it reads one
  // connection's frames in order, and acts on each SYN_STREAM before reading the next frame).
  bool Ping(absl::Duration timeout = absl::Seconds(10));
  // Reads whatever frames have arrived, without waiting; false once the connection ended.
  bool ReadAvailable();
  // Reads frames until the server closes the connection; false on a timeout.
  bool ReadUntilClosed(absl::Duration timeout = absl::Seconds(60));
  bool replied(uint32_t id) const { return replied_.contains(id); }
  bool reset(uint32_t id) const { return reset_.contains(id); }
  size_t replies() const { return replied_.size(); }
  size_t resets() const { return reset_.size(); }
  bool goaway() const { return goaway_; }
  int fd() const { return fd_.get(); }
  bool Send(uint32_t id, const std::string& data, bool fin = false);

  struct StreamData {
    std::string bytes;
    bool fin = false;
  };
  // Reads frames until every stream in `streams` has ended (FIN or reset) or the connection
  // closed; false on a timeout or a framing error. Data of all streams is kept.
  bool ReadUntilFin(const std::set<uint32_t>& streams, absl::Duration timeout = absl::Seconds(60));
  // Reads until `id` has received at least `n` bytes.
  bool ReadUntilBytes(uint32_t id, size_t n, absl::Duration timeout = absl::Seconds(60));
  // Reads until `id`'s data contains `needle`.
  bool ReadUntilContains(uint32_t id, const std::string& needle,
                         absl::Duration timeout = absl::Seconds(60));
  StreamData& stream(uint32_t id) { return streams_[id]; }

 private:
  bool Fill(absl::Duration timeout);  // reads more bytes; false on EOF/timeout
  bool ReadFrame(absl::Duration timeout);

  UniqueFd fd_;
  std::string buf_, head_;
  uint32_t next_id_ = 1;
  bool eof_ = false;
  streaming::spdy::HeaderCompressor deflate_;
  streaming::spdy::HeaderDecompressor inflate_;
  bool goaway_ = false;
  std::set<uint32_t> replied_, reset_, pongs_;
  uint32_t next_ping_ = 1;  // client PINGs carry odd ids
  std::map<uint32_t, StreamData> streams_;
};

}  // namespace berth::test

#endif  // BERTH_TEST_STREAMING_SPDY_CLIENT_H_
