#include "worker/state/state_store.h"

#include "worker/state/state_dir_lock.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "rocksdb/db.h"
#include "rocksdb/sst_file_writer.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/memtablerep.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"

namespace slipstream {

struct StateStore::Impl {
  std::unique_ptr<StateDirLock> lock;  // first: released after the DB closed
  std::unique_ptr<rocksdb::DB> db;
  rocksdb::WriteBatch batch;
  rocksdb::ReadOptions read_options;
  rocksdb::WriteOptions write_options;
  std::string dir;  // the DB's directory (restore files are staged in it)

  ~Impl() {
    // Debian's RocksDB asserts that nothing outlives the DB; the batch holds
    // no DB references, and iterators are scoped to Scan().
    if (db) db->Close().PermitUncheckedError();
  }
};

namespace {
absl::Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("rocksdb ", ToAbsl(what), ": ", s.ToString()));
}
}  // namespace

StateStore::StateStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StateStore::~StateStore() = default;

absl::StatusOr<std::unique_ptr<StateStore>> StateStore::Open(const std::string& dir,
                                                             const StateStoreOptions& options) {
  std::error_code ec;
  if (options.wipe_existing) std::filesystem::remove_all(dir, ec);
  std::unique_ptr<StateDirLock> lock;
  if (!options.lock_root.empty()) {
    absl::StatusOr<std::unique_ptr<StateDirLock>> acquired = StateDirLock::Acquire(options.lock_root, dir);
    if (!acquired.ok()) return acquired.status();
    lock = std::move(*acquired);
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("state.dir: cannot create ", dir, ": ", ec.message()));

  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.write_buffer_size = options.write_buffer_bytes;
  db_options.max_background_jobs = 2;
  // The window engine writes state behind in large batches and reads it back
  // only after a flush (restore), so an unsorted vector memtable (sorted once
  // when flushed) beats the default skiplist, whose inserts dominated the
  // worker's profile.
  db_options.memtable_factory.reset(new rocksdb::VectorRepFactory());
  db_options.allow_concurrent_memtable_write = false;
  // The local state is never opened again: every attempt starts from a wiped
  // directory and restores a checkpoint. Flushing (sorting) the memtable at
  // close would only delay the next attempt: seconds at 1M users, the bulk of
  // a rescale's or a recovery's cancel time.
  db_options.avoid_flush_during_shutdown = true;
  db_options.compression = rocksdb::kLZ4Compression;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  db_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  auto impl = std::make_unique<Impl>();
  impl->lock = std::move(lock);
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, dir, &raw);
  if (!s.ok()) return absl::InternalError(absl::StrCat("state.dir: cannot open RocksDB at ", dir, ": ", s.ToString()));
  impl->db.reset(raw);
  impl->dir = dir;
  impl->write_options.disableWAL = true;
  return std::unique_ptr<StateStore>(new StateStore(std::move(impl)));
}

absl::StatusOr<bool> StateStore::Get(std::string_view key, std::string* value) {
  rocksdb::Status s = impl_->db->Get(impl_->read_options, rocksdb::Slice(key.data(), key.size()), value);
  if (s.IsNotFound()) return false;
  if (!s.ok()) return FromRocks(s, "get");
  return true;
}

void StateStore::Put(std::string_view key, std::string_view value) {
  impl_->batch.Put(rocksdb::Slice(key.data(), key.size()), rocksdb::Slice(value.data(), value.size()))
      .PermitUncheckedError();
}

void StateStore::Delete(std::string_view key) {
  impl_->batch.Delete(rocksdb::Slice(key.data(), key.size())).PermitUncheckedError();
}

