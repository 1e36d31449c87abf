// SPDY/3.1 frames: 8-byte headers, big-endian fields, zlib header blocks with the dictionary.
#include "server/streaming/spdy.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace berth::streaming::spdy {
namespace {

constexpr uint16_t kVersion = 3;

void Put32(std::string* out, uint32_t v) {
  out->push_back(static_cast<char>(v >> 24));
  out->push_back(static_cast<char>(v >> 16));
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}

uint32_t Get32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

std::string ControlFrame(uint16_t type, uint8_t flags, const std::string& payload) {
  std::string out;
  out.push_back(static_cast<char>(0x80 | (kVersion >> 8)));
  out.push_back(static_cast<char>(kVersion & 0xff));
  out.push_back(static_cast<char>(type >> 8));
  out.push_back(static_cast<char>(type & 0xff));
  uint32_t len = payload.size();
  out.push_back(static_cast<char>(flags));
  out.push_back(static_cast<char>(len >> 16));
  out.push_back(static_cast<char>(len >> 8));
  out.push_back(static_cast<char>(len));
  out += payload;
  return out;
}

}  // namespace

std::string HeaderValue(const Headers& headers, const std::string& name) {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

absl::StatusOr<size_t> ParseFrame(const char* buf, size_t len, Frame* frame) {
  if (len < 8) return 0;
  uint32_t length = (uint32_t{static_cast<unsigned char>(buf[5])} << 16) |
                    (uint32_t{static_cast<unsigned char>(buf[6])} << 8) |
                    static_cast<unsigned char>(buf[7]);
  if (len < 8 + length) return 0;
  frame->control = (static_cast<unsigned char>(buf[0]) & 0x80) != 0;
  frame->flags = static_cast<uint8_t>(buf[4]);
  if (frame->control) {
    uint16_t version = ((static_cast<unsigned char>(buf[0]) & 0x7f) << 8) | static_cast<unsigned char>(buf[1]);
    if (version != kVersion) {
      return absl::InvalidArgumentError(absl::StrCat("SPDY version ", version, " is not 3"));
    }
    frame->type = (static_cast<unsigned char>(buf[2]) << 8) | static_cast<unsigned char>(buf[3]);
    frame->stream_id = 0;
  } else {
    frame->type = 0;
    frame->stream_id = Get32(buf) & 0x7fffffff;
  }
  frame->payload.assign(buf + 8, length);
  return 8 + length;
}

HeaderCompressor::HeaderCompressor() {
  deflateInit(&z_, Z_DEFAULT_COMPRESSION);
  deflateSetDictionary(&z_, kHeaderDictionary, kHeaderDictionarySize);
}
HeaderCompressor::~HeaderCompressor() { deflateEnd(&z_); }

absl::StatusOr<std::string> HeaderCompressor::Compress(const Headers& headers) {
  std::string raw;
  Put32(&raw, headers.size());
  for (const auto& [k, v] : headers) {
    Put32(&raw, k.size());
    raw += absl::AsciiStrToLower(k);
    Put32(&raw, v.size());
    raw += v;
  }
  std::string out;
  char buf[4096];
  z_.next_in = reinterpret_cast<Bytef*>(raw.data());
  z_.avail_in = raw.size();
  do {
    z_.next_out = reinterpret_cast<Bytef*>(buf);
    z_.avail_out = sizeof(buf);
    if (deflate(&z_, Z_SYNC_FLUSH) == Z_STREAM_ERROR) {
      return absl::InternalError("compressing SPDY headers");
    }
    out.append(buf, sizeof(buf) - z_.avail_out);
  } while (z_.avail_out == 0);
  return out;
}

HeaderDecompressor::HeaderDecompressor() { inflateInit(&z_); }
HeaderDecompressor::~HeaderDecompressor() { inflateEnd(&z_); }

absl::StatusOr<Headers> HeaderDecompressor::Decompress(const std::string& block) {
  std::string raw;
  char buf[4096];
  z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(block.data()));
  z_.avail_in = block.size();
  while (z_.avail_in > 0) {
    z_.next_out = reinterpret_cast<Bytef*>(buf);
    z_.avail_out = sizeof(buf);
    int rc = inflate(&z_, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      if (inflateSetDictionary(&z_, kHeaderDictionary, kHeaderDictionarySize) != Z_OK) {
        return absl::InvalidArgumentError("SPDY header dictionary rejected");
      }
      rc = inflate(&z_, Z_SYNC_FLUSH);
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END) {
      return absl::InvalidArgumentError("corrupt SPDY header block");
    }
    raw.append(buf, sizeof(buf) - z_.avail_out);
    if (rc == Z_BUF_ERROR && z_.avail_out != 0) break;
    if (raw.size() > (1 << 20)) return absl::InvalidArgumentError("SPDY header block too large");
  }
  Headers out;
  size_t pos = 0;
  auto need = [&](size_t n) { return pos + n <= raw.size(); };
  if (!need(4)) return absl::InvalidArgumentError("short SPDY header block");
  uint32_t count = Get32(raw.data());
  pos = 4;
  for (uint32_t i = 0; i < count; ++i) {
    if (!need(4)) return absl::InvalidArgumentError("short SPDY header block");
    uint32_t kl = Get32(raw.data() + pos);
    pos += 4;
    if (!need(kl + 4)) return absl::InvalidArgumentError("short SPDY header block");
    std::string k = raw.substr(pos, kl);
    pos += kl;
    uint32_t vl = Get32(raw.data() + pos);
    pos += 4;
    if (!need(vl)) return absl::InvalidArgumentError("short SPDY header block");
    out.emplace_back(std::move(k), raw.substr(pos, vl));
    pos += vl;
  }
  return out;
}

