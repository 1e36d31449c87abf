// glibc malloc tuning, heap trimming and start-up page release for berthd.
#include "util/memory.h"

#include <malloc.h>
#include <sys/mman.h>

#include <cstdio>
#include <fstream>
#include <string>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21  // Linux 5.4
#endif

namespace berth {

void ConfigureMalloc() {
  // glibc gives every thread that allocates its own arena, up to 8 per core, and hardly ever
  // returns an arena's free memory: 2 arenas are plenty for berthd's calls on a node.
  mallopt(M_ARENA_MAX, 2);
  // A fixed threshold: blocks of 128 KiB and more (list answers, serialised stats, image
  // manifests) are mmapped and go back to the kernel on free. Left dynamic, glibc raises it to
  // the largest block freed so far and such blocks then fragment the heap for good.
  mallopt(M_MMAP_THRESHOLD, 128 << 10);
  // The top of the main heap is returned on free beyond this (glibc's default, made fixed too:
  // setting M_MMAP_THRESHOLD already stops its dynamic growth).
  mallopt(M_TRIM_THRESHOLD, 128 << 10);
}

HeapTrimmer::HeapTrimmer(size_t min_drop) : min_drop_(min_drop), high_water_(InUse()) {}

size_t HeapTrimmer::InUse() { return mallinfo2().uordblks; }

bool HeapTrimmer::MaybeTrim() {
  const size_t now = InUse();
  if (now > high_water_) high_water_ = now;
  if (high_water_ - now < min_drop_) return false;
  malloc_trim(0);
  high_water_ = InUse();
  return true;
}

int ReleaseStartupFilePages() {
  std::ifstream maps("/proc/self/maps");
  int advised = 0, refused = 0;
  for (std::string line; std::getline(maps, line);) {
    unsigned long start = 0, end = 0, inode = 0;
    char perms[5] = {};
    // start-end perms offset dev inode [path]
    if (sscanf(line.c_str(), "%lx-%lx %4s %*x %*s %lu", &start, &end, perms, &inode) != 4) continue;
    // Only read-only file pages: written private pages are anonymous copies (no swap here),
    // and shared writable mappings would be written back.
    if (inode == 0 || perms[1] != '-' || perms[3] != 'p') continue;
    if (madvise(reinterpret_cast<void*>(start), end - start, MADV_PAGEOUT) == 0) {
      ++advised;
    } else {
      ++refused;
    }
  }
  return advised == 0 && refused > 0 ? -1 : advised;
}

}  // namespace berth
