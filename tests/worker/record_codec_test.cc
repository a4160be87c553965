#include "worker/exchange/record_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace slipstream {
namespace {

// A record that owns its bytes (ShuffleRecord only holds views).
struct OwnedRecord {
  int partition = 0;
  int64_t offset = 0;
  int64_t event_time_ms = 0;
  std::string fields;  // opaque to the record layer (EncodeEventFields' bytes)
  std::string user_id;
  std::string key;
  std::string value;

  ShuffleRecord View() const {
    ShuffleRecord r;
    r.partition = partition;
    r.offset = offset;
    r.event_time_ms = event_time_ms;
    r.fields = fields;
    r.user_id = user_id;
    r.key = key;
    r.value = value;
    return r;
  }
};

uint64_t Bits(double d) {
  uint64_t bits = 0;
  std::memcpy(&bits, &d, sizeof(bits));
  return bits;
}

// Compares field by field.
void ExpectSameRecord(const OwnedRecord& want, const ShuffleRecord& got, size_t index) {
  SCOPED_TRACE(testing::Message() << "record " << index);
  EXPECT_EQ(got.partition, want.partition);
  EXPECT_EQ(got.offset, want.offset);
  EXPECT_EQ(got.event_time_ms, want.event_time_ms);
  EXPECT_EQ(got.fields, want.fields);
  EXPECT_EQ(got.user_id, want.user_id);
  EXPECT_EQ(got.key, want.key);
  EXPECT_EQ(got.value, want.value);
}

std::string Encode(const std::vector<OwnedRecord>& records, std::vector<size_t>* boundaries = nullptr) {
  std::string out;
  for (const OwnedRecord& r : records) {
    AppendShuffleRecord(r.View(), &out);
    if (boundaries) boundaries->push_back(out.size());
  }
  return out;
}

// Reads every record; returns them and whether the reader stayed ok.
std::vector<ShuffleRecord> DecodeAll(std::string_view bytes, bool* ok) {
  ShuffleRecordReader reader(bytes);
  std::vector<ShuffleRecord> out;
  ShuffleRecord r;
  while (reader.Next(&r)) out.push_back(r);
  *ok = reader.ok();
  // Once done, the reader stays done.
  EXPECT_FALSE(reader.Next(&r));
  EXPECT_EQ(reader.ok(), *ok);
  return out;
}

void ExpectViewInside(std::string_view view, std::string_view buffer) {
  if (view.empty()) return;
  EXPECT_GE(view.data(), buffer.data());
  EXPECT_LE(view.data() + view.size(), buffer.data() + buffer.size());
}

// Independent reference: the protobuf varint size of v.
size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 128) {
    v >>= 7;
    ++n;
  }
  return n;
}

size_t ExpectedSize(const OwnedRecord& r) {
  return VarintSize(static_cast<uint32_t>(r.partition)) + VarintSize(static_cast<uint64_t>(r.offset)) + 8 +
         VarintSize(r.fields.size()) + r.fields.size() +
         VarintSize(r.user_id.size()) + r.user_id.size() + VarintSize(r.key.size()) + r.key.size() +
         VarintSize(r.value.size()) + r.value.size();
}

