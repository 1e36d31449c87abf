// berthd's process-wide memory policy (issue #16): glibc malloc settings, giving freed heap back
// to the kernel once a burst of calls is over, and dropping the file pages only start-up touched.
#ifndef BERTH_UTIL_MEMORY_H_
#define BERTH_UTIL_MEMORY_H_

#include <cstddef>
#include <cstdint>

namespace berth {

// mallopt settings for a long-running daemon with bursty, mostly small allocations. Call first
// thing in main, before any thread starts (arenas are created as threads first allocate).
void ConfigureMalloc();

// Gives freed heap memory back to the kernel (malloc_trim) once the heap in use has fallen by
// at least `min_drop` bytes since its highest point after the last trim: after a burst of
// removals or a large list answer, not on every quiet tick. Not thread-safe: one caller, every
// few seconds.
class HeapTrimmer {
 public:
  explicit HeapTrimmer(size_t min_drop = size_t{1} << 20);
  // True when it trimmed.
  bool MaybeTrim();
  // Heap bytes in use (glibc arenas, not counting mmapped blocks).
  static size_t InUse();

 private:
  size_t min_drop_;
  size_t high_water_;
};

// Asks the kernel to reclaim this process's read-only file-backed pages (the executable's and
// the shared libraries' text, symbol tables and relocations) that no other process maps
// (MADV_PAGEOUT). Meant for once, right after start-up: loading ~120 libraries, relocating them
// and running their static initialisers touches ~30 MiB of pages that serving never reads
// again; the pages serving does use come back on first touch. Returns the number of mappings
// advised, or -1 when the kernel lacks MADV_PAGEOUT (before 5.4).
int ReleaseStartupFilePages();

}  // namespace berth

#endif  // BERTH_UTIL_MEMORY_H_
