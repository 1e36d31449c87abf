// libFuzzer target: the input is a checkpoint archive. It is checked and, once accepted,
// unpacked (CRIU images, then the writable layer) into a fresh scratch directory, which must
// then hold all that was written, only as files and directories, and no descriptor may leak.
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "runtime/checkpoint.h"
#include "runtime/checkpoint_testing.h"
#include "util/fd.h"
#include "util/fs.h"

namespace {

using berth::UniqueFd;
namespace rt = berth::engine;

[[noreturn]] void Fail(const std::string& why) {
  fprintf(stderr, "checkpoint_fuzz: %s\n", why.c_str());
  abort();
}

std::set<std::string> Children(const std::string& dir) {
  std::set<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) Fail("opendir " + dir);
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.insert(n);
  }
  closedir(d);
  return out;
}

int OpenFds() { return static_cast<int>(Children("/proc/self/fd").size()); }

// Every inode below `dir` must be one `ok` accepts (lstat: a symlink is looked at, not through).
template <typename Ok>
void CheckTree(const std::string& dir, Ok ok) {
  for (const std::string& c : Children(dir)) {
    const std::string p = dir + "/" + c;
    struct stat st;
    if (lstat(p.c_str(), &st) != 0) Fail("lstat " + p);
    if (!ok(st)) Fail("unexpected inode type at " + p);
    if (S_ISDIR(st.st_mode)) CheckTree(p, ok);
  }
}

// Each input gets a directory of its own below this one, which must be all there is in it.
std::string parent_dir;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Small bounds keep every input fast (a few MB written at most) and let the fuzzer reach them.
  rt::checkpoint_testing::SetArchiveLimits({.max_bytes = 8 << 20, .max_entries = 512});
  const char* tmp = getenv("TEST_TMPDIR");
  std::string tmpl = std::string(tmp != nullptr ? tmp : "/tmp") + "/checkpoint-fuzz-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) Fail("mkdtemp " + tmpl);
  parent_dir = tmpl;
  atexit([] { rmdir(parent_dir.c_str()); });  // each input's directory is gone by then
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (parent_dir.empty()) LLVMFuzzerInitialize(nullptr, nullptr);
  const int fds_before = OpenFds();
  std::string tmpl = parent_dir + "/in-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) Fail("mkdtemp " + tmpl);
  const std::string base = tmpl, archive = base + "/archive";
  const std::string scratch = base + "/scratch", unpacked = scratch + "/unpacked",
                    upper = scratch + "/upper";
  {
    UniqueFd fd(open(archive.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd.valid() || !berth::WriteAll(fd.get(), reinterpret_cast<const char*>(data), size)) {
      Fail("writing " + archive);
    }
  }
  if (mkdir(scratch.c_str(), 0700) != 0 || mkdir(unpacked.c_str(), 0700) != 0) Fail("mkdir");

  {
    // CHECKPOINT_FUZZ_VERBOSE=1 says how far each input got (to see what the seeds reach).
    static const bool verbose = getenv("CHECKPOINT_FUZZ_VERBOSE") != nullptr;
    absl::StatusOr<rt::CheckpointArchive> a = rt::ReadCheckpointArchive(archive);
    absl::Status unpack = absl::UnknownError("not reached"), diff = unpack;
    if (a.ok()) {
      if (a->path != archive || a->container.config().id().empty()) Fail("accepted, yet empty");
      unpack = rt::UnpackCheckpointArchive(*a, unpacked);
      // The writable layer goes through the layer unpacker, which chroots: root only.
      if (unpack.ok() && geteuid() == 0) diff = rt::UnpackRootfsDiff(*a, unpacked, upper);
    }
    if (verbose) {
      fprintf(stderr, "read: %s\nunpack: %s\nrootfs diff: %s\n\n", a.status().ToString().c_str(),
              unpack.ToString().c_str(), diff.ToString().c_str());
    }
  }

  // Nothing beside what the calls were given.
  if (Children(parent_dir) != std::set<std::string>{base.substr(parent_dir.size() + 1)}) {
    Fail("something was written beside the input's directory");
  }
  if (Children(base) != std::set<std::string>{"archive", "scratch"}) Fail("written beside scratch");
  std::set<std::string> in_scratch = Children(scratch);
  in_scratch.erase("upper");
  if (in_scratch != std::set<std::string>{"unpacked"}) Fail("written beside unpacked/ and upper/");
  // The archive's own entries are files and directories only, and only the layout's names.
  CheckTree(unpacked,
            [](const struct stat& st) { return S_ISREG(st.st_mode) || S_ISDIR(st.st_mode); });
  for (const std::string& c : Children(unpacked)) {
    if (c != rt::kCheckpointImagesDir && c != rt::kCheckpointConfigDump &&
        c != rt::kCheckpointSpecDump && c != rt::kCheckpointRecord &&
        c != rt::kCheckpointRootfsDiff) {
      Fail("unpacked an entry outside the layout: " + c);
    }
  }
  // A writable layer holds no device nodes but whiteouts, no FIFOs, no sockets.
  if (access(upper.c_str(), F_OK) == 0) {
    CheckTree(upper, [](const struct stat& st) {
      if (S_ISCHR(st.st_mode)) return st.st_rdev == makedev(0, 0);
      return S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode);
    });
  }

  if (absl::Status st = berth::RemoveAll(base); !st.ok()) Fail(std::string(st.message()));
  if (OpenFds() != fds_before) Fail("a descriptor leaked");
  return 0;
}
