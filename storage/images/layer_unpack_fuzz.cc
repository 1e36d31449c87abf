// libFuzzer target: any bytes, taken as a layer (tar, maybe compressed), are unpacked into a
// fresh scratch root beside a victim directory; nothing may appear, change or gain a link outside
// the root. Needs root, as the unpacker does (chroot, chown, mknod inside the root only).
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <set>
#include <string>

#include "storage/images/layer_unpack.h"
#include "util/fs.h"

namespace {

constexpr char kVictim[] = "original";

void Check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "layer_unpack_fuzz: %s\n", what);
    abort();
  }
}

std::set<std::string> Names(const std::string& dir) {
  std::set<std::string> out;
  DIR* d = opendir(dir.c_str());
  Check(d != nullptr, "scratch directory vanished");
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.insert(n);
  }
  closedir(d);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  char tmpl[] = "/tmp/berth-unpack-fuzz-XXXXXX";
  Check(mkdtemp(tmpl) != nullptr, "mkdtemp failed");
  const std::string dir = tmpl;
  const std::string root = dir + "/root";
  const std::string outside = dir + "/outside";
  Check(mkdir(root.c_str(), 0755) == 0 && mkdir(outside.c_str(), 0755) == 0, "mkdir failed");
  Check(berth::WriteFileAtomic(outside + "/victim", kVictim, 0644).ok(), "writing victim failed");
  Check(berth::WriteFileAtomic(dir + "/layer",
                               std::string(reinterpret_cast<const char*>(data), size), 0644)
            .ok(),
        "writing input failed");

  struct stat victim_before, outside_before;
  Check(lstat((outside + "/victim").c_str(), &victim_before) == 0 &&
            lstat(outside.c_str(), &outside_before) == 0,
        "stat before unpacking failed");

  berth::images::UnpackLimits limits;
  // Small budgets keep every input fast: a gzip bomb stops after a few MiB.
  limits.max_bytes = 8 << 20;
  limits.max_entries = 4096;
  (void)berth::images::UnpackLayer(dir + "/layer", root, limits);

  Check(Names(dir) == std::set<std::string>{"layer", "outside", "root"},
        "an entry appeared beside the root");
  Check(Names(outside) == std::set<std::string>{"victim"}, "an entry appeared in the victim dir");
  struct stat st;
  Check(lstat((outside + "/victim").c_str(), &st) == 0 && st.st_ino == victim_before.st_ino &&
            st.st_mode == victim_before.st_mode && st.st_nlink == 1 &&
            st.st_uid == victim_before.st_uid && st.st_gid == victim_before.st_gid &&
            st.st_size == victim_before.st_size,
        "the victim changed");
  auto content = berth::ReadFile(outside + "/victim");
  Check(content.ok() && *content == kVictim, "the victim's content changed");
  Check(lstat(outside.c_str(), &st) == 0 && st.st_mode == outside_before.st_mode &&
            st.st_uid == outside_before.st_uid && st.st_nlink == outside_before.st_nlink,
        "outside/ changed");
  Check(berth::RemoveAll(dir).ok(), "removing the scratch directory failed");
  return 0;
}
