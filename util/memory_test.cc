#include "util/memory.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/base/config.h"
#include "gtest/gtest.h"

namespace berth {
namespace {

// A field of /proc/self/smaps_rollup in KiB.
long RollupKb(const std::string& field) {
  std::ifstream f("/proc/self/smaps_rollup");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

TEST(HeapTrimmer, DoesNothingWhileTheHeapDoesNotShrink) {
  HeapTrimmer trimmer;
  EXPECT_FALSE(trimmer.MaybeTrim());
  std::vector<std::unique_ptr<char[]>> kept;
  for (int i = 0; i < 1000; ++i) kept.push_back(std::make_unique<char[]>(4096));
  EXPECT_FALSE(trimmer.MaybeTrim());  // grew: nothing to give back
}

TEST(HeapTrimmer, GivesFreedPagesBackAfterABurst) {
#ifdef ABSL_HAVE_ADDRESS_SANITIZER
  // ASan's allocator replaces glibc's: freed blocks wait in its quarantine, and mallinfo2 and
  // malloc_trim see a glibc heap nothing allocates from. What is measured here is glibc's.
  GTEST_SKIP() << "glibc malloc behaviour; ASan replaces the allocator";
#endif
  HeapTrimmer trimmer(1 << 20);
  // 31 MiB in small blocks, then a block after them that keeps the heap's top from shrinking
  // by itself when they are freed: the freed memory stays resident until trimmed.
  std::vector<std::unique_ptr<char[]>> burst;
  burst.reserve(8193);
  for (int i = 0; i < 8193; ++i) {
    burst.push_back(std::make_unique<char[]>(4000));
    memset(burst.back().get(), 1, 4000);
  }
  // The last block, taken from the top of the heap after all the others.
  std::unique_ptr<char[]> pin = std::move(burst.back());
  burst.pop_back();
  EXPECT_FALSE(trimmer.MaybeTrim());
  burst.clear();
  const long before = RollupKb("Anonymous");
  ASSERT_GT(before, 30 << 10);  // the burst is 31.25 MiB
  EXPECT_TRUE(trimmer.MaybeTrim());
  const long after = RollupKb("Anonymous");
  EXPECT_LT(after, before - (16 << 10)) << "before " << before << " KiB, after " << after << " KiB";
  EXPECT_FALSE(trimmer.MaybeTrim());  // nothing new freed since
}

TEST(ReleaseStartupFilePages, DropsFilePagesOnlyThisProcessMaps) {
  const long before = RollupKb("Rss") - RollupKb("Anonymous");
  int advised = ReleaseStartupFilePages();
  if (advised == -1) GTEST_SKIP() << "kernel without MADV_PAGEOUT";
  EXPECT_GT(advised, 0);
  const long after = RollupKb("Rss") - RollupKb("Anonymous");
  EXPECT_LE(after, before);
}

}  // namespace
}  // namespace berth