absl::Status StateStore::Scan(std::string_view lower, std::string_view upper, const Visitor& visitor) {
  rocksdb::Slice upper_slice(upper.data(), upper.size());
  rocksdb::ReadOptions options = impl_->read_options;
  options.iterate_upper_bound = &upper_slice;
  options.fill_cache = false;  // a scan reads every block once (a restore)
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(options));
  for (it->Seek(rocksdb::Slice(lower.data(), lower.size())); it->Valid(); it->Next()) {
    const rocksdb::Slice k = it->key();
    const rocksdb::Slice v = it->value();
    if (!visitor(std::string_view(k.data(), k.size()), std::string_view(v.data(), v.size()))) break;
  }
  return FromRocks(it->status(), "scan");
}

absl::Status StateStore::Commit() {
  if (impl_->batch.Count() == 0) return absl::OkStatus();
  absl::Status status = FromRocks(impl_->db->Write(impl_->write_options, &impl_->batch), "write");
  impl_->batch.Clear();
  return status;
}

size_t StateStore::pending_bytes() const { return impl_->batch.GetDataSize(); }

uint64_t StateStore::ApproximateSizeBytes() {
  uint64_t live = 0, mem = 0;
  impl_->db->GetIntProperty("rocksdb.estimate-live-data-size", &live);
  impl_->db->GetIntProperty("rocksdb.cur-size-all-mem-tables", &mem);
  return live + mem;
}

struct StateSnapshot::Impl {
  rocksdb::DB* db = nullptr;
  const rocksdb::Snapshot* snapshot = nullptr;
};

StateSnapshot::StateSnapshot(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StateSnapshot::~StateSnapshot() {
  if (impl_->snapshot != nullptr) impl_->db->ReleaseSnapshot(impl_->snapshot);
}

std::unique_ptr<StateSnapshot> StateStore::TakeSnapshot() {
  auto impl = std::make_unique<StateSnapshot::Impl>();
  impl->db = impl_->db.get();
  impl->snapshot = impl_->db->GetSnapshot();
  return std::unique_ptr<StateSnapshot>(new StateSnapshot(std::move(impl)));
}

namespace {

// [lower, upper) of a key-group range's keys; upper empty: to the end.
void KeyGroupBounds(KeyGroupRange range, std::string* lower, std::string* upper) {
  AppendKeyGroupPrefix(range.first, lower);
  if (range.last < 0xffff) AppendKeyGroupPrefix(range.last + 1, upper);
}

}  // namespace

absl::StatusOr<SnapshotFileInfo> StateSnapshot::WriteKeyGroups(const std::string& path, KeyGroupRange range) const {
  SnapshotFileInfo info;
  const std::string tmp = path + ".tmp";
  std::string lower, upper;
  if (!range.empty()) KeyGroupBounds(range, &lower, &upper);
  rocksdb::Options options;
  options.compression = rocksdb::kLZ4Compression;
  rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), options);
  bool opened = false;
  absl::Status status;
  if (!range.empty()) {
    rocksdb::ReadOptions read;
    read.snapshot = impl_->snapshot;
    read.fill_cache = false;
    rocksdb::Slice upper_slice(upper);
    if (!upper.empty()) read.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read));
    for (it->Seek(lower); it->Valid() && status.ok(); it->Next()) {
      if (!opened) {
        status = FromRocks(writer.Open(tmp), absl::StrCat("create ", tmp));
        opened = status.ok();
      }
      if (status.ok()) status = FromRocks(writer.Put(it->key(), it->value()), absl::StrCat("write ", tmp));
      ++info.keys;
    }
    if (status.ok()) status = FromRocks(it->status(), "snapshot read");
  }  // the iterator goes before the snapshot is released
  std::error_code ec;
  if (status.ok() && opened) {
    rocksdb::ExternalSstFileInfo file;
    status = FromRocks(writer.Finish(&file), absl::StrCat("finish ", tmp));
    info.bytes = static_cast<int64_t>(file.file_size);
  } else if (status.ok()) {
    // SstFileWriter cannot write a file without keys: an empty file says
    // "this range has no state".
    std::ofstream empty(tmp, std::ios::trunc);
    if (!empty) status = absl::InternalError(absl::StrCat("cannot create ", tmp));
  }
  if (status.ok()) {
    std::filesystem::rename(tmp, path, ec);
    if (ec) status = absl::InternalError(absl::StrCat("cannot rename ", tmp, ": ", ec.message()));
  }
  if (!status.ok()) std::filesystem::remove(tmp, ec);
  if (!status.ok()) return status;
  return info;
}

