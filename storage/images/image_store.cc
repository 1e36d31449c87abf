// ImageStore: the pull pipeline (resolve, fetch config, fetch+unpack layers in parallel, record),
// lookups over an in-memory index, garbage collection, and overlay rootfs mounts.
#include "storage/images/image_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <set>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "glog/logging.h"
#include "storage/images/image_config.h"
#include "storage/images/layer_unpack.h"
#include "storage/registry/digest.h"
#include "storage/registry/reference.h"
#include "util/fd.h"
#include "util/fs.h"
#include "util/mount.h"

namespace berth::images {
namespace {

using registry::DigestHex;

bool ValidContainerId(const std::string& id) {
  if (id.empty() || id.size() > 128 || id == "." || id == "..") return false;
  for (char c : id) {
    if (!(absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.')) return false;
  }
  return true;
}

bool IsHex(absl::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789abcdef") == absl::string_view::npos;
}

// Sums allocated bytes and inodes below dir_fd without following symlinks or crossing mounts.
void WalkUsage(int dir_fd, dev_t dev, DiskUsage* u, std::set<std::pair<dev_t, ino_t>>* seen,
               int depth) {
  if (depth > 256) return;
  DIR* d = fdopendir(dup(dir_fd));
  if (d == nullptr) return;
  while (struct dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    struct stat st;
    if (fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != dev) continue;
    if (st.st_nlink > 1 && !S_ISDIR(st.st_mode) && !seen->insert({st.st_dev, st.st_ino}).second) {
      continue;
    }
    u->inodes++;
    u->bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    if (S_ISDIR(st.st_mode)) {
      UniqueFd sub(openat(dir_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub.valid()) WalkUsage(sub.get(), dev, u, seen, depth + 1);
    }
  }
  closedir(d);
}

absl::StatusOr<DiskUsage> UsageOf(const std::string& path) {
  DiskUsage u;
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, " does not exist"));
    return Errno(absl::StrCat("open ", path));
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return Errno(absl::StrCat("stat ", path));
  std::set<std::pair<dev_t, ino_t>> seen;
  WalkUsage(fd.get(), st.st_dev, &u, &seen, 0);
  return u;
}

bool IsMounted(const std::string& path) {
  struct stat a, b;
  if (stat(path.c_str(), &a) != 0 || stat((path + "/..").c_str(), &b) != 0) return false;
  return a.st_dev != b.st_dev || a.st_ino == b.st_ino;
}

// The names in a directory (none when it cannot be read), without "." and "..".
std::vector<std::string> ContainerDirEntries(const std::string& dir) {
  std::vector<std::string> out;
  UniqueDir d(opendir(dir.c_str()));
  if (!d) return out;
  while (struct dirent* e = readdir(d.get())) {
    if (e->d_name[0] != '.') out.emplace_back(e->d_name);
  }
  return out;
}

std::string ShortLinkName(const std::string& chain_id) {
  return std::string(DigestHex(chain_id).substr(0, 16));
}

}  // namespace

// Keeps digests and chain ids out of GC's reach while a pull needs them.
class ImageStore::Pins {
 public:
  explicit Pins(ImageStore* store) : store_(store) {}
  ~Pins() {
    absl::MutexLock l(&store_->mu_);
    for (const auto& k : keys_) {
      if (--store_->pins_[k] <= 0) store_->pins_.erase(k);
    }
  }
  void Add(const std::string& key) {
    absl::MutexLock l(&store_->mu_);
    store_->pins_[key]++;
    keys_.push_back(key);
  }

