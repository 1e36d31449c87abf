// SPDY/3.1 framing: frames round-trip, header blocks survive compression with the dictionary
// across several blocks on one context, partial input asks for more, and hostile lengths,
// counts and zlib streams are refused without reading out of bounds or looping.
#include "server/streaming/spdy.h"

#include <zlib.h>

#include "gtest/gtest.h"

namespace berth::streaming::spdy {
namespace {

void Put32(std::string* out, uint32_t v) {
  for (int shift : {24, 16, 8, 0}) out->push_back(static_cast<char>(v >> shift));
}

// A peer's compression context, for header blocks HeaderCompressor would never produce.
class RawCompressor {
 public:
  RawCompressor() {
    deflateInit(&z_, Z_DEFAULT_COMPRESSION);
    deflateSetDictionary(&z_, kHeaderDictionary, kHeaderDictionarySize);
  }
  ~RawCompressor() { deflateEnd(&z_); }
  std::string Compress(const std::string& raw, int flush = Z_SYNC_FLUSH) {
    std::string out;
    char buf[4096];
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
    z_.avail_in = raw.size();
    do {
      z_.next_out = reinterpret_cast<Bytef*>(buf);
      z_.avail_out = sizeof(buf);
      deflate(&z_, flush);
      out.append(buf, sizeof(buf) - z_.avail_out);
    } while (z_.avail_out == 0);
    return out;
  }

 private:
  z_stream z_{};
};

std::string RawBlock(const Headers& headers) {
  std::string raw;
  Put32(&raw, headers.size());
  for (const auto& [k, v] : headers) {
    Put32(&raw, k.size());
    raw += k;
    Put32(&raw, v.size());
    raw += v;
  }
  return raw;
}

TEST(SpdyTest, DataFrameRoundTrip) {
  std::string wire = DataFrame(5, kFlagFin, "hello", 5);
  Frame f;
  absl::StatusOr<size_t> used = ParseFrame(wire.data(), wire.size(), &f);
  ASSERT_TRUE(used.ok());
  EXPECT_EQ(*used, wire.size());
  EXPECT_FALSE(f.control);
  EXPECT_EQ(f.stream_id, 5u);
  EXPECT_EQ(f.flags, kFlagFin);
  EXPECT_EQ(f.payload, "hello");
}

TEST(SpdyTest, PartialFramesNeedMoreBytes) {
  std::string wire = DataFrame(1, 0, "abcdef", 6);
  Frame f;
  for (size_t n = 0; n < wire.size(); ++n) {
    absl::StatusOr<size_t> used = ParseFrame(wire.data(), n, &f);
    ASSERT_TRUE(used.ok());
    EXPECT_EQ(*used, 0u) << n;
  }
}

TEST(SpdyTest, HeaderBlocksRoundTripOnOneContext) {
  HeaderCompressor c;
  HeaderDecompressor d;
  for (int i = 0; i < 3; ++i) {
    Headers h = {{"streamtype", "stdout"}, {"port", std::to_string(8000 + i)}, {"requestid", "0"}};
    absl::StatusOr<std::string> block = c.Compress(h);
    ASSERT_TRUE(block.ok());
    std::string wire = SynStreamFrame(2 * i + 1, 0, 0, *block);
    Frame f;
    ASSERT_EQ(*ParseFrame(wire.data(), wire.size(), &f), wire.size());
    ASSERT_TRUE(f.control);
    EXPECT_EQ(f.type, kSynStream);
    absl::StatusOr<SynStream> s = ParseSynStream(f);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->stream_id, static_cast<uint32_t>(2 * i + 1));
    absl::StatusOr<Headers> back = d.Decompress(s->header_block);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, h);
    EXPECT_EQ(HeaderValue(*back, "StreamType"), "stdout");
  }
}

TEST(SpdyTest, ControlFramesCarryTheirIds) {
  for (const std::string& wire : {PingFrame(7), RstStreamFrame(7, 5), WindowUpdateFrame(7, 100)}) {
    Frame f;
    ASSERT_EQ(*ParseFrame(wire.data(), wire.size(), &f), wire.size());
    EXPECT_TRUE(f.control);
    EXPECT_EQ(*ParseStreamIdPrefix(f), 7u);
  }
}

TEST(SpdyTest, WrongVersionAndGarbageAreErrors) {
  std::string wire = PingFrame(1);
  wire[1] = 2;  // SPDY/2
  Frame f;
  EXPECT_FALSE(ParseFrame(wire.data(), wire.size(), &f).ok());
  HeaderDecompressor d;
  EXPECT_FALSE(d.Decompress("not zlib at all").ok());
}

