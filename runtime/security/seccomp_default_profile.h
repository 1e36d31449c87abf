// The text of seccomp_default_profile.json, compiled into the binary by a genrule (no runtime
// file).
#ifndef BERTH_RUNTIME_SECURITY_SECCOMP_DEFAULT_PROFILE_H_
#define BERTH_RUNTIME_SECURITY_SECCOMP_DEFAULT_PROFILE_H_

namespace berth::security::internal {

extern const char kDefaultSeccompProfileJson[];

}  // namespace berth::security::internal

#endif  // BERTH_RUNTIME_SECURITY_SECCOMP_DEFAULT_PROFILE_H_