std::string RandomBytes(std::mt19937_64& rng, size_t size) {
  std::string s(size, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

// Lengths around the varint boundaries of the length prefix (1/2/3 bytes).
constexpr size_t kInterestingLengths[] = {0, 1, 2, 127, 128, 129, 255, 16383, 16384, 16385, 70000};

// Random field values of every kind.
Event RandomEvent(std::mt19937_64& rng, const double* doubles, size_t num_doubles) {
  Event event;
  event.fields.resize(rng() % 12);
  for (FieldValue& f : event.fields) {
    if (rng() % 5 == 0) continue;  // absent
    f.present = true;
    switch (rng() % 5) {
      case 0:
        f.long_value = static_cast<int64_t>(rng());
        break;
      case 1:
        f.long_value = static_cast<int64_t>(rng() % 3) - 1;
        break;
      case 2:
        if (rng() % 2 == 0) {
          f.double_value = doubles[rng() % num_doubles];
        } else {
          uint64_t bits = rng();
          std::memcpy(&f.double_value, &bits, sizeof(bits));  // any bit pattern, NaN payloads included
        }
        break;
      case 3:
        f.string_value = RandomBytes(rng, rng() % 3 == 0 ? 200 : rng() % 10);
        break;
      default:  // several members at once
        f.long_value = static_cast<int64_t>(rng());
        f.double_value = 1.5;
        f.string_value = "both";
        break;
    }
  }
  return event;
}

std::string RandomEncodedFields(std::mt19937_64& rng, const double* doubles, size_t num_doubles) {
  std::string out;
  EncodeEventFields(RandomEvent(rng, doubles, num_doubles), &out);
  return out;
}

std::vector<OwnedRecord> RandomRecords(std::mt19937_64& rng, int count) {
  const int64_t kInt64Edges[] = {0,
                                 1,
                                 -1,
                                 127,
                                 128,
                                 std::numeric_limits<int64_t>::max(),
                                 std::numeric_limits<int64_t>::min(),
                                 int64_t{1} << 35,
                                 -(int64_t{1} << 40),
                                 1'704'103'200'000};
  const int kPartitionEdges[] = {0, 1, 127, 128, 16383, 16384, std::numeric_limits<int32_t>::max()};
  const double kDoubles[] = {0.0,
                            -0.0,
                            29.99,
                            1e-300,
                            std::numeric_limits<double>::denorm_min(),
                            std::numeric_limits<double>::min() / 3,  // subnormal
                            std::numeric_limits<double>::max(),
                            1e300,
                            std::numeric_limits<double>::infinity(),
                            std::numeric_limits<double>::quiet_NaN()};
  std::vector<OwnedRecord> out;
  for (int i = 0; i < count; ++i) {
    OwnedRecord r;
    r.partition = (rng() % 3 == 0) ? kPartitionEdges[rng() % std::size(kPartitionEdges)]
                                   : static_cast<int>(rng() % (uint64_t{1} << (rng() % 32)));
    r.offset = (rng() % 3 == 0) ? kInt64Edges[rng() % std::size(kInt64Edges)] : static_cast<int64_t>(rng());
    r.event_time_ms = (rng() % 3 == 0) ? kInt64Edges[rng() % std::size(kInt64Edges)] : static_cast<int64_t>(rng());
    r.fields = RandomEncodedFields(rng, kDoubles, std::size(kDoubles));
    auto size = [&]() -> size_t {
      switch (rng() % 4) {
        case 0:
          return kInterestingLengths[rng() % std::size(kInterestingLengths)];
        case 1:
          return 0;
        default:
          return rng() % 40;
      }
    };
    r.user_id = RandomBytes(rng, size());
    r.key = RandomBytes(rng, size());
    r.value = RandomBytes(rng, size());
    out.push_back(std::move(r));
  }
  return out;
}

// Keeps tests that loop over every byte fast: short strings only.
void ShortenStrings(std::vector<OwnedRecord>* records, size_t max_size) {
  for (OwnedRecord& r : *records) {
    if (r.user_id.size() > max_size) r.user_id.resize(max_size);
    if (r.key.size() > max_size) r.key.resize(max_size);
    if (r.value.size() > max_size) r.value.resize(max_size);
  }
}

TEST(RecordCodec, EmptyBatchHasNoRecordsAndIsOk) {
  bool ok = false;
  EXPECT_TRUE(DecodeAll("", &ok).empty());
  EXPECT_TRUE(ok);
}

TEST(RecordCodec, EncodesTheDocumentedLayout) {
  OwnedRecord r;
  r.partition = 300;                     // varint ac 02
  r.offset = 1;                          // varint 01
  r.event_time_ms = 0x0102030405060708;  // fixed64 little-endian
  r.fields = "F";                        // 01 46
  r.user_id = "u";
  r.key = "";
  r.value = std::string("a\0b", 3);
  std::string got;
  AppendShuffleRecord(r.View(), &got);
  const std::string want("\xac\x02"
                         "\x01"
                         "\x08\x07\x06\x05\x04\x03\x02\x01"
                         "\x01" "F"
                         "\x01u"
                         "\x00"
                         "\x03"
                         "a\0b",
                         2 + 1 + 8 + 2 + 2 + 1 + 4);
  EXPECT_EQ(got, want);
}

TEST(RecordCodec, AppendsToExistingBytes) {
  OwnedRecord r;
  r.user_id = "1";
  std::string out = "prefix";
  AppendShuffleRecord(r.View(), &out);
  ASSERT_EQ(out.substr(0, 6), "prefix");
  bool ok = false;
  auto got = DecodeAll(std::string_view(out).substr(6), &ok);
  EXPECT_TRUE(ok);
  ASSERT_EQ(got.size(), 1u);
  ExpectSameRecord(r, got[0], 0);
}

TEST(RecordCodec, RoundTripsEdgeValues) {
  std::vector<OwnedRecord> records;
  const int64_t kTimes[] = {std::numeric_limits<int64_t>::min(), -1, 0, std::numeric_limits<int64_t>::max()};
  const std::string kFields[] = {"", std::string(1, '\0'), std::string(300, 'f')};
  int i = 0;
  for (int64_t t : kTimes) {
    for (int repeat = 0; repeat < 5; ++repeat) {
      for (const std::string& fields : kFields) {
        OwnedRecord r;
        r.partition = (i % 2) ? std::numeric_limits<int32_t>::max() : 0;
        r.offset = (i % 3 == 0) ? std::numeric_limits<int64_t>::max() : (i % 3 == 1 ? -1 : i);
        r.event_time_ms = t;
        r.fields = fields;
        r.user_id = std::string(kInterestingLengths[i % std::size(kInterestingLengths)], 'u');
        r.key = std::string("\0k\0", 3);
        r.value = std::string(kInterestingLengths[(i + 5) % std::size(kInterestingLengths)], '\0');
        records.push_back(std::move(r));
        ++i;
      }
    }
  }
  std::vector<size_t> boundaries;
  const std::string bytes = Encode(records, &boundaries);
  size_t begin = 0;
  for (size_t k = 0; k < records.size(); ++k) {
    EXPECT_EQ(boundaries[k] - begin, ExpectedSize(records[k])) << "record " << k;
    begin = boundaries[k];
  }
  bool ok = false;
  const auto got = DecodeAll(bytes, &ok);
  EXPECT_TRUE(ok);
  ASSERT_EQ(got.size(), records.size());
  for (size_t k = 0; k < got.size(); ++k) ExpectSameRecord(records[k], got[k], k);
}

TEST(RecordCodec, RoundTripsManyRandomRecords) {
  std::mt19937_64 rng(20240601);
  for (int round = 0; round < 20; ++round) {
    const auto records = RandomRecords(rng, 1 + static_cast<int>(rng() % 200));
    std::vector<size_t> boundaries;
    const std::string bytes = Encode(records, &boundaries);
    size_t expected_total = 0;
    for (const auto& r : records) expected_total += ExpectedSize(r);
    ASSERT_EQ(bytes.size(), expected_total);
    bool ok = false;
    const auto got = DecodeAll(bytes, &ok);
    ASSERT_TRUE(ok) << "round " << round;
    ASSERT_EQ(got.size(), records.size());
    for (size_t k = 0; k < got.size(); ++k) {
      ExpectSameRecord(records[k], got[k], k);
      // Views into the batch, no copies.
      ExpectViewInside(got[k].fields, bytes);
      ExpectViewInside(got[k].user_id, bytes);
      ExpectViewInside(got[k].key, bytes);
      ExpectViewInside(got[k].value, bytes);
    }
  }
}

TEST(RecordCodec, EveryTruncationYieldsOnlyAPrefix) {
  std::mt19937_64 rng(7);
  std::vector<OwnedRecord> records = RandomRecords(rng, 12);
  ShortenStrings(&records, 40);
  // Multi-byte (2 and 3 byte) length prefixes.
  records[3].value = RandomBytes(rng, 200);
  records[7].user_id = RandomBytes(rng, 17000);
  std::vector<size_t> boundaries;
  const std::string bytes = Encode(records, &boundaries);
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    // Inside the long user_id every cut behaves alike: sample them.
    if (cut > boundaries[6] + 64 && cut + 200 < boundaries[7] && cut % 101 != 0) continue;
    // Copy so that ASan/valgrind catch any read past the cut.
    const std::string truncated = bytes.substr(0, cut);
    size_t complete = 0;
    while (complete < boundaries.size() && boundaries[complete] <= cut) ++complete;
    const bool at_boundary = cut == 0 || (complete > 0 && boundaries[complete - 1] == cut);
    bool ok = false;
    const auto got = DecodeAll(truncated, &ok);
    ASSERT_EQ(got.size(), complete) << "cut at " << cut;
    ASSERT_EQ(ok, at_boundary) << "cut at " << cut;
    for (size_t k = 0; k < got.size(); ++k) {
      ExpectSameRecord(records[k], got[k], k);
      ExpectViewInside(got[k].user_id, truncated);
      ExpectViewInside(got[k].key, truncated);
      ExpectViewInside(got[k].value, truncated);
    }
  }
}

// Builds one record by hand: partition 1, offset 2, time 0, no fields,
// user "u", empty key and value.
std::string ValidRecordBytes() {
  std::string out;
  out.push_back('\x01');  // partition
  out.push_back('\x02');  // offset
  out.append(8, '\0');    // event time
  out.push_back('\x00');  // fields: empty
  out.append("\x01u\x00\x00", 4);
  return out;
}

TEST(RecordCodec, AnInvalidRecordAfterValidOnesStopsTheReader) {
  OwnedRecord r;
  r.user_id = "7";
  std::string bytes;
  AppendShuffleRecord(r.View(), &bytes);
  AppendShuffleRecord(r.View(), &bytes);
  std::string bad = ValidRecordBytes();
  bad[10] = '\x7f';  // fields length beyond the batch
  bytes += bad;
  AppendShuffleRecord(r.View(), &bytes);  // never reached
  bool ok = true;
  const auto got = DecodeAll(bytes, &ok);
  EXPECT_FALSE(ok);
  EXPECT_EQ(got.size(), 2u);
}

TEST(RecordCodec, RejectsAPartitionAboveInt32Max) {
  std::string bytes;
  // 2^31 as a varint.
  bytes.append("\x80\x80\x80\x80\x08", 5);
  bytes += ValidRecordBytes().substr(1);
  bool ok = true;
  EXPECT_TRUE(DecodeAll(bytes, &ok).empty());
  EXPECT_FALSE(ok);

  // INT32_MAX itself is fine.
  std::string max_bytes("\xff\xff\xff\xff\x07", 5);
  max_bytes += ValidRecordBytes().substr(1);
  const auto got = DecodeAll(max_bytes, &ok);
  EXPECT_TRUE(ok);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].partition, std::numeric_limits<int32_t>::max());
}