 private:
  ImageStore* store_;
  std::vector<std::string> keys_;
};

struct ImageStore::Flight {
  absl::Mutex mu;
  bool done ABSL_GUARDED_BY(mu) = false;
  absl::Status status ABSL_GUARDED_BY(mu);
};

ImageStore::ImageStore(PrivateKey, std::string root, std::string containers_root,
                       storage::StateDB* db, registry::RegistryConfig config, PullLimits limits)
    : root_(std::move(root)),
      containers_root_(std::move(containers_root)),
      db_(db),
      client_(config),
      max_parallel_downloads_(std::max(1, config.max_parallel_downloads)),
      limits_(limits),
      free_download_slots_(std::max(1, config.max_parallel_downloads)) {}

ImageStore::~ImageStore() = default;

absl::StatusOr<std::unique_ptr<ImageStore>> ImageStore::Open(const std::string& root,
                                                             storage::StateDB* db,
                                                             registry::RegistryConfig config,
                                                             PullLimits limits,
                                                             std::string containers_dir) {
  if (root.empty() || root[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("image store root \"", root, "\" is not absolute"));
  }
  if (containers_dir.empty()) containers_dir = root + "/containers";
  if (containers_dir[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("containers directory \"", containers_dir, "\" is not absolute"));
  }
  for (const char* sub : {"/blobs/sha256", "/layers", "/l", "/empty"}) {
    if (absl::Status s = MakeDirs(root + sub, 0700); !s.ok()) return s;
  }
  if (absl::Status s = MakeDirs(containers_dir, 0700); !s.ok()) return s;
  if (absl::Status s = RemoveAll(root + "/tmp"); !s.ok()) return s;
  if (absl::Status s = MakeDirs(root + "/tmp", 0700); !s.ok()) return s;
  auto store = std::make_unique<ImageStore>(PrivateKey(), root, containers_dir, db,
                                            std::move(config), limits);
  if (absl::Status s = store->Load(); !s.ok()) return s;
  // Interrupted downloads leave "<hex>.tmp-*" files beside the blobs.
  if (DIR* d = opendir((root + "/blobs/sha256").c_str())) {
    while (struct dirent* e = readdir(d)) {
      if (strstr(e->d_name, ".tmp-") != nullptr)
        unlink((root + "/blobs/sha256/" + e->d_name).c_str());
    }
    closedir(d);
  }
  return store;
}

absl::Status ImageStore::Load() {
  absl::MutexLock l(&mu_);
  return db_->ForEach(storage::Kind::kImages, [&](absl::string_view key, absl::string_view value) {
    mu_.AssertHeld();  // called synchronously, under the lock above
    v1::Image img;
    if (!img.ParseFromArray(value.data(), value.size())) {
      LOG(ERROR) << "image record " << key << " does not parse; skipped";
      return absl::OkStatus();
    }
    images_[img.id()] = img;
    IndexLocked(img);
    return absl::OkStatus();
  });
}

void ImageStore::IndexLocked(const v1::Image& image) {
  for (const auto& t : image.repo_tags()) by_tag_[t] = image.id();
  for (const auto& d : image.repo_digests()) by_digest_[d] = image.id();
}

void ImageStore::UnindexLocked(const v1::Image& image) {
  for (const auto& t : image.repo_tags()) {
    if (auto it = by_tag_.find(t); it != by_tag_.end() && it->second == image.id())
      by_tag_.erase(it);
  }
  for (const auto& d : image.repo_digests()) {
    if (auto it = by_digest_.find(d); it != by_digest_.end() && it->second == image.id()) {
      by_digest_.erase(it);
    }
  }
}

std::string ImageStore::BlobPath(const std::string& digest) const {
  return absl::StrCat(root_, "/blobs/sha256/", DigestHex(digest));
}
std::string ImageStore::LayerPath(const std::string& chain_id) const {
  return absl::StrCat(root_, "/layers/", DigestHex(chain_id));
}
std::string ImageStore::ContainerDir(const std::string& id) const {
  return absl::StrCat(ContainersRoot(), "/", id);
}

absl::Status ImageStore::Once(const std::string& key, const std::function<absl::Status()>& fn) {
  std::shared_ptr<Flight> flight;
  bool leader = false;
  {
    absl::MutexLock l(&flights_mu_);
    auto& slot = flights_[key];
    if (!slot) {
      slot = std::make_shared<Flight>();
      leader = true;
    }
    flight = slot;
  }
  if (!leader) {
    absl::MutexLock l(&flight->mu);
    flight->mu.Await(absl::Condition(
        +[](bool* done) { return *done; }, &flight->done));
    return flight->status;
  }
  absl::Status s = fn();
  {
    absl::MutexLock l(&flights_mu_);
    flights_.erase(key);
  }
  absl::MutexLock l(&flight->mu);
  flight->status = s;
  flight->done = true;
  return s;
}

absl::Status ImageStore::EnsureBlob(const registry::Reference& ref,
                                    const registry::Descriptor& blob,
                                    const registry::Credentials& creds) {
  return Once("blob:" + blob.digest, [&]() -> absl::Status {
    struct stat st;
    if (stat(BlobPath(blob.digest).c_str(), &st) == 0 && st.st_size == blob.size) {
      return absl::OkStatus();
    }
    absl::Status room =
        CheckFreeSpace(blob.size, absl::StrCat("blob ", blob.digest, " of ", ref.Name()));
    if (!room.ok()) return room;
    {
      absl::MutexLock l(&slots_mu_);
      slots_mu_.Await(absl::Condition(
          +[](int* free) { return *free > 0; }, &free_download_slots_));
      --free_download_slots_;
    }
    absl::Cleanup release = [&] {
      absl::MutexLock l(&slots_mu_);
      ++free_download_slots_;
    };
    absl::Status s = client_.FetchBlob(ref, blob, BlobPath(blob.digest), creds);
    if (s.ok()) blobs_downloaded_++;
    return s;
  });
}

absl::Status ImageStore::EnsureLayer(const registry::Reference& ref,
                                     const registry::Descriptor& blob, const std::string& diff_id,
                                     const std::string& chain_id,
                                     const registry::Credentials& creds,
                                     std::atomic<int64_t>* image_bytes_left) {
  return Once("layer:" + chain_id, [&]() -> absl::Status {
    std::string final_dir = LayerPath(chain_id);
    std::string link = root_ + "/l/" + ShortLinkName(chain_id);
    auto ensure_link = [&] {
      std::string want = "../layers/" + std::string(DigestHex(chain_id));
      char buf[PATH_MAX];
      ssize_t n = readlink(link.c_str(), buf, sizeof(buf));
      if (n >= 0 && std::string(buf, n) == want) return;
      if (n < 0 && symlink(want.c_str(), link.c_str()) != 0) {
        LOG(WARNING) << "short link " << link << ": " << strerror(errno);
      }
    };
    if (PathExists(final_dir)) {
      ensure_link();
      return absl::OkStatus();
    }
    if (absl::Status s = EnsureBlob(ref, blob, creds); !s.ok()) return s;
    std::string tmp = absl::StrCat(root_, "/tmp/unpack-", NewId().substr(0, 16));
    if (mkdir(tmp.c_str(), 0755) != 0) return Errno(absl::StrCat("mkdir ", tmp));
    absl::Cleanup drop_tmp = [&] { (void)RemoveAll(tmp); };
    UnpackLimits limits;
    limits.max_bytes = static_cast<uint64_t>(std::max<int64_t>(0, limits_.max_layer_bytes));
    limits.max_entries = static_cast<uint64_t>(std::max<int64_t>(0, limits_.max_layer_entries));
    limits.image_bytes_left = image_bytes_left;
    limits.image_max_bytes = limits_.max_image_bytes;
    limits.min_free_bytes = static_cast<uint64_t>(std::max<int64_t>(0, limits_.min_free_bytes));
    auto got = UnpackLayer(BlobPath(blob.digest), tmp, limits);
    if (!got.ok()) {
      return absl::Status(
          got.status().code(),
          absl::StrCat("layer ", blob.digest, " of ", ref.Name(), ": ", got.status().message()));
    }
    if (*got != diff_id) {
      return absl::DataLossError(absl::StrCat("layer ", blob.digest, " of ", ref.Name(),
                                              " unpacks to diff ID ", *got, ", config says ",
                                              diff_id));
    }
    if (rename(tmp.c_str(), final_dir.c_str()) != 0) {
      return Errno(absl::StrCat("rename ", tmp, " to ", final_dir));
    }
    ensure_link();
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::Image> ImageStore::Pull(const std::string& ref_string,
                                           const registry::Credentials& creds) {
  auto ref = registry::ParseReference(ref_string);
  if (!ref.ok()) return ref.status();
  auto resolved = client_.Resolve(*ref, creds);
  if (!resolved.ok()) return resolved.status();
  const registry::Manifest& m = resolved->manifest;
  if (m.layers.size() > static_cast<size_t>(std::max(0, limits_.max_layers))) {
    return absl::InvalidArgumentError(absl::StrCat(
        ref->String(), ": manifest ", resolved->manifest_digest, " has ", m.layers.size(),
        " layers, more than images.max_layers = ", limits_.max_layers));
  }
  Pins pins(this);
  pins.Add(resolved->manifest_digest);
  pins.Add(m.config.digest);
  for (const auto& l : m.layers) pins.Add(l.digest);

  // The manifest is kept beside the blobs it names, verified by the client already.
  if (!PathExists(BlobPath(resolved->manifest_digest))) {
    if (absl::Status s =
            WriteFileAtomic(BlobPath(resolved->manifest_digest), resolved->manifest_body, 0644);
        !s.ok()) {
      return s;
    }
  }
  if (m.config.size > limits_.max_config_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(ref->String(), ": image config ", m.config.digest, " has ", m.config.size,
                     " bytes, more than images.max_config_bytes = ", limits_.max_config_bytes));
  }
  if (absl::Status s = EnsureBlob(*ref, m.config, creds); !s.ok()) return s;
  auto config_body = ReadFile(BlobPath(m.config.digest));
  if (!config_body.ok()) return config_body.status();
  v1::Image image;
  std::vector<std::string> diff_ids;
  if (absl::Status s =
          ParseImageConfig(*config_body, absl::StrCat("image config ", m.config.digest),
                           image.mutable_config(), &diff_ids);
      !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(ref->String(), ": ", s.message()));
  }
  if (diff_ids.size() != m.layers.size()) {
    return absl::InvalidArgumentError(absl::StrCat(ref->String(), ": manifest has ",
                                                   m.layers.size(), " layers, config ",
                                                   diff_ids.size(), " diff IDs"));
  }
  std::vector<std::string> chain_ids;
  for (size_t i = 0; i < diff_ids.size(); ++i) {
    chain_ids.push_back(i == 0 ? diff_ids[0]
                               : registry::DigestOf(chain_ids[i - 1] + " " + diff_ids[i]));
    pins.Add(chain_ids.back());
  }

  // Layers in parallel; each waits for a global download slot inside EnsureBlob.
  std::vector<absl::Status> results(m.layers.size());
  std::atomic<int64_t> image_bytes_left{limits_.max_image_bytes};
  {
    std::atomic<size_t> next{0};
    std::vector<std::jthread> workers;
    size_t n = std::min<size_t>(m.layers.size(), max_parallel_downloads_);
    for (size_t w = 0; w < n; ++w) {
      workers.emplace_back([&] {
        for (size_t i = next++; i < m.layers.size(); i = next++) {
          results[i] =
              EnsureLayer(*ref, m.layers[i], diff_ids[i], chain_ids[i], creds, &image_bytes_left);
        }
      });
    }
  }
  for (const absl::Status& s : results) {
    if (!s.ok()) return s;
  }

  image.set_id(m.config.digest);
  uint64_t size = m.config.size;
  for (const auto& l : m.layers) {
    size += l.size;
    image.add_layer_digests(l.digest);
  }
  image.set_size(size);
  for (const auto& d : diff_ids) image.add_diff_ids(d);
  for (const auto& c : chain_ids) image.add_chain_ids(c);
  image.set_manifest_digest(resolved->manifest_digest);
  image.set_pulled_at_ns(absl::ToUnixNanos(absl::Now()));

  absl::MutexLock l(&mu_);
  std::set<std::string> tags, digests;
  if (auto it = images_.find(image.id()); it != images_.end()) {
    tags.insert(it->second.repo_tags().begin(), it->second.repo_tags().end());
    digests.insert(it->second.repo_digests().begin(), it->second.repo_digests().end());
    image.set_pinned(it->second.pinned());
  }
  std::string tag = ref->TagRef();
  if (!tag.empty()) tags.insert(tag);
  digests.insert(ref->DigestRef(resolved->digest));
  for (const auto& t : tags) image.add_repo_tags(t);
  for (const auto& d : digests) image.add_repo_digests(d);

  // The tag moves: the image it named before loses it, in the same batch.
  storage::Batch batch;
  std::vector<v1::Image> changed;
  if (auto it = by_tag_.find(tag);
      !tag.empty() && it != by_tag_.end() && it->second != image.id()) {
    v1::Image old = images_[it->second];
    auto* t = old.mutable_repo_tags();
    t->erase(std::remove(t->begin(), t->end(), tag), t->end());
    batch.Put(storage::Kind::kImages, old.id(), old);
    changed.push_back(old);
  }
  batch.Put(storage::Kind::kImages, image.id(), image);
  if (absl::Status s = db_->Commit(std::move(batch)); !s.ok()) return s;
  changed.push_back(image);
  for (const auto& c : changed) {
    if (auto it = images_.find(c.id()); it != images_.end()) UnindexLocked(it->second);
    images_[c.id()] = c;
    IndexLocked(c);
  }
  LOG(INFO) << "pulled " << ref->String() << " as " << image.id();
  return image;
}

absl::StatusOr<v1::Image> ImageStore::GetLocked(const std::string& ref,
                                                bool allow_id_prefix) const {
  if (ref.empty()) return absl::InvalidArgumentError("image reference is empty");
  std::string id = absl::StartsWith(ref, "sha256:") ? ref : "sha256:" + ref;
  if (registry::IsValidDigest(id)) {
    if (auto it = images_.find(id); it != images_.end()) return it->second;
    return absl::NotFoundError(absl::StrCat("image \"", ref, "\" not found"));
  }
  if (auto parsed = registry::ParseReference(ref); parsed.ok()) {
    if (!parsed->digest.empty()) {
      if (auto it = by_digest_.find(parsed->DigestRef(parsed->digest)); it != by_digest_.end()) {
        return images_.at(it->second);
      }
    } else if (auto it = by_tag_.find(parsed->TagRef()); it != by_tag_.end()) {
      return images_.at(it->second);
    }
  }
  if (allow_id_prefix && id.size() - 7 >= kMinIdPrefix && IsHex(id.substr(7))) {
    const v1::Image* found = nullptr;
    for (auto it = images_.lower_bound(id); it != images_.end() && absl::StartsWith(it->first, id);
         ++it) {
      if (found != nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("image id prefix \"", ref, "\" is ambiguous"));
      }
      found = &it->second;
    }
    if (found != nullptr) return *found;
  }
  return absl::NotFoundError(absl::StrCat("image \"", ref, "\" not found"));
}

absl::StatusOr<v1::Image> ImageStore::Get(const std::string& ref) const {
  absl::ReaderMutexLock l(&mu_);
  return GetLocked(ref);
}

absl::StatusOr<v1::Image> ImageStore::GetForListFilter(const std::string& ref) const {
  absl::ReaderMutexLock l(&mu_);
  return GetLocked(ref, /*allow_id_prefix=*/true);
}

absl::Status ImageStore::CheckFreeSpace(int64_t bytes, const std::string& what) const {
  if (limits_.min_free_bytes <= 0) return absl::OkStatus();
  struct statvfs fs;
  if (statvfs(root_.c_str(), &fs) != 0) return Errno(absl::StrCat("statvfs ", root_));
  uint64_t avail = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  uint64_t need = static_cast<uint64_t>(std::max<int64_t>(0, bytes)) +
                  static_cast<uint64_t>(limits_.min_free_bytes);
  if (avail < need) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": ", bytes, " bytes would leave less than images.min_free_bytes = ",
                     limits_.min_free_bytes, " free on ", root_, " (", avail, " bytes free)"));
  }
  return absl::OkStatus();
}

