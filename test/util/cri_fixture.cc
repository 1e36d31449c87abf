// Storage for the fixture's suite-wide registry.
#include "test/util/cri_fixture.h"

namespace berth::test {

std::unique_ptr<TestRegistry> CriFixture::registry_;

}  // namespace berth::test