TEST(RecordCodec, RejectsAnOverlongVarint) {
  std::string bytes = "\x01";
  bytes.append(11, '\xff');  // offset: never-ending varint
  bytes.push_back('\x01');
  bytes.append(8 + 1 + 3, '\0');
  bool ok = true;
  EXPECT_TRUE(DecodeAll(bytes, &ok).empty());
  EXPECT_FALSE(ok);
}

TEST(RecordCodec, RejectsALengthBeyondTheBatch) {
  for (const std::string& length :
       {std::string("\x05"), std::string("\xff\xff\xff\xff\xff\xff\xff\xff\x7f"),
        std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")}) {
    std::string bytes = ValidRecordBytes();
    bytes.resize(bytes.size() - 4);  // drop the strings
    bytes += length;                 // user_id longer than what follows
    bytes += "abcd";
    bool ok = true;
    EXPECT_TRUE(DecodeAll(bytes, &ok).empty());
    EXPECT_FALSE(ok);
  }
}

TEST(RecordCodec, RandomCorruptionNeverReadsOutsideTheBatch) {
  std::mt19937_64 rng(99);
  auto records = RandomRecords(rng, 30);
  ShortenStrings(&records, 300);
  const std::string clean = Encode(records);
  for (int round = 0; round < 300; ++round) {
    std::string bytes = clean;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng() & 0xff);
    bytes.resize(rng() % (bytes.size() + 1));
    ShuffleRecordReader reader(bytes);
    ShuffleRecord r;
    size_t n = 0;
    while (reader.Next(&r)) {
      ++n;
      ASSERT_LE(n, bytes.size());
      EXPECT_GE(r.partition, 0);
      ExpectViewInside(r.fields, bytes);
      Event event;
      (void)DecodeEventFields(r.fields, &event);  // any bytes: no crash, no read outside
      ExpectViewInside(r.user_id, bytes);
      ExpectViewInside(r.key, bytes);
      ExpectViewInside(r.value, bytes);
    }
  }
}