TEST(SpdyTest, HeaderBlocksUseTheSpdy3Dictionary) {
  // The dictionary starts with the length-prefixed "options" and is 1423 bytes long (SPDY/3 spec).
  ASSERT_EQ(kHeaderDictionarySize, 1423u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(kHeaderDictionary), 11),
            std::string("\0\0\0\x07options", 11));
  HeaderCompressor c;
  absl::StatusOr<std::string> block = c.Compress({{"streamtype", "error"}});
  ASSERT_TRUE(block.ok());
  // zlib header with FDICT set, then the dictionary's Adler-32 (0xe3c6a7c2 for SPDY/3).
  ASSERT_GE(block->size(), 6u);
  EXPECT_TRUE(static_cast<uint8_t>((*block)[1]) & 0x20);
  EXPECT_EQ(block->substr(2, 4), std::string("\xe3\xc6\xa7\xc2", 4));
  // A decompressor without the dictionary cannot read it; one with it can.
  HeaderDecompressor d;
  absl::StatusOr<Headers> back = d.Decompress(*block);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(HeaderValue(*back, "streamtype"), "error");
}

TEST(SpdyTest, EmptyHeaderBlocksRoundTrip) {
  HeaderCompressor c;
  HeaderDecompressor d;
  absl::StatusOr<std::string> block = c.Compress({});
  ASSERT_TRUE(block.ok());
  absl::StatusOr<Headers> back = d.Decompress(*block);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->empty());
}

TEST(SpdyTest, SynReplyAndGoAwayFramesHaveTheirControlTypes) {
  HeaderCompressor c;
  std::string reply = SynReplyFrame(3, kFlagFin, *c.Compress({}));
  Frame f;
  ASSERT_EQ(*ParseFrame(reply.data(), reply.size(), &f), reply.size());
  EXPECT_TRUE(f.control);
  EXPECT_EQ(f.type, kSynReply);
  EXPECT_EQ(f.flags, kFlagFin);
  EXPECT_EQ(*ParseStreamIdPrefix(f), 3u);
  std::string goaway = GoAwayFrame(9, 0);
  ASSERT_EQ(*ParseFrame(goaway.data(), goaway.size(), &f), goaway.size());
  EXPECT_EQ(f.type, kGoAway);
  EXPECT_EQ(*ParseStreamIdPrefix(f), 9u);
}

TEST(SpdyTest, AKeyLengthThatWrapsIn32BitsIsRefusedNotFollowed) {
  // 0xfffffffc + 4 is 0 in 32 bits: the check once passed and the parser jumped 4 GiB ahead.
  std::string raw;
  Put32(&raw, 1);
  Put32(&raw, 0xfffffffc);
  raw += "abcdefgh";
  RawCompressor c;
  HeaderDecompressor d;
  absl::StatusOr<Headers> h = d.Decompress(c.Compress(raw));
  EXPECT_FALSE(h.ok());
  // The same for a value length, and for lengths that merely run past the end.
  for (uint32_t vl : {0xffffffffu, 0xfffffffcu, 1000u}) {
    std::string v;
    Put32(&v, 1);
    Put32(&v, 1);
    v += "k";
    Put32(&v, vl);
    v += "xy";
    RawCompressor cv;
    HeaderDecompressor dv;
    EXPECT_FALSE(dv.Decompress(cv.Compress(v)).ok()) << vl;
  }
}

TEST(SpdyTest, HeaderCountsBeyondTheLimitAreRefused) {
  Headers many;
  for (size_t i = 0; i < kMaxHeaders; ++i) many.emplace_back("h" + std::to_string(i), "v");
  RawCompressor c;
  HeaderDecompressor d;
  absl::StatusOr<Headers> ok = d.Decompress(c.Compress(RawBlock(many)));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->size(), kMaxHeaders);
  many.emplace_back("one", "more");
  RawCompressor c2;
  HeaderDecompressor d2;
  EXPECT_FALSE(d2.Decompress(c2.Compress(RawBlock(many))).ok());
  // A count the block cannot hold is refused before anything is reserved for it.
  std::string huge;
  Put32(&huge, 0xffffffff);
  RawCompressor c3;
  HeaderDecompressor d3;
  EXPECT_FALSE(d3.Decompress(c3.Compress(huge)).ok());
}

