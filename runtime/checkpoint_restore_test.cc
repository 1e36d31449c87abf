// The CRI config of a restored container: what the checkpointed process was comes from the
// archive, everything that reaches the host from the request alone.
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "runtime/checkpoint.h"
#include "runtime/checkpoint_test_util.h"

namespace berth::engine {
namespace {

namespace cri = runtime::v1;
using checkpoint_test::Record;

// What a restored container may take from an archive is what the checkpointed process was (its
// image, command, args, env, working directory); everything that reaches the host comes from the
// request alone, even when the request leaves it unset.
TEST(CheckpointTest, HostFacingFieldsComeOnlyFromTheRequest) {
  cri::ContainerConfig old;
  old.mutable_metadata()->set_name("counter");
  old.mutable_metadata()->set_attempt(3);
  old.mutable_image()->set_image("busybox");
  old.add_command("/bin/sh");
  old.add_args("-c");
  old.add_args("count");
  auto* env = old.add_envs();
  env->set_key("STEP");
  env->set_value("2");
  old.set_working_dir("/work");
  (*old.mutable_labels())["app"] = "old";
  (*old.mutable_annotations())["org.criu.config"] = "/tmp/evil.conf";
  old.set_log_path("../../../etc/cron.d/evil");
  auto* m = old.add_mounts();
  m->set_container_path("/host");
  m->set_host_path("/");
  auto* d = old.add_devices();
  d->set_container_path("/dev/sda");
  d->set_host_path("/dev/sda");
  d->set_permissions("rwm");
  old.set_tty(true);
  auto* sc = old.mutable_linux()->mutable_security_context();
  sc->set_privileged(true);
  sc->mutable_capabilities()->add_add_capabilities("SYS_ADMIN");
  sc->mutable_namespace_options()->set_network(cri::NODE);
  sc->mutable_namespace_options()->set_pid(cri::NODE);
  sc->mutable_run_as_user()->set_value(0);
  old.mutable_linux()->mutable_resources()->set_cpu_shares(512);

  cri::ContainerConfig req;
  req.mutable_metadata()->set_name("counter-restored");
  req.mutable_image()->set_image("/var/lib/ckpt.tar");
  (*req.mutable_labels())["app"] = "new";
  (*req.mutable_annotations())["b"] = "2";

  cri::ContainerConfig out = MergeRestoreConfig(old, req);
  EXPECT_EQ(out.metadata().name(), "counter-restored");
  EXPECT_EQ(out.metadata().attempt(), 0u);
  EXPECT_EQ(out.image().image(), "busybox");
  EXPECT_EQ(absl::StrJoin(out.command(), " "), "/bin/sh");
  EXPECT_EQ(absl::StrJoin(out.args(), " "), "-c count");
  ASSERT_EQ(out.envs_size(), 1);
  EXPECT_EQ(out.envs(0).key(), "STEP");
  EXPECT_EQ(out.working_dir(), "/work");
  EXPECT_EQ(out.labels().size(), 1u);
  EXPECT_EQ(out.labels().at("app"), "new");
  EXPECT_EQ(out.annotations().size(), 1u);
  EXPECT_EQ(out.annotations().at("b"), "2");
  EXPECT_EQ(out.log_path(), "");
  EXPECT_EQ(out.mounts_size(), 0);
  EXPECT_EQ(out.devices_size(), 0);
  EXPECT_FALSE(out.tty());
  EXPECT_FALSE(out.linux().has_security_context());
  EXPECT_FALSE(out.linux().has_resources());

  // What the request sets is taken whole.
  req.set_log_path("counter-restored_0.log");
  req.mutable_linux()->mutable_resources()->set_cpu_shares(1024);
  req.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_ipc(cri::POD);
  out = MergeRestoreConfig(old, req);
  EXPECT_EQ(out.log_path(), "counter-restored_0.log");
  EXPECT_EQ(out.linux().resources().cpu_shares(), 1024);
  EXPECT_FALSE(out.linux().security_context().privileged());
  EXPECT_EQ(out.linux().security_context().namespace_options().network(), cri::POD);
  EXPECT_EQ(out.linux().security_context().namespace_options().pid(), cri::POD);
}

// CRI-O's rule: every mount the checkpointed container had needs one at the same container path
// in the request (its host side comes from the request); mounts it never had are not added.
TEST(CheckpointTest, RestoredMountsAreTheRequestsAtTheCheckpointedPaths) {
  cri::ContainerConfig old;
  for (const char* p : {"/data", "/cache"}) {
    auto* m = old.add_mounts();
    m->set_container_path(p);
    m->set_host_path(absl::StrCat("/old", p));
  }
  cri::ContainerConfig req;
  auto* m = req.add_mounts();
  m->set_container_path("/data");
  m->set_host_path("/new/data");
  m->set_readonly(true);
  absl::Status st = CheckRestoreMounts(old, req);
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "config.mounts")) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "/cache")) << st;
  EXPECT_FALSE(absl::StrContains(st.message(), "/data")) << st;

  m = req.add_mounts();
  m->set_container_path("/cache");
  m->set_host_path("/new/cache");
  m = req.add_mounts();
  m->set_container_path("/extra");
  m->set_host_path("/new/extra");
  EXPECT_TRUE(CheckRestoreMounts(old, req).ok());
  cri::ContainerConfig out = MergeRestoreConfig(old, req);
  ASSERT_EQ(out.mounts_size(), 2);
  EXPECT_EQ(out.mounts(0).container_path(), "/data");
  EXPECT_EQ(out.mounts(0).host_path(), "/new/data");
  EXPECT_TRUE(out.mounts(0).readonly());
  EXPECT_EQ(out.mounts(1).host_path(), "/new/cache");
}

TEST(CheckpointTest, AwaitingRestoreUntilConmonRunsIt) {
  berth::v1::Container c = Record("abc");
  c.mutable_state()->set_status(berth::v1::CONTAINER_STATUS_CREATED);
  EXPECT_FALSE(AwaitingRestore(c));
  c.mutable_config()->mutable_restore()->set_archive("/ckpt.tar");
  EXPECT_TRUE(AwaitingRestore(c));
  c.mutable_state()->set_conmon_pid(42);
  EXPECT_FALSE(AwaitingRestore(c));
}

}  // namespace
}  // namespace berth::engine
