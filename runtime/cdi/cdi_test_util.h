// Helpers shared by the CDI tests: sample spec files, status checks, one-device specs.
#ifndef BERTH_RUNTIME_CDI_CDI_TEST_UTIL_H_
#define BERTH_RUNTIME_CDI_CDI_TEST_UTIL_H_

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "runtime/cdi/cdi.h"

namespace berth::cdi {

using json = nlohmann::json;

// A file of runtime/cdi/testdata/specs/.
inline std::string Testdata(const std::string& name) {
  std::ifstream in("runtime/cdi/testdata/specs/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline bool Mentions(const absl::Status& st, absl::string_view text) {
  return st.message().find(text) != absl::string_view::npos;
}

#define EXPECT_INVALID(expr, text)                                              \
  do {                                                                          \
    absl::Status st_ = (expr);                                                  \
    EXPECT_TRUE(absl::IsInvalidArgument(st_)) << st_;                           \
    EXPECT_TRUE(Mentions(st_, text)) << "want \"" << (text) << "\" in " << st_; \
  } while (0)

// A JSON spec of `version` with one device "dev" whose edits are `edits`.
inline std::string OneDevice(absl::string_view version, absl::string_view edits,
                             absl::string_view kind = "vendor.com/class",
                             absl::string_view name = "dev") {
  return absl::StrCat(R"({"cdiVersion":")", version, R"(","kind":")", kind,
                      R"(","devices":[{"name":")", name, R"(","containerEdits":)", edits, "}]}");
}

inline absl::Status ParseJson(absl::string_view text) {
  return ParseSpec(text, SpecFormat::kJson, "test.json").status();
}
inline absl::Status ParseYaml(absl::string_view text) {
  return ParseSpec(text, SpecFormat::kYaml, "test.yaml").status();
}

// An OCI spec with a user, an environment, mounts and a device rule for the edits to change.
inline json BaseSpec() {
  return json::parse(R"({
    "ociVersion": "1.0.2",
    "process": {"user": {"uid": 1000, "gid": 1000, "additionalGids": [5]},
                "env": ["PATH=/usr/bin", "A=old", "B=keep"]},
    "mounts": [
      {"destination": "/proc", "type": "proc", "source": "proc"},
      {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
      {"destination": "/dev/shm", "type": "bind", "source": "/run/shm", "options": ["rbind"]},
      {"destination": "/opt/data/", "type": "bind", "source": "/old", "options": ["rbind"]}
    ],
    "linux": {"resources": {"devices": [{"allow": false, "access": "rwm"}]}}
  })");
}

}  // namespace berth::cdi

#endif  // BERTH_RUNTIME_CDI_CDI_TEST_UTIL_H_
