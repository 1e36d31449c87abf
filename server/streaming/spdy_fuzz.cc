// libFuzzer target: SPDY/3.1 frames as a server connection reads them (frames cut from the input
// one after another, control frames checked, header blocks inflated in order on one context),
// and the header block layout itself, inflated from input the target compresses first.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "server/streaming/spdy.h"

namespace {

namespace spdy = berth::streaming::spdy;

// A peer's context: the block layout is only reachable through valid zlib, which mutations of
// compressed bytes rarely stay.
std::string Compress(const char* data, size_t n) {
  z_stream z{};
  deflateInit(&z, Z_DEFAULT_COMPRESSION);
  deflateSetDictionary(&z, spdy::kHeaderDictionary, spdy::kHeaderDictionarySize);
  std::string out;
  char buf[4096];
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
  z.avail_in = n;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof(buf);
    deflate(&z, Z_SYNC_FLUSH);
    out.append(buf, sizeof(buf) - z.avail_out);
  } while (z.avail_out == 0);
  deflateEnd(&z);
  return out;
}

void Frames(const char* p, size_t left) {
  spdy::HeaderDecompressor inflate;
  while (left > 0) {
    spdy::Frame f;
    absl::StatusOr<size_t> used = spdy::ParseFrame(p, left, &f);
    if (!used.ok() || *used == 0) return;
    p += *used;
    left -= *used;
    if (!f.control) continue;
    if (!spdy::ValidateControlFrame(f).ok()) return;
    switch (f.type) {
      case spdy::kSynStream: {
        absl::StatusOr<spdy::SynStream> s = spdy::ParseSynStream(f);
        if (!s.ok()) return;
        absl::StatusOr<spdy::Headers> h = inflate.Decompress(s->header_block);
        if (!h.ok()) return;
        spdy::HeaderValue(*h, "streamtype");
        break;
      }
      case spdy::kSynReply:
      case spdy::kHeaders:
        if (!inflate.Decompress(f.payload.substr(4)).ok()) return;
        break;
      case spdy::kPing:
        spdy::ParsePingId(f).IgnoreError();
        break;
      default:
        spdy::ParseStreamIdPrefix(f).IgnoreError();
        break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const char* p = reinterpret_cast<const char*>(data) + 1;
  const size_t n = size - 1;
  if (data[0] & 1) {
    // The rest is an uncompressed header block.
    spdy::HeaderDecompressor d;
    absl::StatusOr<spdy::Headers> h = d.Decompress(Compress(p, n));
    if (h.ok()) {
      // What inflated must survive berth's own encoding: the same count and sizes (names come
      // back lower case), so a failure is a bug in one of the two directions.
      spdy::HeaderCompressor c;
      spdy::HeaderDecompressor again;
      absl::StatusOr<std::string> block = c.Compress(*h);
      if (!block.ok()) __builtin_trap();
      absl::StatusOr<spdy::Headers> back = again.Decompress(*block);
      if (!back.ok() || back->size() != h->size()) __builtin_trap();
    }
  } else {
    Frames(p, n);
  }
  return 0;
}