// ---------------------------------------------------------------------------
// EncodeEventFields / DecodeEventFields

void ExpectSameFields(const Event& want, const Event& got) {
  ASSERT_EQ(got.fields.size(), want.fields.size());
  for (size_t i = 0; i < want.fields.size(); ++i) {
    SCOPED_TRACE(testing::Message() << "field " << i);
    EXPECT_EQ(got.fields[i].present, want.fields[i].present);
    EXPECT_EQ(got.fields[i].long_value, want.fields[i].long_value);
    EXPECT_EQ(Bits(got.fields[i].double_value), Bits(want.fields[i].double_value));
    EXPECT_EQ(got.fields[i].string_value, want.fields[i].string_value);
  }
}

TEST(EventFieldsCodec, EncodesTheDocumentedLayout) {
  Event event;
  event.fields.resize(5);
  event.fields[0] = FieldValue{true, 1704103200000, 0, ""};  // time: long
  event.fields[1] = FieldValue{true, 0, 0, "view"};
  event.fields[2] = FieldValue{true, -1, 0, ""};  // zigzag 01
  event.fields[3] = FieldValue{true, 0, 1.0, ""};
  event.fields[4] = FieldValue{false, 0, 0, ""};  // absent
  std::string got;
  EncodeEventFields(event, &got);
  std::string want("\x05", 1);
  want += "\x03";
  // zigzag(1704103200000) = 3408206400000 as a varint
  uint64_t z = 3408206400000;
  while (z >= 0x80) {
    want.push_back(static_cast<char>((z & 0x7f) | 0x80));
    z >>= 7;
  }
  want.push_back(static_cast<char>(z));
  want += "\x09\x04view";
  want += "\x03\x01";
  want += std::string("\x05\x00\x00\x00\x00\x00\x00\xf0\x3f", 9);
  want += std::string("\x00", 1);
  EXPECT_EQ(got, want);
  Event back;
  ASSERT_TRUE(DecodeEventFields(got, &back));
  ExpectSameFields(event, back);
}

