// Signal names: image STOPSIGNAL forms, CRI's enum both ways, and what is refused.
#include "runtime/signals.h"

#include <signal.h>

#include "gtest/gtest.h"

namespace berth::engine {
namespace {

namespace cri = runtime::v1;

TEST(SignalsTest, ParsesTheFormsImagesUse) {
  EXPECT_EQ(*ParseSignal("SIGTERM"), SIGTERM);
  EXPECT_EQ(*ParseSignal("term"), SIGTERM);
  EXPECT_EQ(*ParseSignal("SIGQUIT"), SIGQUIT);
  EXPECT_EQ(*ParseSignal("9"), SIGKILL);
  EXPECT_EQ(*ParseSignal(" SIGWINCH "), SIGWINCH);
  EXPECT_EQ(*ParseSignal("SIGRTMIN"), 34);
  EXPECT_EQ(*ParseSignal("SIGRTMIN+3"), 37);
  EXPECT_EQ(*ParseSignal("RTMAX-1"), 63);
  EXPECT_EQ(*ParseSignal("SIGRTMAX"), 64);
}

TEST(SignalsTest, RefusesWhatIsNotASignal) {
  for (const char* bad : {"", "SIGFOO", "0", "65", "-1", "SIGRTMIN+", "SIGRTMIN-1", "SIGRTMAX+1",
                          "SIGRTMIN+40", "SIG", "TERM!"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(ParseSignal(bad).status())) << bad;
  }
}

TEST(SignalsTest, CriEnumBothWays) {
  EXPECT_EQ(FromCriSignal(cri::SIGNAL_RUNTIME_DEFAULT), 0);
  EXPECT_EQ(FromCriSignal(cri::SIGNAL_SIGTERM), SIGTERM);
  EXPECT_EQ(FromCriSignal(cri::SIGNAL_SIGUSR1), SIGUSR1);
  EXPECT_EQ(FromCriSignal(cri::SIGNAL_SIGRTMINPLUS1), 35);
  EXPECT_EQ(FromCriSignal(cri::SIGNAL_SIGRTMAXMINUS1), 63);
  EXPECT_EQ(ToCriSignal(SIGTERM), cri::SIGNAL_SIGTERM);
  EXPECT_EQ(ToCriSignal(SIGKILL), cri::SIGNAL_SIGKILL);
  EXPECT_EQ(ToCriSignal(SIGCHLD), cri::SIGNAL_SIGCHLD);
  // Every named value survives the round trip.
  for (int v = cri::Signal_MIN; v <= cri::Signal_MAX; ++v) {
    if (!cri::Signal_IsValid(v) || v == cri::SIGNAL_RUNTIME_DEFAULT) continue;
    auto s = static_cast<cri::Signal>(v);
    int num = FromCriSignal(s);
    ASSERT_GT(num, 0) << cri::Signal_Name(s);
    cri::Signal back = ToCriSignal(num);
    // Aliases (SIGCLD=SIGCHLD, SIGIOT=SIGABRT, SIGPOLL=SIGIO) come back as the main name.
    EXPECT_EQ(FromCriSignal(back), num) << cri::Signal_Name(s);
  }
}

}  // namespace
}  // namespace berth::engine
