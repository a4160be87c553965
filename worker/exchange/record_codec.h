// RecordCodec: the wire form of the records that travel between workers (and
// through the local channel): a valid event plus where it came from, so the
// receiving window operator can send it unchanged to the dead-letter topic
// when it turns out late. Records are appended to one byte string per batch
// (DataBatch.records) and read back as views into it, without copies.
//
// Layout per record (little-endian, varints as in protobuf):
//   varint partition | varint offset | fixed64 event_time_ms | u8 event type |
//   fixed64 price (IEEE bits) | varint len + user_id | varint len + key |
//   varint len + value
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/event.h"

namespace slipstream {

struct ShuffleRecord {
  int partition = 0;
  int64_t offset = 0;
  int64_t event_time_ms = 0;
  EventType type = EventType::kView;
  double price = 0;
  std::string_view user_id;
  std::string_view key;    // the Kafka record's key and value, for the DLQ
  std::string_view value;
};

// Appends one record to `out`.
void AppendShuffleRecord(const ShuffleRecord& record, std::string* out);

// Reads records back from a batch. Next() returns false at the end or when
// the bytes are malformed (then ok() is false).
class ShuffleRecordReader {
 public:
  explicit ShuffleRecordReader(std::string_view bytes) : rest_(bytes) {}
  bool Next(ShuffleRecord* out);
  bool ok() const { return ok_; }

 private:
  std::string_view rest_;
  bool ok_ = true;
};

}  // namespace slipstream
