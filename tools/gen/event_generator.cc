#include "tools/gen/event_generator.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/event.h"
#include "common/key_groups.h"

namespace slipstream {
namespace {

// The kinds of malformed record, chosen uniformly. Each names the reason the
// event contract parser must report, so tests can check the whole taxonomy.
enum class Malformation : uint8_t {
  kTruncatedJson,
  kNotJson,
  kMissingEventTime,
  kMissingEventType,
  kMissingUserId,
  kMissingPrice,
  kUnknownEventType,
  kNegativePrice,
  kImpossibleDate,
  kPriceAsString,
  kEventTimeAsNumber,
  kEventTypeAsNumber,
  kUserIdWrongType,
  kEmptyUserId,
  kCount,
};

void AppendJsonString(std::string_view text, std::string* out) {
  out->push_back('"');
  for (char c : text) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out->append(buf);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

void AppendDouble(double value, std::string* out) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);  // shortest round-trip
  out->append(buf, end);
}

void AppendInt(int64_t value, std::string* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  out->append(buf, end);
}

}  // namespace

std::string_view RecordKindName(RecordKind kind) {
  switch (kind) {
    case RecordKind::kValid: return "valid";
    case RecordKind::kLate: return "late";
    case RecordKind::kMalformed: return "malformed";
  }
  return "unknown";
}

void AppendEventJson(int64_t event_time_ms, std::string_view event_type,
                     std::string_view user_id, double price, std::string* out) {
  out->append("{\"event_time\": \"");
  out->append(FormatIso8601Millis(event_time_ms));
  out->append("\", \"event_type\": ");
  AppendJsonString(event_type, out);
  out->append(", \"user_id\": ");
  AppendJsonString(user_id, out);
  out->append(", \"price\": ");
  AppendDouble(price, out);
  out->push_back('}');
}

absl::StatusOr<EventGenerator> EventGenerator::Create(const GeneratorOptions& options) {
  auto fraction_ok = [](double f) { return f >= 0 && f <= 1; };  // false for NaN
  if (options.num_users < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("users: must be >= 1, got ", options.num_users));
  }
  if (!fraction_ok(options.late_fraction)) {
    return absl::InvalidArgumentError(
        absl::StrCat("late fraction: must be in [0, 1], got ", options.late_fraction));
  }
  if (!fraction_ok(options.malformed_fraction)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "malformed fraction: must be in [0, 1], got ", options.malformed_fraction));
  }
  if (options.late_fraction + options.malformed_fraction > 1) {
    return absl::InvalidArgumentError(
        "late fraction + malformed fraction: must be <= 1");
  }
  if (!fraction_ok(options.view_fraction) || !fraction_ok(options.cart_fraction) ||
      options.view_fraction + options.cart_fraction > 1) {
    return absl::InvalidArgumentError(
        "event type mix: view and cart fractions must be in [0, 1] and sum to <= 1");
  }
  if (options.event_time_step_ms < 0 || options.max_jitter_ms < 0 || options.late_by_ms < 0) {
    return absl::InvalidArgumentError(
        "event time step, jitter and late-by must be non-negative");
  }
  // The earliest possible event time must not precede the epoch (the contract
  // format has no negative years).
  const int64_t earliest = options.event_time_start_ms - options.max_jitter_ms -
                           (options.late_fraction > 0 ? options.late_by_ms : 0);
  if (earliest < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "event time start: ", FormatIso8601Millis(std::max<int64_t>(options.event_time_start_ms, 0)),
        " minus jitter and late-by lies before 1970-01-01"));
  }
  return EventGenerator(options);
}

EventGenerator::EventGenerator(const GeneratorOptions& options)
    : options_(options), rng_(options.seed) {}

int64_t EventGenerator::next_base_time_ms() const {
  return options_.event_time_start_ms +
         static_cast<int64_t>(sequence_) * options_.event_time_step_ms;
}

uint64_t EventGenerator::UniformBelow(uint64_t n) {
  // Rejection sampling removes modulo bias; the threshold is 2^64 mod n.
  const uint64_t threshold = (0 - n) % n;
  while (true) {
    const uint64_t x = rng_();
    if (x >= threshold) return x % n;
  }
}

double EventGenerator::UniformUnit() {
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;  // 53 random mantissa bits
}

