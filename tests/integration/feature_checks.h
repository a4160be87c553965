// Checks of what the job wrote to Redis against the independent reference
// model (workload.h), shared by the end-to-end tests. Each reports problems
// as gtest failures: a count and the first few examples per kind.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "tests/integration/kafka_client.h"
#include "tests/integration/redis_client.h"
#include "tests/integration/workload.h"

namespace slipstream::it {

inline const std::string kUserPrefix = "user_features:";
inline const std::string kSessionPrefix = "session_features:";

// `s` with non-printable bytes escaped, cut after `max` bytes.
std::string Printable(std::string_view s, size_t max = 200);

// The whole of `s` as a decimal integer, or nullopt.
std::optional<int64_t> ParseInt(const std::string& s);

// Collects mismatches and reports the count plus the first few, instead of
// thousands of separate gtest failures.
class Mismatches {
 public:
  explicit Mismatches(std::string what) : what_(std::move(what)) {}
  void Add(const std::string& message) {
    if (count_++ < kShown) shown_ << "\n  " << message;
  }
  int64_t count() const { return count_; }
  void Report() const {
    if (count_ == 0) return;
    ADD_FAILURE() << count_ << " mismatches in " << what_ << " (first " << std::min<int64_t>(count_, kShown)
                  << "):" << shown_.str();
  }

 private:
  static constexpr int64_t kShown = 25;
  std::string what_;
  int64_t count_ = 0;
  std::ostringstream shown_;
};

// The sink's own bookkeeping (worker/sink/redis_write_guard.h), not a feature.
inline bool IsSinkBookkeepingKey(const std::string& key) { return key.rfind("slipstream:", 0) == 0; }

// Reads every feature write (MONITOR, in execution order, the guard script's
// writes included) and checks that no key ever went back in time: the
// window_end of each user_features key, and the session_end and event_count
// of each session_features key, never decrease from one write to the next.
void CheckWritesNeverGoBack(const std::vector<RedisMonitor::Command>& commands);

// Reads MONITOR for the fence (worker/sink/redis_write_guard.h): the sink
// names each connection slipstream:<job>:<attempt>:<writer> and a starting
// attempt raises the fence; no feature write of an older attempt may come
// after a newer attempt raised it. Returns how many writes it attributed to
// an attempt (0 when the sink never named its connections).
int64_t CheckNoWriteOfASupersededAttempt(const std::vector<RedisMonitor::Command>& commands);

// Every HSET/EXPIRE the job sent to its database (MONITOR), when nothing
// failed: each non-empty window of each user written exactly once, in window
// order, with the right content; each session written exactly once; EXPIRE
// 7200 / 3600 after every write; nothing else written; nothing went back
// in time (CheckWritesNeverGoBack).
void CheckFeatureWrites(const ReferenceModel& model, const std::vector<RedisMonitor::Command>& commands);

// After failures the job replays from its last checkpoint, so a window may be
// written more than once; the guarantee is that every value ever written is
// the model's value for that window or session, and every one the model
// expects was written at least once, and none went back in time
// (CheckWritesNeverGoBack).
void CheckFeatureWritesAreCorrectAtLeastOnce(const ReferenceModel& model,
                                             const std::vector<RedisMonitor::Command>& commands);

// The dead-letter topic holds every record produced with a `dlq_code` at
// least once (replays may write one twice), with that reason code and the
// record's value, and nothing else. `specs[i]` is what the producer's record
// `i` was. `duplicates`, when given, gets the number of records written
// twice or more (by replays).
void CheckDeadLettersAtLeastOnce(const std::string& bootstrap, const std::string& dlq_topic,
                                 const std::vector<RecordSpec>& specs, const TestProducer& producer,
                                 int64_t* duplicates = nullptr);

// The final state of the job's Redis database against the model: exactly the
// expected keys, each with the expected content and a TTL in range.
void CheckFinalRedisState(RedisClient& redis, const ReferenceModel& model);

// The feature keys one Redis (or every master of a cluster, merged) holds:
// each hash and its TTL in seconds.
struct StoredHash {
  std::map<std::string, std::string> fields;
  int64_t ttl_seconds = -2;
};
using StoredFeatures = std::map<std::string, StoredHash>;
absl::StatusOr<StoredFeatures> ReadStoredFeatures(RedisClient& redis);
// CheckFinalRedisState's checks on keys read already.
void CheckStoredFeatures(const StoredFeatures& stored, const ReferenceModel& model);

}  // namespace slipstream::it
