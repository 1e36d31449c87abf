// The instructions of a Containerfile that the deploy tests compare with the installer script.
#ifndef BERTH_TEST_DEPLOY_CONTAINERFILE_H_
#define BERTH_TEST_DEPLOY_CONTAINERFILE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::test {

struct ContainerfileCopy {
  std::vector<std::string> sources;  // relative to the build context
  std::string destination;           // in the image; a trailing '/' means a directory
};

struct Containerfile {
  std::string from;                       // the (last) FROM image
  std::vector<ContainerfileCopy> copies;  // COPY instructions in order (ADD is not used)
  std::vector<std::string> entrypoint;    // exec form only
  std::vector<std::string> runs;          // RUN instructions, continuation lines joined

  // The image path `source` is copied to, or "" when no COPY takes it.
  std::string DestinationOf(const std::string& source) const;
  // The build-context source copied to image path `destination`, or "" when none is.
  std::string SourceOf(const std::string& destination) const;
};

// Parses comments, '\' continuations, FROM, COPY (shell form, no --flags), RUN and the JSON exec
// form of ENTRYPOINT. Other instructions are accepted and ignored.
absl::StatusOr<Containerfile> ParseContainerfile(const std::string& text);

}  // namespace berth::test

#endif  // BERTH_TEST_DEPLOY_CONTAINERFILE_H_