std::vector<v1::Image> ImageStore::List() const {
  absl::ReaderMutexLock l(&mu_);
  std::vector<v1::Image> out;
  for (const auto& [id, img] : images_) out.push_back(img);
  return out;
}

absl::StatusOr<std::string> ImageStore::ConfigJson(const std::string& image_id) const {
  auto img = Get(image_id);
  if (!img.ok()) return img.status();
  return ReadFile(BlobPath(img->id()));
}

absl::Status ImageStore::Remove(const std::string& ref) {
  {
    absl::MutexLock l(&mu_);
    auto img = GetLocked(ref);
    if (absl::IsNotFound(img.status())) return absl::OkStatus();
    if (!img.ok()) return img.status();
    if (std::vector<std::string> users = VolumeUsersLocked(img->id()); !users.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "image \"", ref, "\" (", img->id(), ") is in use by an image volume of ",
          users.size() == 1 ? "container " : "containers ", absl::StrJoin(users, ", ")));
    }
    if (absl::Status s = db_->Delete(storage::Kind::kImages, img->id()); !s.ok()) return s;
    UnindexLocked(*img);
    images_.erase(img->id());
    LOG(INFO) << "removed image " << img->id();
  }
  return GarbageCollect();
}

absl::Status ImageStore::GarbageCollect() {
  std::vector<std::string> trash;
  {
    absl::MutexLock l(&mu_);
    absl::flat_hash_set<std::string> blobs, chains;
    for (const auto& [id, img] : images_) {
      blobs.insert(std::string(DigestHex(id)));
      blobs.insert(std::string(DigestHex(img.manifest_digest())));
      for (const auto& d : img.layer_digests()) blobs.insert(std::string(DigestHex(d)));
      for (const auto& c : img.chain_ids()) chains.insert(std::string(DigestHex(c)));
    }
    for (const auto& [key, n] : pins_) {
      blobs.insert(std::string(DigestHex(key)));
      chains.insert(std::string(DigestHex(key)));
    }
    // Container rootfs and image volume chains, written before their mounts under mu_.
    for (const std::string& c : ContainerDirEntries(ContainersRoot())) {
      const std::string dir = ContainerDir(c);
      for (const std::string& name : ContainerDirEntries(dir)) {
        if (name != "layers" &&
            !(absl::StartsWith(name, "volume-") && absl::EndsWith(name, ".layers"))) {
          continue;
        }
        auto layers = ReadFile(dir + "/" + name);
        if (!layers.ok()) continue;
        for (absl::string_view h : absl::StrSplit(*layers, '\n', absl::SkipEmpty())) {
          chains.insert(std::string(h));
        }
      }
    }
    if (DIR* d = opendir((root_ + "/blobs/sha256").c_str())) {
      while (struct dirent* e = readdir(d)) {
        std::string name = e->d_name;
        if (name[0] == '.' || name.find(".tmp-") != std::string::npos) continue;
        if (!blobs.contains(name)) unlink((root_ + "/blobs/sha256/" + name).c_str());
      }
      closedir(d);
    }
    if (DIR* d = opendir((root_ + "/layers").c_str())) {
      while (struct dirent* e = readdir(d)) {
        std::string name = e->d_name;
        if (name[0] == '.' || chains.contains(name)) continue;
        // Renamed away under the lock, so no pull sees it half-deleted; removed below, outside it.
        std::string to = absl::StrCat(root_, "/tmp/trash-", NewId().substr(0, 16));
        if (rename((root_ + "/layers/" + name).c_str(), to.c_str()) == 0) trash.push_back(to);
        std::string link = root_ + "/l/" + name.substr(0, 16);
        char buf[PATH_MAX];
        ssize_t n = readlink(link.c_str(), buf, sizeof(buf));
        if (n > 0 && std::string(buf, n) == "../layers/" + name) unlink(link.c_str());
      }
      closedir(d);
    }
  }
  absl::Status result;
  for (const auto& t : trash) {
    if (absl::Status s = RemoveAll(t); !s.ok()) result.Update(s);
  }
  return result;
}

