// berth's version, reported by Version, `berthd --version` and the metrics.
#ifndef BERTH_SERVER_VERSION_H_
#define BERTH_SERVER_VERSION_H_

namespace berth {
inline constexpr char kBerthVersion[] = "0.1.0";
}  // namespace berth

#endif  // BERTH_SERVER_VERSION_H_
