// SPDY/3.1 frames: 8-byte headers, big-endian fields, zlib header blocks with the dictionary.
#include "server/streaming/spdy.h"

#include <algorithm>

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
  const auto* u = reinterpret_cast<const unsigned char*>(buf);
  const size_t length = (size_t{u[5]} << 16) | (size_t{u[6]} << 8) | size_t{u[7]};
  const bool control = (u[0] & 0x80) != 0;
  if (control) {
    uint16_t version = ((u[0] & 0x7f) << 8) | u[1];
    if (version != kVersion) {
      return absl::InvalidArgumentError(absl::StrCat("SPDY version ", version, " is not 3"));
    }
    if (length > kMaxControlFrameLength) {
      return absl::InvalidArgumentError(absl::StrCat("SPDY control frame of ", length,
                                                     " bytes exceeds ", kMaxControlFrameLength));
    }
  }
  if (len - 8 < length) return 0;
  frame->control = control;
  frame->flags = u[4];
  if (control) {
    frame->type = (u[2] << 8) | u[3];
    frame->stream_id = 0;
  } else {
    frame->type = 0;
    frame->stream_id = Get32(buf) & 0x7fffffff;
  }
  frame->payload.assign(buf + 8, length);
  return 8 + length;
}

absl::Status ValidateControlFrame(const Frame& f) {
  const size_t n = f.payload.size();
  auto bad = [&](const char* name) {
    return absl::InvalidArgumentError(absl::StrCat("SPDY ", name, " frame of ", n, " bytes"));
  };
  switch (f.type) {
    case kSynStream:
      return n >= 10 ? absl::OkStatus() : bad("SYN_STREAM");
    case kSynReply:
      return n >= 4 ? absl::OkStatus() : bad("SYN_REPLY");
    case kRstStream:
      return n == 8 ? absl::OkStatus() : bad("RST_STREAM");
    case kSettings: {
      if (n < 4) return bad("SETTINGS");
      // 64-bit arithmetic: 8 * a 32-bit count must not wrap.
      const uint64_t entries = Get32(f.payload.data());
      return uint64_t{n} == 4 + 8 * entries ? absl::OkStatus() : bad("SETTINGS");
    }
    case kPing:
      return n == 4 ? absl::OkStatus() : bad("PING");
    case kGoAway:
      return n == 8 ? absl::OkStatus() : bad("GOAWAY");
    case kHeaders:
      return n >= 4 ? absl::OkStatus() : bad("HEADERS");
    case kWindowUpdate:
      return n == 8 ? absl::OkStatus() : bad("WINDOW_UPDATE");
    default:
      return absl::OkStatus();
  }
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
  if (broken_) return absl::FailedPreconditionError("SPDY header context is unusable");
  // Whatever fails below leaves zlib's context out of step with the peer's.
  broken_ = true;
  std::string raw;
  char buf[4096];
  z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(block.data()));
  z_.avail_in = block.size();
  // Inflate until the input is used up and zlib has nothing more to give (a full output buffer
  // may hide more output even with no input left).
  for (;;) {
    // One byte more than allowed, to tell "exactly at the limit" from "over it".
    const size_t room = kMaxHeaderBlockSize + 1 - raw.size();
    z_.next_out = reinterpret_cast<Bytef*>(buf);
    z_.avail_out = std::min(sizeof(buf), room);
    const uInt offered = z_.avail_out;
    int rc = inflate(&z_, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      if (inflateSetDictionary(&z_, kHeaderDictionary, kHeaderDictionarySize) != Z_OK) {
        return absl::InvalidArgumentError("SPDY header dictionary rejected");
      }
      rc = inflate(&z_, Z_SYNC_FLUSH);
    }
    // A SPDY header stream never ends; an end marker would make every later inflate a no-op.
    if (rc == Z_STREAM_END) return absl::InvalidArgumentError("SPDY header stream ended");
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return absl::InvalidArgumentError("corrupt SPDY header block");
    }
    raw.append(buf, offered - z_.avail_out);
    if (raw.size() > kMaxHeaderBlockSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("SPDY header block inflates to more than ", kMaxHeaderBlockSize, " bytes"));
    }
    if (z_.avail_out != 0) {
      // Output to spare: zlib stopped for want of input.
      if (z_.avail_in == 0) break;
      // Input left but no progress (Z_BUF_ERROR): cannot happen with room to write; refuse
      // rather than spin.
      if (rc == Z_BUF_ERROR) return absl::InvalidArgumentError("corrupt SPDY header block");
    }
  }
  // Every length below is widened to size_t before it is added to anything: a 32-bit sum
  // wraps (0xfffffffc + 4 == 0).
  Headers out;
  size_t pos = 0;
  auto need = [&](size_t n) { return n <= raw.size() - pos; };
  auto short_block = [] { return absl::InvalidArgumentError("short SPDY header block"); };
  if (!need(4)) return short_block();
  const size_t count = Get32(raw.data());
  pos = 4;
  if (count > kMaxHeaders) {
    return absl::InvalidArgumentError(
        absl::StrCat("SPDY header block has ", count, " headers, more than ", kMaxHeaders));
  }
  for (size_t i = 0; i < count; ++i) {
    if (!need(4)) return short_block();
    const size_t kl = Get32(raw.data() + pos);
    pos += 4;
    if (!need(kl)) return short_block();
    std::string k = raw.substr(pos, kl);
    pos += kl;
    if (!need(4)) return short_block();
    const size_t vl = Get32(raw.data() + pos);
    pos += 4;
    if (!need(vl)) return short_block();
    out.emplace_back(std::move(k), raw.substr(pos, vl));
    pos += vl;
  }
  broken_ = false;
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

absl::StatusOr<uint32_t> ParsePingId(const Frame& f) {
  if (f.payload.size() != 4) return absl::InvalidArgumentError("PING frame is not 4 bytes");
  return Get32(f.payload.data());  // all 32 bits: the peer matches the echo against its id
}

}  // namespace berth::streaming::spdy
