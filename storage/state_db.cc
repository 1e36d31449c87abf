// StateDB on RocksDB: column families per record kind, atomic batches, explicit options.
#include "storage/state_db.h"

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"

namespace berth::storage {
namespace {

constexpr const char* kFamilyNames[kNumKinds] = {"containers", "sandboxes", "images", "names",
                                                 "meta"};

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat(what, ": not found"));
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    return absl::FailedPreconditionError(
        absl::StrCat(what,
                     ": the state database is locked by another process (is another berthd "
                     "running on the same root?): ",
                     s.ToString()));
  }
  if (s.IsCorruption()) return absl::DataLossError(absl::StrCat(what, ": ", s.ToString()));
  return absl::InternalError(absl::StrCat(what, ": ", s.ToString()));
}

// All tuning lives here: metadata is small (about 10 KiB per container, a few MiB at 1,000
// containers), point lookups dominate, writes are rare and batched. Every option that differs
// from RocksDB's default says why; most keep berthd's resident memory small (issue #16).
rocksdb::Options DatabaseOptions() {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  // RocksDB's floor: one flush and one compaction thread (fewer is not possible).
  o.max_background_jobs = 2;
  o.keep_log_file_num = 3;
  // A family written rarely (images, names) keeps every WAL file since its last flush alive, and
  // a restart after a crash replays them all: at 64 MiB that was 260 ms of the first restart
  // after creating 1,000 containers. Past 4 MiB the stale families are flushed instead.
  o.max_total_wal_size = 4 << 20;
  o.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  o.recycle_log_file_num = 0;
  // Bounded table readers: a small state has a handful of SST files; -1 would keep every
  // reader (and its index) open forever.
  o.max_open_files = 64;
  // One shard instead of 64 for the table cache: each shard is a cache-line aligned LRU.
  o.table_cache_numshardbits = 0;
  // The WAL and MANIFEST writers' buffers grow to this; writes are a few KiB (default 1 MiB).
  o.writable_file_max_buffer_size = 64 << 10;
  // All memtables together stay under 1 MiB: a family that outgrows its share is flushed.
  o.db_write_buffer_size = 1 << 20;
  // No periodic statistics: nobody reads them, and they schedule work on a timer.
  o.stats_dump_period_sec = 0;
  o.stats_persist_period_sec = 0;
  // Opening a few files needs no pool of 16 threads.
  o.max_file_opening_threads = 1;
  return o;
}

// One small block cache for every family (OptimizeForPointLookup gave each its own 8 MiB one).
std::shared_ptr<rocksdb::Cache> SharedBlockCache() {
  // 1 MiB, one shard: the working set is a few hundred KiB of hot records.
  static const std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(1 << 20, 0);
  return cache;
}

rocksdb::ColumnFamilyOptions FamilyOptions() {
  rocksdb::ColumnFamilyOptions o;
  // A memtable holds ~25 container records before it is flushed (default 64 MiB).
  o.write_buffer_size = 256 << 10;
  // Each memtable allocates this much up front: 6 families x 512 KiB was 3 MiB idle.
  o.arena_block_size = 16 << 10;
  // One active and one flushing memtable per family at most (the default, made explicit).
  o.max_write_buffer_number = 2;
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = SharedBlockCache();
  // Index and filter blocks live in (and are bounded by) the block cache instead of being
  // pinned per open table reader.
  t.cache_index_and_filter_blocks = true;
  t.pin_l0_filter_and_index_blocks_in_cache = true;
  // Point lookups by id: a bloom filter skips files that do not hold the key.
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return o;
}

}  // namespace

std::string NameKey(absl::string_view space, absl::string_view name) {
  return absl::StrCat(space, "/", name);
}

Batch::Batch() = default;
Batch::~Batch() = default;
Batch::Batch(Batch&&) noexcept = default;
Batch& Batch::operator=(Batch&&) noexcept = default;

void Batch::Put(Kind kind, absl::string_view key, const google::protobuf::MessageLite& value) {
  ops_.push_back({kind, std::string(key), value.SerializeAsString(), false});
}
void Batch::PutRaw(Kind kind, absl::string_view key, absl::string_view value) {
  ops_.push_back({kind, std::string(key), std::string(value), false});
}
void Batch::Delete(Kind kind, absl::string_view key) {
  ops_.push_back({kind, std::string(key), "", true});
}
void Batch::PutName(absl::string_view space, absl::string_view name, absl::string_view id) {
  PutRaw(Kind::kNames, NameKey(space, name), id);
}
void Batch::DeleteName(absl::string_view space, absl::string_view name) {
  Delete(Kind::kNames, NameKey(space, name));
}
bool Batch::empty() const { return ops_.empty(); }

