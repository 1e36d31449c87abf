// The crash points of berthd: none. Weak, so //util:crash_point_enabled replaces it in the
// crash-point test binary only.
#include "util/crash_point.h"

namespace berth {

__attribute__((weak)) void CrashPoint(const char*, const char*) {}

}  // namespace berth