absl::StatusOr<IngestedSnapshots> StateStore::IngestKeyGroups(const std::vector<std::string>& snapshot_files,
                                                               KeyGroupRange range) {
  IngestedSnapshots result;
  if (range.empty()) return result;
  // Each snapshot file is ingested whole, as it is: hard-linked into the DB
  // (copied when the checkpoint lives on another file system), no key read
  // or rewritten. Snapshots cover disjoint key-group ranges and keys start
  // with their key group, so the files never overlap, and the DB is empty,
  // so RocksDB needs no sequence number written into them (the checkpoint's
  // file stays untouched). Key groups this store does not own are then
  // dropped with two range deletions, as Flink's RocksDB backend clips a
  // restored instance with deleteRange: O(1) now, reclaimed by compaction.
  std::vector<std::string> staged;
  auto remove_staged = [&staged] {
    for (const std::string& f : staged) {
      std::error_code ignored;
      std::filesystem::remove(f, ignored);
    }
  };
  for (size_t i = 0; i < snapshot_files.size(); ++i) {
    const std::string& path = snapshot_files[i];
    std::error_code ec;
    const uintmax_t size = std::filesystem::file_size(path, ec);
    if (ec) {
      remove_staged();
      return absl::NotFoundError(absl::StrCat("snapshot file ", path, ": ", ec.message()));
    }
    if (size == 0) continue;  // a range without state
    const std::string target = (std::filesystem::path(impl_->dir) / absl::StrCat("restore-", i, ".sst")).string();
    std::filesystem::remove(target, ec);
    std::filesystem::create_hard_link(path, target, ec);
    if (ec) {
      ec.clear();
      std::filesystem::copy_file(path, target, ec);
      if (ec) {
        remove_staged();
        return absl::InternalError(absl::StrCat("cannot stage snapshot file ", path, " as ", target, ": ",
                                                ec.message()));
      }
      ++result.copied;
    }
    staged.push_back(target);
    result.bytes += static_cast<int64_t>(size);
  }
  if (staged.empty()) return result;
  rocksdb::IngestExternalFileOptions ingest;
  ingest.move_files = true;  // our staged links: RocksDB renames them into the DB
  ingest.write_global_seqno = false;  // never write into a (linked) checkpoint file
  ingest.allow_global_seqno = false;  // the DB is empty: nothing may overlap
  if (absl::Status s = FromRocks(impl_->db->IngestExternalFile(staged, ingest), "restore ingest"); !s.ok()) {
    remove_staged();
    return s;
  }
  result.files = static_cast<int>(staged.size());
  std::string lower, upper;
  KeyGroupBounds(range, &lower, &upper);
  rocksdb::WriteOptions write;
  write.disableWAL = true;
  rocksdb::ColumnFamilyHandle* cf = impl_->db->DefaultColumnFamily();
  // Keys start with a 2-byte key group below 0xffff: "\xff\xff\xff" is past all of them.
  const std::string past_all(3, '\xff');
  if (range.first > 0) {
    if (absl::Status s = FromRocks(impl_->db->DeleteRange(write, cf, std::string(2, '\0'), lower), "drop key groups");
        !s.ok()) {
      return s;
    }
  }
  if (!upper.empty()) {
    if (absl::Status s = FromRocks(impl_->db->DeleteRange(write, cf, upper, past_all), "drop key groups"); !s.ok()) {
      return s;
    }
  }
  return result;
}

}  // namespace slipstream
