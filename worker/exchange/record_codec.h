// RecordCodec: the wire form of the records that travel between workers (and
// through the local channel): a valid event plus where it came from, so the
// receiving window operator can send it unchanged to the dead-letter topic
// when it turns out late. Records are appended to one byte string per batch
// (DataBatch.records) and read back as views into it, without copies.
//
// Layout per record (little-endian, varints as in protobuf):
//   varint partition | varint offset | fixed64 event_time_ms |
//   varint len + fields | varint len + user_id | varint len + key |
//   varint len + value
// `fields` is the event's field values (EncodeEventFields):
//   varint count | per field: u8 flags + the payloads the flags announce
// flags: kFieldPresent (1), kFieldLong (2): zigzag varint long_value,
// kFieldDouble (4): fixed64 IEEE bits of double_value, kFieldString (8):
// varint len + string_value. A member at its zero value (0, +0.0, "") is
// left out, so a field costs one byte plus its non-zero value; absent
// optional fields one byte. The flags say what is there, not the schema's
// type: the codec needs no schema, and decoding restores the FieldValue
// exactly (both workers of a job parse with the same schema anyway).
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
  std::string_view fields;  // EncodeEventFields' bytes
  std::string_view user_id;
  std::string_view key;    // the Kafka record's key and value, for the DLQ
  std::string_view value;
};

// Flags of one encoded field value.
inline constexpr uint8_t kFieldPresent = 1;
inline constexpr uint8_t kFieldLong = 2;
inline constexpr uint8_t kFieldDouble = 4;
inline constexpr uint8_t kFieldString = 8;

// Replaces `*out` with the encoding of event.fields (keeps its capacity).
void EncodeEventFields(const Event& event, std::string* out);
// Decodes into out->fields, reusing its strings' capacity; leaves
// event_time_ms and user_id alone. False when the bytes are malformed (then
// out->fields is unspecified).
[[nodiscard]] bool DecodeEventFields(std::string_view bytes, Event* out);

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