void EventGenerator::Next(GeneratedRecord* out) {
  // Always take the same draws, whatever the record kind, so changing one
  // fraction does not reshuffle unrelated fields of the stream.
  const double kind_draw = UniformUnit();
  const uint64_t user_number = 1 + UniformBelow(static_cast<uint64_t>(options_.num_users));
  const double type_draw = UniformUnit();
  const int64_t cents = 100 + static_cast<int64_t>(UniformBelow(49900));  // [1.00, 499.99]
  const int64_t jitter =
      static_cast<int64_t>(UniformBelow(static_cast<uint64_t>(options_.max_jitter_ms) + 1));
  const auto malformation = static_cast<Malformation>(
      UniformBelow(static_cast<uint64_t>(Malformation::kCount)));
  const uint64_t variant = UniformBelow(4);

  out->sequence = sequence_;
  out->base_time_ms = next_base_time_ms();
  ++sequence_;

  if (kind_draw < options_.malformed_fraction) {
    out->kind = RecordKind::kMalformed;
  } else if (kind_draw < options_.malformed_fraction + options_.late_fraction) {
    out->kind = RecordKind::kLate;
  } else {
    out->kind = RecordKind::kValid;
  }
  out->event_time_ms = out->kind == RecordKind::kLate ? out->base_time_ms - options_.late_by_ms
                                                       : out->base_time_ms - jitter;
  std::string_view type_name = type_draw < options_.view_fraction ? "view"
                               : type_draw < options_.view_fraction + options_.cart_fraction
                                   ? "cart"
                                   : "purchase";
  const double price = static_cast<double>(cents) / 100.0;

  out->key = options_.user_id_prefix;
  AppendInt(static_cast<int64_t>(user_number), &out->key);
  out->value.clear();
  out->expected_reason = {};

  if (out->kind != RecordKind::kMalformed) {
    AppendEventJson(out->event_time_ms, type_name, out->key, price, &out->value);
    return;
  }

  out->event_time_ms = 0;
  const std::string time_text = FormatIso8601Millis(out->base_time_ms - jitter);
  std::string& v = out->value;
  // Builders for the common shapes: one field replaced by raw JSON text, or
  // one field dropped (raw == nullptr).
  auto emit = [&](std::string_view replaced_field, const std::string* raw) {
    v.push_back('{');
    bool first = true;
    auto field = [&](std::string_view name, const std::string& json) {
      if (name == replaced_field && raw == nullptr) return;
      if (!first) v.append(", ");
      first = false;
      AppendJsonString(name, &v);
      v.append(": ");
      v.append(name == replaced_field ? *raw : json);
    };
    std::string t, e, u, p;
    AppendJsonString(time_text, &t);
    AppendJsonString(type_name, &e);
    AppendJsonString(out->key, &u);
    AppendDouble(price, &p);
    field("event_time", t);
    field("event_type", e);
    field("user_id", u);
    field("price", p);
    v.push_back('}');
  };
  auto emit_replaced = [&](std::string_view f, std::string raw) { emit(f, &raw); };

  switch (malformation) {
    case Malformation::kTruncatedJson: {
      AppendEventJson(out->base_time_ms - jitter, type_name, out->key, price, &v);
      v.resize(v.size() / 2 + variant);  // cut mid-record, as a torn write would
      out->key.clear();
      out->expected_reason = kReasonMalformedJson;
      break;
    }
    case Malformation::kNotJson: {
      // A CSV line, as from a misconfigured upstream producer.
      v = absl::StrCat(time_text, ",", std::string(type_name), ",", out->key, ",", price);
      out->key.clear();
      out->expected_reason = kReasonMalformedJson;
      break;
    }
    case Malformation::kMissingEventTime:
      emit("event_time", nullptr);
      out->expected_reason = kReasonMissingField;
      break;
    case Malformation::kMissingEventType:
      emit("event_type", nullptr);
      out->expected_reason = kReasonMissingField;
      break;
    case Malformation::kMissingUserId:
      emit("user_id", nullptr);
      out->key.clear();
      out->expected_reason = kReasonMissingField;
      break;
    case Malformation::kMissingPrice:
      emit("price", nullptr);
      out->expected_reason = kReasonMissingField;
      break;
    case Malformation::kUnknownEventType: {
      static constexpr std::string_view kBad[] = {"\"click\"", "\"refund\"", "\"\"",
                                                  "\"add_to_cart\""};
      emit_replaced("event_type", std::string(kBad[variant]));
      out->expected_reason = kReasonInvalidEventType;
      break;
    }
    case Malformation::kNegativePrice: {
      std::string p = "-";
      AppendDouble(price, &p);
      emit_replaced("price", std::move(p));
      out->expected_reason = kReasonInvalidPrice;
      break;
    }
    case Malformation::kImpossibleDate: {
      // time_text is "YYYY-MM-DDTHH:MM:SS[.mmm]Z"; break one component.
      std::string bad = time_text;
      switch (variant) {
        case 0: bad.replace(5, 5, "02-30"); break;  // February 30th
        case 1: bad.replace(5, 2, "13"); break;     // month 13
        case 2: bad.replace(5, 5, "04-31"); break;  // April 31st
        default: bad.replace(11, 2, "25"); break;   // hour 25
      }
      std::string json;
      AppendJsonString(bad, &json);
      emit_replaced("event_time", std::move(json));
      out->expected_reason = kReasonInvalidEventTime;
      break;
    }
    case Malformation::kPriceAsString: {
      std::string p;
      AppendDouble(price, &p);
      emit_replaced("price", absl::StrCat("\"", p, "\""));
      out->expected_reason = kReasonWrongType;
      break;
    }
    case Malformation::kEventTimeAsNumber: {
      std::string t;
      AppendInt(out->base_time_ms - jitter, &t);  // epoch ms instead of ISO text
      emit_replaced("event_time", std::move(t));
      out->expected_reason = kReasonWrongType;
      break;
    }
    case Malformation::kEventTypeAsNumber:
      emit_replaced("event_type", std::to_string(variant));
      out->expected_reason = kReasonWrongType;
      break;
    case Malformation::kUserIdWrongType: {
      static constexpr std::string_view kBad[] = {"true", "[1, 2]", "{\"id\": 1}", "false"};
      emit_replaced("user_id", std::string(kBad[variant]));
      out->key.clear();
      out->expected_reason = kReasonWrongType;
      break;
    }
    case Malformation::kEmptyUserId:
      emit_replaced("user_id", "\"\"");
      out->key.clear();
      out->expected_reason = kReasonInvalidUserId;
      break;
    case Malformation::kCount:
      break;
  }
}

