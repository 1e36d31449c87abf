// StateDB: berth's persistent metadata (containers, sandboxes, images, name indexes) in RocksDB.
#ifndef BERTH_STORAGE_STATE_DB_H_
#define BERTH_STORAGE_STATE_DB_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message_lite.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class WriteBatch;
}  // namespace rocksdb

namespace berth::storage {

// One column family per record kind; kNames holds the secondary name indexes.
enum class Kind { kContainers = 0, kSandboxes, kImages, kNames, kMeta };
inline constexpr int kNumKinds = 5;

struct StateDBOptions {
  // Durability: with sync, every acknowledged write survives power loss (one fsync per batch);
  // without, acknowledged writes survive a crash of berthd but not of the machine.
  bool sync_writes = true;
};

class StateDB;

// A set of changes applied atomically by StateDB::Commit.
class Batch {
 public:
  Batch();
  ~Batch();
  Batch(Batch&&) noexcept;
  Batch& operator=(Batch&&) noexcept;

  void Put(Kind kind, absl::string_view key, const google::protobuf::MessageLite& value);
  void PutRaw(Kind kind, absl::string_view key, absl::string_view value);
  void Delete(Kind kind, absl::string_view key);
  // Name index entries live in kNames under "<space>/<name>".
  void PutName(absl::string_view space, absl::string_view name, absl::string_view id);
  void DeleteName(absl::string_view space, absl::string_view name);
  bool empty() const;

 private:
  friend class StateDB;
  struct Op {
    Kind kind;
    std::string key;
    std::string value;
    bool del;
  };
  std::vector<Op> ops_;
};

class StateDB {
 public:
  // Opens (creating if missing) the database under `dir`. A second process opening the same
  // directory fails with FailedPrecondition naming the lock holder's directory.
  static absl::StatusOr<std::unique_ptr<StateDB>> Open(const std::string& dir,
                                                       StateDBOptions options = {});
  struct PrivateKey {
   private:
    friend class StateDB;
    PrivateKey() = default;
  };
  StateDB(PrivateKey, std::string dir, StateDBOptions options);  // use Open
  ~StateDB();
  StateDB(const StateDB&) = delete;
  StateDB& operator=(const StateDB&) = delete;

  absl::Status Put(Kind kind, absl::string_view key, const google::protobuf::MessageLite& value);
  // Durability per write: kDefault follows StateDBOptions::sync_writes; kProcessCrash skips the
  // fsync, for records that only matter while the machine stays up (a berthd crash keeps them:
  // the write-ahead log is in the page cache).
  enum class Durability { kDefault, kProcessCrash };
  absl::Status Put(Kind kind, absl::string_view key, const google::protobuf::MessageLite& value,
                   Durability durability);
  absl::Status Delete(Kind kind, absl::string_view key);
  absl::Status Commit(Batch batch, Durability durability = Durability::kDefault);

  // NotFound when the key is absent; DataLoss when the stored bytes do not parse.
  absl::Status Get(Kind kind, absl::string_view key, google::protobuf::MessageLite* value) const;
  absl::StatusOr<std::string> GetRaw(Kind kind, absl::string_view key) const;
  absl::StatusOr<std::string> LookupName(absl::string_view space, absl::string_view name) const;

  // Calls fn for every record of a kind in key order; stops at the first error fn returns.
  absl::Status ForEach(
      Kind kind,
      const std::function<absl::Status(absl::string_view key, absl::string_view value)>& fn) const;

  const std::string& dir() const { return dir_; }

 private:
  absl::Status Write(rocksdb::WriteBatch* batch, bool sync);

  std::string dir_;
  StateDBOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<std::unique_ptr<rocksdb::ColumnFamilyHandle>> handles_;  // indexed by Kind
};

std::string NameKey(absl::string_view space, absl::string_view name);

}  // namespace berth::storage

#endif  // BERTH_STORAGE_STATE_DB_H_