TEST(SpdyTest, HeaderBlocksThatInflateBeyondTheLimitAreRefused) {
  // 200 KiB of one byte deflates to a few hundred bytes: a small frame, a large allocation.
  Headers bomb = {{"streamtype", std::string(200 << 10, 'a')}};
  RawCompressor c;
  std::string block = c.Compress(RawBlock(bomb));
  EXPECT_LT(block.size(), 2048u);
  HeaderDecompressor d;
  EXPECT_FALSE(d.Decompress(block).ok());
  // Exactly the limit is fine.
  std::string exact = RawBlock({{"k", ""}});
  exact = RawBlock({{"k", std::string(kMaxHeaderBlockSize - exact.size(), 'b')}});
  ASSERT_EQ(exact.size(), kMaxHeaderBlockSize);
  RawCompressor ce;
  HeaderDecompressor de;
  absl::StatusOr<Headers> h = de.Decompress(ce.Compress(exact));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ((*h)[0].second.size(), kMaxHeaderBlockSize - 13);
}

TEST(SpdyTest, AHeaderStreamThatEndsIsRefusedRatherThanSpunOn) {
  // After Z_STREAM_END zlib consumes nothing more: a loop on "input left" never ended.
  RawCompressor c;
  std::string block = c.Compress(RawBlock({{"streamtype", "error"}}), Z_FINISH) + "trailing";
  HeaderDecompressor d;
  EXPECT_FALSE(d.Decompress(block).ok());
}

TEST(SpdyTest, ADecompressorThatFailedStaysFailed) {
  // Its zlib context no longer matches the peer's: later blocks would decode to garbage.
  HeaderCompressor c;
  HeaderDecompressor d;
  EXPECT_FALSE(d.Decompress("garbage").ok());
  EXPECT_FALSE(d.Decompress(*c.Compress({{"streamtype", "error"}})).ok());
}

TEST(SpdyTest, OversizedControlFramesAreRefusedFromTheirHeaderAlone) {
  std::string header = PingFrame(1).substr(0, 8);
  header[5] = '\xff';  // 24-bit length 0xff0004
  Frame f;
  // Refused before the 16 MiB payload is waited for.
  EXPECT_FALSE(ParseFrame(header.data(), header.size(), &f).ok());
  std::string at_limit = SynReplyFrame(1, 0, std::string(kMaxControlFrameLength - 4, 'x'));
  absl::StatusOr<size_t> used = ParseFrame(at_limit.data(), at_limit.size(), &f);
  ASSERT_TRUE(used.ok()) << used.status();
  EXPECT_EQ(*used, at_limit.size());
  // Data frames may use the whole 24-bit length.
  std::string data = DataFrame(1, 0, "", 0);
  data[5] = data[6] = data[7] = '\xff';
  used = ParseFrame(data.data(), data.size(), &f);
  ASSERT_TRUE(used.ok());
  EXPECT_EQ(*used, 0u);
}

TEST(SpdyTest, ControlFramesMustHaveTheirTypesLength) {
  auto frame = [](uint16_t type, const std::string& payload) {
    Frame f;
    f.control = true;
    f.type = type;
    f.payload = payload;
    return f;
  };
  EXPECT_TRUE(ValidateControlFrame(frame(kRstStream, std::string(8, 0))).ok());
  EXPECT_FALSE(ValidateControlFrame(frame(kRstStream, std::string(7, 0))).ok());
  EXPECT_FALSE(ValidateControlFrame(frame(kPing, std::string(8, 0))).ok());
  EXPECT_FALSE(ValidateControlFrame(frame(kGoAway, std::string(4, 0))).ok());
  EXPECT_FALSE(ValidateControlFrame(frame(kWindowUpdate, std::string(4, 0))).ok());
  EXPECT_FALSE(ValidateControlFrame(frame(kSynStream, std::string(9, 0))).ok());
  EXPECT_FALSE(ValidateControlFrame(frame(kHeaders, std::string(3, 0))).ok());
  std::string settings;
  Put32(&settings, 2);
  settings += std::string(16, 0);
  EXPECT_TRUE(ValidateControlFrame(frame(kSettings, settings)).ok());
  // 0x20000000 entries: 8 * n is 0 in 32 bits, which once matched an empty SETTINGS frame.
  std::string wraps;
  Put32(&wraps, 0x20000000);
  EXPECT_FALSE(ValidateControlFrame(frame(kSettings, wraps)).ok());
  EXPECT_FALSE(ValidateControlFrame(frame(kSettings, settings + "x")).ok());
  EXPECT_TRUE(ValidateControlFrame(frame(10, "")).ok());  // unknown types are ignored
}

TEST(SpdyTest, PingIdsKeepAll32Bits) {
  std::string wire = PingFrame(0x80000001);
  Frame f;
  ASSERT_EQ(*ParseFrame(wire.data(), wire.size(), &f), wire.size());
  EXPECT_EQ(*ParsePingId(f), 0x80000001u);
}

}  // namespace
}  // namespace berth::streaming::spdy
