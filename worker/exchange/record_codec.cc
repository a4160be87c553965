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

}  // namespace

void AppendShuffleRecord(const ShuffleRecord& record, std::string* out) {
  PutVarint(static_cast<uint32_t>(record.partition), out);
  PutVarint(static_cast<uint64_t>(record.offset), out);
  PutFixed64(static_cast<uint64_t>(record.event_time_ms), out);
  out->push_back(static_cast<char>(record.type));
  uint64_t price_bits = 0;
  static_assert(sizeof(price_bits) == sizeof(record.price));
  std::memcpy(&price_bits, &record.price, sizeof(price_bits));
  PutFixed64(price_bits, out);
  PutBytes(record.user_id, out);
  PutBytes(record.key, out);
  PutBytes(record.value, out);
}

bool ShuffleRecordReader::Next(ShuffleRecord* out) {
  if (!ok_ || rest_.empty()) return false;
  uint64_t partition = 0, offset = 0, time = 0, price_bits = 0;
  ok_ = GetVarint(&rest_, &partition) && partition <= INT32_MAX && GetVarint(&rest_, &offset) &&
        GetFixed64(&rest_, &time) && !rest_.empty();
  if (!ok_) return false;
  const auto type = static_cast<uint8_t>(rest_.front());
  rest_.remove_prefix(1);
  ok_ = type <= static_cast<uint8_t>(EventType::kPurchase) && GetFixed64(&rest_, &price_bits) &&
        GetBytes(&rest_, &out->user_id) && GetBytes(&rest_, &out->key) && GetBytes(&rest_, &out->value);
  if (!ok_) return false;
  out->partition = static_cast<int>(partition);
  out->offset = static_cast<int64_t>(offset);
  out->event_time_ms = static_cast<int64_t>(time);
  out->type = static_cast<EventType>(type);
  std::memcpy(&out->price, &price_bits, sizeof(price_bits));
  return true;
}

}  // namespace slipstream
