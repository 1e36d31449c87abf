// SPDY/3.1 framing as Kubernetes streaming uses it: frame encoding and decoding, and the
// zlib-compressed header blocks (one compression context per direction, primed with the
// SPDY/3 dictionary).
#ifndef BERTH_SERVER_STREAMING_SPDY_H_
#define BERTH_SERVER_STREAMING_SPDY_H_

#include <zlib.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::streaming::spdy {

extern const unsigned char kHeaderDictionary[];
extern const size_t kHeaderDictionarySize;

enum ControlType : uint16_t {
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

inline constexpr uint8_t kFlagFin = 0x01;
inline constexpr uint8_t kFlagUnidirectional = 0x02;
inline constexpr uint32_t kMaxFrameLength = (1u << 24) - 1;
// Bounds on what a peer may make berth buffer or inflate. remotecommand and portforward header
// blocks are a few hundred bytes; these leave room for any real client and stop zlib bombs.
inline constexpr size_t kMaxHeaderBlockSize = 64 << 10;  // inflated, per block
inline constexpr size_t kMaxHeaders = 128;               // per block
// A control frame carries at most a compressed header block (deflate never grows input by
// more than a few bytes per 16 KiB) and a few fixed fields.
inline constexpr size_t kMaxControlFrameLength = kMaxHeaderBlockSize + 1024;

// RST_STREAM status codes berth sends.
inline constexpr uint32_t kProtocolError = 1;
inline constexpr uint32_t kRefusedStream = 3;
inline constexpr uint32_t kCancel = 5;

// Header names are lower case on the wire; kept in order of arrival.
using Headers = std::vector<std::pair<std::string, std::string>>;
std::string HeaderValue(const Headers& headers, const std::string& name);

struct Frame {
  bool control = false;
  uint16_t type = 0;       // control frames
  uint32_t stream_id = 0;  // data frames, and the stream-bearing control frames
  uint8_t flags = 0;
  std::string payload;  // raw payload after the 8-byte frame header
};

// Parses one frame header+payload from the front of `buf`; returns the bytes consumed, 0 when
// more bytes are needed. The 8-byte header is checked as soon as it is complete (version,
// control frame length), so a bad frame is refused before its payload is waited for.
absl::StatusOr<size_t> ParseFrame(const char* buf, size_t len, Frame* frame);

// Checks a control frame's payload size against its type's layout (SPDY/3.1 section 2.6); types
// berth does not know pass, as the spec has them ignored.
absl::Status ValidateControlFrame(const Frame& f);

class HeaderCompressor {
 public:
  HeaderCompressor();
  ~HeaderCompressor();
  HeaderCompressor(const HeaderCompressor&) = delete;
  HeaderCompressor& operator=(const HeaderCompressor&) = delete;
  absl::StatusOr<std::string> Compress(const Headers& headers);

 private:
  z_stream z_{};
};

class HeaderDecompressor {
 public:
  HeaderDecompressor();
  ~HeaderDecompressor();
  HeaderDecompressor(const HeaderDecompressor&) = delete;
  HeaderDecompressor& operator=(const HeaderDecompressor&) = delete;
  // Inflates one header block (at most kMaxHeaderBlockSize, kMaxHeaders entries). Any error
  // leaves the context out of step with the peer's: the connection cannot continue.
  absl::StatusOr<Headers> Decompress(const std::string& block);

 private:
  z_stream z_{};
  bool broken_ = false;
};

// Frame builders. Header blocks must come from the connection's one compressor, in order.
std::string DataFrame(uint32_t stream_id, uint8_t flags, const char* data, size_t len);
std::string SynStreamFrame(uint32_t stream_id, uint32_t associated, uint8_t flags,
                           const std::string& header_block);
std::string SynReplyFrame(uint32_t stream_id, uint8_t flags, const std::string& header_block);
std::string RstStreamFrame(uint32_t stream_id, uint32_t status);
std::string PingFrame(uint32_t id);
std::string GoAwayFrame(uint32_t last_stream_id, uint32_t status);
std::string WindowUpdateFrame(uint32_t stream_id, uint32_t delta);

// Decoded bodies of the control frames a server reads.
struct SynStream {
  uint32_t stream_id = 0;
  uint32_t associated = 0;
  std::string header_block;
};
absl::StatusOr<SynStream> ParseSynStream(const Frame& f);
absl::StatusOr<uint32_t> ParseStreamIdPrefix(const Frame& f);  // RST_STREAM, WINDOW_UPDATE, ...
absl::StatusOr<uint32_t> ParsePingId(const Frame& f);

}  // namespace berth::streaming::spdy

#endif  // BERTH_SERVER_STREAMING_SPDY_H_