StateDB::StateDB(PrivateKey, std::string dir, StateDBOptions options)
    : dir_(std::move(dir)), options_(options) {}

StateDB::~StateDB() {
  if (!db_) return;
  for (auto& h : handles_) {
    if (h) db_->DestroyColumnFamilyHandle(h.release()).PermitUncheckedError();
  }
  db_->Close().PermitUncheckedError();
}

absl::StatusOr<std::unique_ptr<StateDB>> StateDB::Open(const std::string& dir,
                                                       StateDBOptions options) {
  auto sdb = std::make_unique<StateDB>(PrivateKey(), dir, options);
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  families.emplace_back(rocksdb::kDefaultColumnFamilyName, FamilyOptions());
  for (const char* name : kFamilyNames) families.emplace_back(name, FamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> raw;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(DatabaseOptions(), dir, families, &raw, &db);
  if (!s.ok()) return FromRocks(s, absl::StrCat("opening state database ", dir));
  sdb->db_.reset(db);
  // raw[0] is the default family, which berth does not use.
  db->DestroyColumnFamilyHandle(raw[0]).PermitUncheckedError();
  for (size_t i = 1; i < raw.size(); ++i) sdb->handles_.emplace_back(raw[i]);
  return sdb;
}

absl::Status StateDB::Write(rocksdb::WriteBatch* batch, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return FromRocks(db_->Write(wo, batch), "writing state");
}

absl::Status StateDB::Put(Kind kind, absl::string_view key,
                          const google::protobuf::MessageLite& value) {
  return Put(kind, key, value, Durability::kDefault);
}

absl::Status StateDB::Put(Kind kind, absl::string_view key,
                          const google::protobuf::MessageLite& value, Durability durability) {
  Batch b;
  b.Put(kind, key, value);
  return Commit(std::move(b), durability);
}

absl::Status StateDB::Delete(Kind kind, absl::string_view key) {
  Batch b;
  b.Delete(kind, key);
  return Commit(std::move(b));
}

absl::Status StateDB::Commit(Batch batch, Durability durability) {
  if (batch.empty()) return absl::OkStatus();
  rocksdb::WriteBatch wb;
  for (const auto& op : batch.ops_) {
    auto* cf = handles_[static_cast<int>(op.kind)].get();
    rocksdb::Status s = op.del ? wb.Delete(cf, op.key) : wb.Put(cf, op.key, op.value);
    if (!s.ok()) return FromRocks(s, "building write batch");
  }
  return Write(&wb, options_.sync_writes && durability == Durability::kDefault);
}

absl::StatusOr<std::string> StateDB::GetRaw(Kind kind, absl::string_view key) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[static_cast<int>(kind)].get(),
                               rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) {
    return absl::NotFoundError(
        absl::StrCat(kFamilyNames[static_cast<int>(kind)], " record \"", key, "\" not found"));
  }
  if (!s.ok()) return FromRocks(s, "reading state");
  return value;
}

absl::Status StateDB::Get(Kind kind, absl::string_view key,
                          google::protobuf::MessageLite* value) const {
  absl::StatusOr<std::string> raw = GetRaw(kind, key);
  if (!raw.ok()) return raw.status();
  if (!value->ParseFromString(*raw)) {
    return absl::DataLossError(
        absl::StrCat(kFamilyNames[static_cast<int>(kind)], " record \"", key, "\" does not parse"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> StateDB::LookupName(absl::string_view space,
                                                absl::string_view name) const {
  return GetRaw(Kind::kNames, NameKey(space, name));
}

absl::Status StateDB::ForEach(
    Kind kind, const std::function<absl::Status(absl::string_view, absl::string_view)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[static_cast<int>(kind)].get()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    absl::Status st = fn(absl::string_view(it->key().data(), it->key().size()),
                         absl::string_view(it->value().data(), it->value().size()));
    if (!st.ok()) return st;
  }
  return FromRocks(it->status(), "iterating state");
}

}  // namespace berth::storage