TEST(EventFieldsCodec, ZeroValuesCostOneByte) {
  Event event;
  event.fields.resize(3);
  event.fields[0].present = true;  // long 0 / double +0 / ""
  event.fields[2].present = true;
  event.fields[2].double_value = -0.0;  // not +0: kept
  std::string got;
  EncodeEventFields(event, &got);
  EXPECT_EQ(got, std::string("\x03\x01\x00\x05\x00\x00\x00\x00\x00\x00\x00\x80", 12));
  Event back;
  ASSERT_TRUE(DecodeEventFields(got, &back));
  ExpectSameFields(event, back);
  EXPECT_TRUE(std::signbit(back.fields[2].double_value));
}

TEST(EventFieldsCodec, RoundTripsRandomEventsIntoAReusedEvent) {
  std::mt19937_64 rng(15);
  const double kDoubles[] = {0.0, -0.0, 29.99, std::numeric_limits<double>::quiet_NaN(),
                             std::numeric_limits<double>::infinity()};
  Event reused;
  std::string bytes;
  for (int i = 0; i < 2000; ++i) {
    const Event event = RandomEvent(rng, kDoubles, std::size(kDoubles));
    EncodeEventFields(event, &bytes);
    ASSERT_TRUE(DecodeEventFields(bytes, &reused)) << i;
    ExpectSameFields(event, reused);
  }
}

TEST(EventFieldsCodec, DecodingReusesStringCapacity) {
  Event event;
  event.fields.resize(1);
  event.fields[0] = FieldValue{true, 0, 0, std::string(100, 'x')};
  std::string bytes;
  EncodeEventFields(event, &bytes);
  Event reused;
  ASSERT_TRUE(DecodeEventFields(bytes, &reused));
  const char* data = reused.fields[0].string_value.data();
  event.fields[0].string_value = "short";
  EncodeEventFields(event, &bytes);
  ASSERT_TRUE(DecodeEventFields(bytes, &reused));
  EXPECT_EQ(reused.fields[0].string_value, "short");
  EXPECT_EQ(reused.fields[0].string_value.data(), data);
}

TEST(EventFieldsCodec, RejectsMalformedBytes) {
  Event event;
  const std::string cases[] = {
      std::string(),                         // no count
      std::string("\x01", 1),                // count 1, no field
      std::string("\x01\x10", 2),            // unknown flag
      std::string("\x01\x02\x01", 3),        // a value without kFieldPresent
      std::string("\x01\x03", 2),            // long without its varint
      std::string("\x01\x05\x00\x00", 4),    // short double
      std::string("\x01\x09\x05" "ab", 5),   // string beyond the bytes
      std::string("\x01\x01\x00", 3),        // trailing bytes
      std::string("\xff\xff\xff\x7f", 4),    // absurd count
      std::string("\x02\x01", 2),            // fewer fields than counted
  };
  for (const std::string& bytes : cases) {
    EXPECT_FALSE(DecodeEventFields(bytes, &event)) << testing::PrintToString(bytes);
  }
  EXPECT_TRUE(DecodeEventFields(std::string("\x00", 1), &event));
  EXPECT_TRUE(event.fields.empty());
}

TEST(EventFieldsCodec, EveryTruncationIsRejected) {
  std::mt19937_64 rng(3);
  const double kDoubles[] = {1.5};
  for (int round = 0; round < 50; ++round) {
    std::string bytes;
    EncodeEventFields(RandomEvent(rng, kDoubles, 1), &bytes);
    Event event;
    for (size_t cut = 0; cut < bytes.size(); ++cut) {
      const std::string truncated = bytes.substr(0, cut);
      EXPECT_FALSE(DecodeEventFields(truncated, &event)) << "cut at " << cut;
    }
  }
}

}  // namespace
}  // namespace slipstream
