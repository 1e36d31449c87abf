// StateDB on RocksDB: column families per record kind, atomic batches, explicit options.
#include "storage/state_db.h"

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
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
        absl::StrCat(what, ": the state database is locked by another process (is another berthd "
                           "running on the same root?): ",
                     s.ToString()));
  }
  if (s.IsCorruption()) return absl::DataLossError(absl::StrCat(what, ": ", s.ToString()));
  return absl::InternalError(absl::StrCat(what, ": ", s.ToString()));
}

// All tuning lives here: metadata is small, point lookups dominate, writes are rare and batched.
rocksdb::Options DatabaseOptions() {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  o.max_background_jobs = 2;
  o.keep_log_file_num = 3;
  o.max_total_wal_size = 64 << 20;
  o.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  o.recycle_log_file_num = 0;
  return o;
}

rocksdb::ColumnFamilyOptions FamilyOptions() {
  rocksdb::ColumnFamilyOptions o;
  o.write_buffer_size = 4 << 20;
  o.OptimizeForPointLookup(8);
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
    return absl::DataLossError(absl::StrCat(kFamilyNames[static_cast<int>(kind)], " record \"",
                                            key, "\" does not parse"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> StateDB::LookupName(absl::string_view space,
                                                absl::string_view name) const {
  return GetRaw(Kind::kNames, NameKey(space, name));
}

absl::Status StateDB::ForEach(
    Kind kind,
    const std::function<absl::Status(absl::string_view, absl::string_view)>& fn) const {
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