absl::StatusOr<WorkerLocalPartitioner> WorkerLocalPartitioner::Create(int num_partitions,
                                                                     int num_workers,
                                                                     int max_parallelism) {
  if (num_workers < 1) {
    return absl::InvalidArgumentError(absl::StrCat("need at least 1 worker, got ", num_workers));
  }
  if (max_parallelism < 1 || max_parallelism > 32768) {
    return absl::InvalidArgumentError(
        absl::StrCat("max parallelism must be in 1..32768, got ", max_parallelism));
  }
  if (num_workers > num_partitions) {
    return absl::InvalidArgumentError(
        absl::StrCat(num_workers, " workers need at least as many partitions, the topic has ",
                     num_partitions, ": some worker would read none"));
  }
  if (num_workers > max_parallelism) {
    return absl::InvalidArgumentError(absl::StrCat(num_workers, " workers exceed max parallelism ",
                                                   max_parallelism, ": some worker would own no key group"));
  }
  WorkerLocalPartitioner p;
  p.num_partitions_ = num_partitions;
  p.num_workers_ = num_workers;
  p.max_parallelism_ = max_parallelism;
  p.owner_of_key_group_.assign(max_parallelism, -1);
  for (int i = 0; i < num_workers; ++i) {
    const KeyGroupRange range = KeyGroupRangeForOperatorIndex(max_parallelism, num_workers, i);
    for (int kg = range.first; kg <= range.last; ++kg) p.owner_of_key_group_[kg] = i;
  }
  if (std::find(p.owner_of_key_group_.begin(), p.owner_of_key_group_.end(), -1) !=
      p.owner_of_key_group_.end()) {
    return absl::InternalError("the key-group ranges do not cover every key group");
  }
  p.partitions_of_worker_.resize(num_workers);
  for (int partition = 0; partition < num_partitions; ++partition) {
    p.partitions_of_worker_[WorkerOfPartition(partition, num_workers)].push_back(partition);
  }
  return p;
}

int WorkerLocalPartitioner::OwnerIndex(std::string_view key) const {
  return owner_of_key_group_[KeyGroupForKey(key, max_parallelism_)];
}

int WorkerLocalPartitioner::PartitionFor(std::string_view key) const {
  const int key_group = KeyGroupForKey(key, max_parallelism_);
  const std::vector<int>& candidates = partitions_of_worker_[owner_of_key_group_[key_group]];
  return candidates[static_cast<size_t>(key_group) % candidates.size()];
}

absl::StatusOr<std::string> WorkerLocalPartitioner::LocalKeyFor(int partition,
                                                                std::string_view base) const {
  if (partition < 0 || partition >= num_partitions_) {
    return absl::InvalidArgumentError(
        absl::StrCat("partition ", partition, " is not in 0..", num_partitions_ - 1));
  }
  const int reader = WorkerOfPartition(partition, num_workers_);
  std::string key(base);
  // Each suffix hits a given worker with probability >= 1/max_parallelism;
  // the bound only guards against a broken hash.
  for (int64_t i = 1; OwnerIndex(key) != reader; ++i) {
    if (i > 100 * static_cast<int64_t>(max_parallelism_)) {
      return absl::InternalError(absl::StrCat("no key ", std::string(base), "<n> owned by worker ", reader));
    }
    key = absl::StrCat(std::string(base), i);
  }
  return key;
}

}  // namespace slipstream
