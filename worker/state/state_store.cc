#include "worker/state/state_store.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "rocksdb/db.h"
#include "rocksdb/sst_file_reader.h"
#include "rocksdb/sst_file_writer.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/memtablerep.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"

namespace slipstream {

struct StateStore::Impl {
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

absl::StatusOr<int64_t> StateStore::IngestKeyGroups(const std::vector<std::string>& snapshot_files,
                                                     KeyGroupRange range) {
  if (range.empty()) return 0;
  std::string lower, upper;
  KeyGroupBounds(range, &lower, &upper);
  // Each snapshot's keys inside `range` are copied, already sorted, into an
  // SST file of this DB's format, and the files are ingested at once: no
  // memtable, no sort, no flush (the engine's Restore() then reads sorted
  // files). Snapshots cover disjoint key-group ranges, and keys start with
  // their key group, so the files never overlap.
  int64_t copied = 0;
  std::vector<std::string> staged;
  auto remove_staged = [&staged] {
    for (const std::string& f : staged) {
      std::error_code ignored;
      std::filesystem::remove(f, ignored);
    }
  };
  const rocksdb::Options db_options = impl_->db->GetOptions();
  for (size_t i = 0; i < snapshot_files.size(); ++i) {
    const std::string& path = snapshot_files[i];
    std::error_code ec;
    const uintmax_t size = std::filesystem::file_size(path, ec);
    if (ec) {
      remove_staged();
      return absl::NotFoundError(absl::StrCat("snapshot file ", path, ": ", ec.message()));
    }
    if (size == 0) continue;  // a range without state
    rocksdb::SstFileReader reader(db_options);
    if (absl::Status s = FromRocks(reader.Open(path), absl::StrCat("open snapshot ", path)); !s.ok()) {
      remove_staged();
      return s;
    }
    const std::string target = (std::filesystem::path(impl_->dir) / absl::StrCat("restore-", i, ".sst")).string();
    int64_t keys = 0;
    absl::Status status;
    {
      rocksdb::ReadOptions read;
      rocksdb::Slice upper_slice(upper);
      if (!upper.empty()) read.iterate_upper_bound = &upper_slice;
      read.fill_cache = false;
      std::unique_ptr<rocksdb::Iterator> it(reader.NewIterator(read));
      rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), db_options);
      for (it->Seek(lower); it->Valid(); it->Next()) {
        if (keys == 0) {
          status = FromRocks(writer.Open(target), absl::StrCat("create ", target));
          if (!status.ok()) break;
        }
        status = FromRocks(writer.Put(it->key(), it->value()), absl::StrCat("write ", target));
        if (!status.ok()) break;
        ++keys;
      }
      if (status.ok()) status = FromRocks(it->status(), absl::StrCat("read snapshot ", path));
      if (status.ok() && keys > 0) status = FromRocks(writer.Finish(), absl::StrCat("finish ", target));
    }
    if (keys > 0) staged.push_back(target);
    if (!status.ok()) {
      remove_staged();
      return status;
    }
    copied += keys;
  }
  if (!staged.empty()) {
    rocksdb::IngestExternalFileOptions ingest;
    ingest.move_files = true;  // our own staged copies
    absl::Status s = FromRocks(impl_->db->IngestExternalFile(staged, ingest), "restore ingest");
    if (!s.ok()) {
      remove_staged();
      return s;
    }
  }
  return copied;
}

}  // namespace slipstream
