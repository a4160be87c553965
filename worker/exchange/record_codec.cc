#include "worker/exchange/record_codec.h"

#include <cstring>

namespace slipstream {

namespace {

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutFixed64(uint64_t v, std::string* out) {
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out->append(buf, 8);
}

void PutBytes(std::string_view bytes, std::string* out) {
  PutVarint(bytes.size(), out);
  out->append(bytes);
}

bool GetVarint(std::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

bool GetFixed64(std::string_view* in, uint64_t* v) {
  if (in->size() < 8) return false;
  uint64_t result = 0;
  for (int i = 0; i < 8; ++i) result |= static_cast<uint64_t>(static_cast<uint8_t>((*in)[i])) << (8 * i);
  in->remove_prefix(8);
  *v = result;
  return true;
}

bool GetBytes(std::string_view* in, std::string_view* bytes) {
  uint64_t size = 0;
  if (!GetVarint(in, &size) || size > in->size()) return false;
  *bytes = in->substr(0, size);
  in->remove_prefix(size);
  return true;
}

uint64_t ZigZag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

// More fields than any schema has: a corrupt count must not make the decoder
// allocate gigabytes.
constexpr uint64_t kMaxFields = 1 << 16;

}  // namespace

void EncodeEventFields(const Event& event, std::string* out) {
  out->clear();
  PutVarint(event.fields.size(), out);
  for (const FieldValue& value : event.fields) {
    if (!value.present) {
      out->push_back(0);
      continue;
    }
    uint64_t double_bits = 0;
    std::memcpy(&double_bits, &value.double_value, sizeof(double_bits));
    const uint8_t flags = kFieldPresent | (value.long_value != 0 ? kFieldLong : 0) |
                          (double_bits != 0 ? kFieldDouble : 0) | (!value.string_value.empty() ? kFieldString : 0);
    out->push_back(static_cast<char>(flags));
    if (flags & kFieldLong) PutVarint(ZigZag(value.long_value), out);
    if (flags & kFieldDouble) PutFixed64(double_bits, out);
    if (flags & kFieldString) PutBytes(value.string_value, out);
  }
}

bool DecodeEventFields(std::string_view bytes, Event* out) {
  uint64_t count = 0;
  if (!GetVarint(&bytes, &count) || count > kMaxFields || count > bytes.size()) return false;
  if (out->fields.size() != count) out->fields.resize(count);  // keeps the strings' capacity
  for (FieldValue& value : out->fields) {
    if (bytes.empty()) return false;
    const auto flags = static_cast<uint8_t>(bytes.front());
    bytes.remove_prefix(1);
    // Unknown bits, or values without kFieldPresent: not ours.
    if ((flags & ~(kFieldPresent | kFieldLong | kFieldDouble | kFieldString)) != 0) return false;
    if (flags != 0 && !(flags & kFieldPresent)) return false;
    value.present = flags & kFieldPresent;
    value.long_value = 0;
    value.double_value = 0;
    if (flags & kFieldLong) {
      uint64_t v = 0;
      if (!GetVarint(&bytes, &v)) return false;
      value.long_value = UnZigZag(v);
    }
    if (flags & kFieldDouble) {
      uint64_t bits = 0;
      if (!GetFixed64(&bytes, &bits)) return false;
      std::memcpy(&value.double_value, &bits, sizeof(bits));
    }
    if (flags & kFieldString) {
      std::string_view text;
      if (!GetBytes(&bytes, &text)) return false;
      value.string_value.assign(text);
    } else {
      value.string_value.clear();
    }
  }
  return bytes.empty();
}

void AppendShuffleRecord(const ShuffleRecord& record, std::string* out) {
  PutVarint(static_cast<uint32_t>(record.partition), out);
  PutVarint(static_cast<uint64_t>(record.offset), out);
  PutFixed64(static_cast<uint64_t>(record.event_time_ms), out);
  PutBytes(record.fields, out);
  PutBytes(record.user_id, out);
  PutBytes(record.key, out);
  PutBytes(record.value, out);
}

bool ShuffleRecordReader::Next(ShuffleRecord* out) {
  if (!ok_ || rest_.empty()) return false;
  uint64_t partition = 0, offset = 0, time = 0;
  // The fields' bytes are checked when decoded (DecodeEventFields), not here.
  ok_ = GetVarint(&rest_, &partition) && partition <= INT32_MAX && GetVarint(&rest_, &offset) &&
        GetFixed64(&rest_, &time) && GetBytes(&rest_, &out->fields) && GetBytes(&rest_, &out->user_id) &&
        GetBytes(&rest_, &out->key) && GetBytes(&rest_, &out->value);
  if (!ok_) return false;
  out->partition = static_cast<int>(partition);
  out->offset = static_cast<int64_t>(offset);
  out->event_time_ms = static_cast<int64_t>(time);
  return true;
}

}  // namespace slipstream