absl::StatusOr<std::string> ImageStore::MountRootfs(const std::string& container_id,
                                                    const std::string& image_id,
                                                    const std::string& target_dir,
                                                    const LayerIdmap* idmap) {
  if (!ValidContainerId(container_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("container id \"", container_id, "\" is invalid"));
  }
  if (target_dir.empty() || target_dir[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("rootfs target \"", target_dir, "\" is not absolute"));
  }
  std::string dir = ContainerDir(container_id);
  if (auto prev = ReadFile(dir + "/mountpoint"); prev.ok() && IsMounted(*prev)) {
    if (*prev == target_dir) return target_dir;
    return absl::FailedPreconditionError(
        absl::StrCat("rootfs of container \"", container_id, "\" is already mounted at ", *prev));
  }
  std::vector<std::string> lowers;  // top first
  {
    absl::MutexLock l(&mu_);
    auto img = GetLocked(image_id);
    if (!img.ok()) return img.status();
    for (const char* sub : {"/upper", "/work"}) {
      if (absl::Status s = MakeDirs(dir + sub, 0755); !s.ok()) return s;
    }
    std::vector<std::string> hexes;
    for (const auto& c : img->chain_ids()) hexes.emplace_back(DigestHex(c));
    // Recorded before mounting, under mu_, so GC keeps these layers from now on.
    if (absl::Status s = WriteFileAtomic(dir + "/layers", absl::StrJoin(hexes, "\n") + "\n");
        !s.ok()) {
      return s;
    }
    absl::StatusOr<std::vector<std::string>> found = LowersLocked(*img);
    if (!found.ok()) return found.status();
    lowers = std::move(*found);
  }
  if (lowers.empty()) lowers.push_back("empty");
  if (absl::Status s = MakeDirs(target_dir, 0755); !s.ok()) return s;
  // Relative to root_ (short options for deep chains) when the writable layers live under it;
  // absolute when images.containers_dir puts them elsewhere.
  const std::string rel =
      containers_root_ == root_ + "/containers" ? "containers/" + container_id : dir;
  std::string options = absl::StrCat("lowerdir=", absl::StrJoin(lowers, ":"), ",upperdir=", rel,
                                     "/upper,workdir=", rel, "/work");
  UniqueFd idmapped_root;
  if (idmap != nullptr) {
    // Overlayfs itself cannot be idmapped, and overlay's own writes to an idmapped upper fail
    // (host root is unmapped there): only the lowers are read through an idmapped view of the
    // store (detached, or attached just for the mount where the kernel needs that); the upper
    // stays as it is, owned by the namespace's root.
    if (chown((dir + "/upper").c_str(), idmap->root_uid, idmap->root_gid) != 0) {
      return Errno(absl::StrCat("chown upper dir of container ", container_id));
    }
    absl::StatusOr<UniqueFd> view = IdmappedClone(root_, idmap->userns_fd, /*recursive=*/false);
    if (!view.ok()) {
      return absl::Status(view.status().code(),
                          absl::StrCat("container ", container_id, ": ", view.status().message()));
    }
    idmapped_root = std::move(*view);
    options = absl::StrCat("lowerdir=", absl::StrJoin(lowers, ":"), ",upperdir=", dir,
                           "/upper,workdir=", dir, "/work");
  }
  absl::Status mounted =
      idmapped_root.valid()
          ? MountOverlayThroughTree(idmapped_root.get(), root_, options, target_dir)
          : MountOverlayRelative(root_, -1, options, target_dir);
  if (!mounted.ok()) return mounted;
  if (absl::Status s = WriteFileAtomic(dir + "/mountpoint", target_dir); !s.ok()) {
    umount2(target_dir.c_str(), MNT_DETACH);
    return s;
  }
  return target_dir;
}

