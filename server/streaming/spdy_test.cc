// SPDY/3.1 framing: frames round-trip, header blocks survive compression with the dictionary
// across several blocks on one context, and partial input asks for more.
#include "server/streaming/spdy.h"

#include "gtest/gtest.h"

namespace berth::streaming::spdy {
namespace {

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

}  // namespace
}  // namespace berth::streaming::spdy
