// The busybox test image: one gzip layer made with libarchive from the host's static busybox.
#include "test/util/busybox_image.h"

#include "absl/strings/str_cat.h"
#include "test/registry/tar_builder.h"
#include "util/fs.h"

namespace berth::test {

absl::StatusOr<PushedImage> PushBusybox(const std::string& host, const std::string& repository,
                                        const std::string& tag) {
  absl::StatusOr<std::string> busybox = ReadFile("/bin/busybox");
  if (!busybox.ok()) {
    return absl::FailedPreconditionError("/bin/busybox is missing: apt-get install busybox-static");
  }
  std::vector<TarEntry> entries = {
      Dir("bin"),
      Dir("etc"),
      Dir("tmp", 01777),
      Dir("var"),
      Dir("var/www"),
      Dir("root", 0700),
      File("bin/busybox", *busybox, 0755),
      File("etc/passwd",
           "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/sh\n"
           "nobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n"),
      File("etc/group", "root:x:0:\nwww:x:33:\nstaff:x:50:www\nnogroup:x:65534:\n"),
  };
  for (const char* applet :
       {"sh",       "echo", "cat",   "sleep", "id",  "ls",    "true",  "false", "env",
        "hostname", "wget", "httpd", "nc",    "ps",  "touch", "mkdir", "grep",  "head",
        "kill",     "stty", "yes",   "dd",    "cut", "wc",    "test",  "["}) {
    entries.push_back(Symlink(absl::StrCat("bin/", applet), "busybox"));
  }
  ImageToPush image;
  image.layers.push_back(MakeLayer(entries));
  image.cmd = {"/bin/sh"};
  image.env = {"PATH=/bin"};
  return PushImage(host, repository, {tag}, image);
}

}  // namespace berth::test
