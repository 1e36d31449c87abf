// Crash points: the places berthd is made to die at by the crash-point tests (issue 17: every
// step of every CRI call must converge after a crash). In berthd they do nothing; the test-only
// binary //server:berthd_crash_points links //util:crash_point_enabled, whose CrashPoint SIGKILLs
// the process at the point BERTH_CRASH_AT names ("what:detail#n", the n-th time it is reached)
// and, with BERTH_CRASH_POINTS_LOG set, appends every point reached to that file.
#ifndef BERTH_UTIL_CRASH_POINT_H_
#define BERTH_UTIL_CRASH_POINT_H_

namespace berth {

// A step is done (its effect saved or made): a crash here must converge at the next start.
void CrashPoint(const char* what, const char* detail = "");

// `result`, past the crash point "what:detail" when it is OK.
template <typename Result>
Result AfterStep(Result result, const char* what, const char* detail) {
  if (result.ok()) CrashPoint(what, detail);
  return result;
}

}  // namespace berth

#endif  // BERTH_UTIL_CRASH_POINT_H_