absl::Status ImageStore::UnmountRootfs(const std::string& container_id) {
  if (!ValidContainerId(container_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("container id \"", container_id, "\" is invalid"));
  }
  const std::string dir = ContainerDir(container_id);
  std::vector<std::string> files;
  for (const std::string& name : ContainerDirEntries(dir)) {
    if (absl::StartsWith(name, "volume-") && absl::EndsWith(name, ".mountpoint")) {
      files.push_back(name);
    }
  }
  files.push_back("mountpoint");  // the rootfs last: the volumes' mountpoints may lie inside it
  for (const std::string& name : files) {
    const std::string file = dir + "/" + name;
    auto target = ReadFile(file);
    if (!target.ok()) continue;
    if (umount2(target->c_str(), 0) != 0 && errno != EINVAL && errno != ENOENT) {
      if (errno != EBUSY || umount2(target->c_str(), MNT_DETACH) != 0) {
        return Errno(absl::StrCat("unmount ", name == "mountpoint" ? "rootfs" : "image volume",
                                  " of container ", container_id, " at ", *target));
      }
    }
    unlink(file.c_str());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ImageStore::MountImageVolume(const std::string& container_id, int index,
                                                         const std::string& image_id,
                                                         const std::string& target_dir) {
  if (!ValidContainerId(container_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("container id \"", container_id, "\" is invalid"));
  }
  if (index < 0) return absl::InvalidArgumentError("image volume index is negative");
  if (target_dir.empty() || target_dir[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("image volume target \"", target_dir, "\" is not absolute"));
  }
  const std::string dir = ContainerDir(container_id);
  const std::string base = absl::StrCat(dir, "/volume-", index);
  if (auto prev = ReadFile(base + ".mountpoint"); prev.ok() && IsMounted(*prev)) {
    if (*prev == target_dir) return target_dir;
    return absl::FailedPreconditionError(absl::StrCat("image volume ", index, " of container \"",
                                                      container_id, "\" is already mounted at ",
                                                      *prev));
  }
  std::vector<std::string> lowers;
  {
    absl::MutexLock l(&mu_);
    auto img = GetLocked(image_id);
    if (!img.ok()) return img.status();
    if (absl::Status s = MakeDirs(dir, 0755); !s.ok()) return s;
    std::vector<std::string> hexes;
    for (const auto& c : img->chain_ids()) hexes.emplace_back(DigestHex(c));
    // Recorded before mounting, under mu_: from now on Remove refuses the image and GC keeps its
    // layers.
    if (absl::Status s = WriteFileAtomic(base + ".image", img->id()); !s.ok()) return s;
    if (absl::Status s = WriteFileAtomic(base + ".layers", absl::StrJoin(hexes, "\n") + "\n");
        !s.ok()) {
      return s;
    }
    absl::StatusOr<std::vector<std::string>> found = LowersLocked(*img);
    if (!found.ok()) return found.status();
    lowers = std::move(*found);
  }
  // An overlay without an upper directory is read-only, and needs two lower layers at least.
  while (lowers.size() < 2) lowers.push_back("empty");
  if (lowers.size() == 2 && lowers[0] == lowers[1]) lowers.pop_back();
  if (absl::Status s = MakeDirs(target_dir, 0755); !s.ok()) return s;
  absl::Status mounted;
  if (lowers.size() < 2) {
    // No layers at all: the empty directory, bound read-only.
    const std::string empty = root_ + "/empty";
    if (mount(empty.c_str(), target_dir.c_str(), nullptr, MS_BIND, nullptr) != 0 ||
        mount(nullptr, target_dir.c_str(), nullptr,
              MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
      mounted = Errno(absl::StrCat("bind ", empty, " at ", target_dir));
      umount2(target_dir.c_str(), MNT_DETACH);
    }
  } else {
    mounted = MountOverlayRelative(root_, -1, absl::StrCat("lowerdir=", absl::StrJoin(lowers, ":")),
                                   target_dir);
  }
  if (!mounted.ok()) return mounted;
  if (absl::Status s = WriteFileAtomic(base + ".mountpoint", target_dir); !s.ok()) {
    umount2(target_dir.c_str(), MNT_DETACH);
    return s;
  }
  return target_dir;
}

absl::StatusOr<std::vector<std::string>> ImageStore::LowersLocked(const v1::Image& image) const {
  std::vector<std::string> lowers;
  for (auto it = image.chain_ids().rbegin(); it != image.chain_ids().rend(); ++it) {
    std::string hex(DigestHex(*it));
    if (!PathExists(LayerPath(*it))) {
      return absl::FailedPreconditionError(absl::StrCat("layer ", *it, " of image ", image.id(),
                                                        " is missing: pull the image again"));
    }
    std::string link = "l/" + ShortLinkName(*it);
    char buf[PATH_MAX];
    ssize_t n = readlink((root_ + "/" + link).c_str(), buf, sizeof(buf));
    lowers.push_back(n > 0 && std::string(buf, n) == "../layers/" + hex ? link : "layers/" + hex);
  }
  return lowers;
}

std::vector<std::string> ImageStore::VolumeUsersLocked(const std::string& image_id) const {
  std::vector<std::string> users;
  for (const std::string& c : ContainerDirEntries(ContainersRoot())) {
    const std::string dir = ContainerDir(c);
    for (const std::string& name : ContainerDirEntries(dir)) {
      if (!absl::StartsWith(name, "volume-") || !absl::EndsWith(name, ".image")) continue;
      if (ReadFile(dir + "/" + name).value_or("") == image_id) {
        users.push_back(c);
        break;
      }
    }
  }
  return users;
}

absl::Status ImageStore::RemoveContainerStorage(const std::string& container_id) {
  if (absl::Status s = UnmountRootfs(container_id); !s.ok()) return s;
  if (absl::Status s = RemoveAll(ContainerDir(container_id)); !s.ok()) return s;
  if (absl::Status s = GarbageCollect(); !s.ok()) {
    LOG(WARNING) << "garbage collection after removing container " << container_id << ": " << s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ImageStore::WritableLayerDir(const std::string& container_id) const {
  if (!ValidContainerId(container_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("container id \"", container_id, "\" is invalid"));
  }
  return ContainerDir(container_id) + "/upper";
}

absl::StatusOr<DiskUsage> ImageStore::WritableLayerUsage(const std::string& container_id) const {
  if (!ValidContainerId(container_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("container id \"", container_id, "\" is invalid"));
  }
  auto u = UsageOf(ContainerDir(container_id) + "/upper");
  if (absl::IsNotFound(u.status())) {
    return absl::NotFoundError(
        absl::StrCat("container \"", container_id, "\" has no writable layer"));
  }
  return u;
}

absl::StatusOr<FsUsage> ImageStore::ImageFsUsage() const {
  FsUsage out;
  for (const char* sub : {"/blobs", "/layers", "/l"}) {
    auto u = UsageOf(root_ + sub);
    if (!u.ok()) return u.status();
    out.usage.bytes += u->bytes;
    out.usage.inodes += u->inodes;
  }
  out.mountpoint = root_;
  return out;
}

std::string ImageStore::ContainersRoot() const { return containers_root_; }

absl::StatusOr<FsUsage> ImageStore::ContainerFsUsage() const {
  FsUsage out;
  out.mountpoint = ContainersRoot();
  absl::StatusOr<DiskUsage> u = UsageOf(out.mountpoint);
  if (u.ok()) {
    out.usage = *u;
  } else if (!absl::IsNotFound(u.status())) {  // no container made yet: nothing used
    return u.status();
  }
  return out;
}

}  // namespace berth::images