std::string DataFrame(uint32_t stream_id, uint8_t flags, const char* data, size_t len) {
  std::string out;
  Put32(&out, stream_id & 0x7fffffff);
  out.push_back(static_cast<char>(flags));
  out.push_back(static_cast<char>(len >> 16));
  out.push_back(static_cast<char>(len >> 8));
  out.push_back(static_cast<char>(len));
  out.append(data, len);
  return out;
}

std::string SynStreamFrame(uint32_t stream_id, uint32_t associated, uint8_t flags,
                           const std::string& header_block) {
  std::string p;
  Put32(&p, stream_id & 0x7fffffff);
  Put32(&p, associated & 0x7fffffff);
  p.push_back(0);  // priority 0, unused bits
  p.push_back(0);  // slot
  p += header_block;
  return ControlFrame(kSynStream, flags, p);
}

std::string SynReplyFrame(uint32_t stream_id, uint8_t flags, const std::string& header_block) {
  std::string p;
  Put32(&p, stream_id & 0x7fffffff);
  p += header_block;
  return ControlFrame(kSynReply, flags, p);
}

std::string RstStreamFrame(uint32_t stream_id, uint32_t status) {
  std::string p;
  Put32(&p, stream_id & 0x7fffffff);
  Put32(&p, status);
  return ControlFrame(kRstStream, 0, p);
}

std::string PingFrame(uint32_t id) {
  std::string p;
  Put32(&p, id);
  return ControlFrame(kPing, 0, p);
}

std::string GoAwayFrame(uint32_t last_stream_id, uint32_t status) {
  std::string p;
  Put32(&p, last_stream_id & 0x7fffffff);
  Put32(&p, status);
  return ControlFrame(kGoAway, 0, p);
}

std::string WindowUpdateFrame(uint32_t stream_id, uint32_t delta) {
  std::string p;
  Put32(&p, stream_id & 0x7fffffff);
  Put32(&p, delta & 0x7fffffff);
  return ControlFrame(kWindowUpdate, 0, p);
}

absl::StatusOr<SynStream> ParseSynStream(const Frame& f) {
  if (f.payload.size() < 10) return absl::InvalidArgumentError("short SYN_STREAM");
  SynStream s;
  s.stream_id = Get32(f.payload.data()) & 0x7fffffff;
  s.associated = Get32(f.payload.data() + 4) & 0x7fffffff;
  s.header_block = f.payload.substr(10);
  return s;
}

absl::StatusOr<uint32_t> ParseStreamIdPrefix(const Frame& f) {
  if (f.payload.size() < 4) return absl::InvalidArgumentError("short control frame");
  return Get32(f.payload.data()) & 0x7fffffff;
}

}  // namespace berth::streaming::spdy
