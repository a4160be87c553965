// Checks of what the job wrote to Redis against the independent reference
// model (workload.h), shared by the end-to-end tests: the final state of the
// job's database, and every feature write recorded with MONITOR (exactly once
// when nothing failed; at least once, every value correct, after failures).
// Failures are reported through gtest (ADD_FAILURE), a few examples each.
#include "tests/integration/feature_checks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace slipstream::it {

std::string Printable(std::string_view s, size_t max) {
  std::string out;
  for (unsigned char c : s.substr(0, max)) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > max) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

std::optional<int64_t> ParseInt(const std::string& s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

namespace {

std::string FieldsText(const std::map<std::string, std::string>& h) {
  std::string out;
  for (const auto& [k, v] : h) out += " " + k + "=" + Printable(v, 40);
  return out;
}

void ExpectField(const std::map<std::string, std::string>& h, const std::string& name, const std::string& value,
                 std::vector<std::string>* problems) {
  auto it = h.find(name);
  if (it == h.end()) {
    problems->push_back(name + " is missing (should be " + Printable(value) + ")");
  } else if (it->second != value) {
    problems->push_back(name + " is " + Printable(it->second) + ", should be " + Printable(value));
  }
}

void ExpectExactFields(const std::map<std::string, std::string>& h, const std::set<std::string>& names,
                       std::vector<std::string>* problems) {
  std::set<std::string> actual;
  for (const auto& [k, v] : h) actual.insert(k);
  if (actual != names) problems->push_back("fields are not exactly " + absl::StrJoin(names, ","));
}

// What is wrong with a user_features hash that should hold `win`.
std::vector<std::string> UserFeatureProblems(const std::string& user, const ExpectedWindow& win,
                                             const std::map<std::string, std::string>& h) {
  std::vector<std::string> problems;
  ExpectExactFields(h,
                    {"user_id", "view_count_1h", "cart_count_1h", "purchase_count_1h", "avg_viewed_price_1h",
                     "window_start", "window_end"},
                    &problems);
  ExpectField(h, "user_id", user, &problems);
  ExpectField(h, "window_start", std::to_string(win.start), &problems);
  ExpectField(h, "window_end", std::to_string(win.end()), &problems);
  ExpectField(h, "view_count_1h", std::to_string(win.views), &problems);
  ExpectField(h, "cart_count_1h", std::to_string(win.carts), &problems);
  ExpectField(h, "purchase_count_1h", std::to_string(win.purchases), &problems);
  if (auto it = h.find("avg_viewed_price_1h"); it != h.end()) {
    const std::string& text = it->second;
    const long double expected = win.AvgViewedPrice();
    double value = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    char shortest[64];
    auto [q, ec2] = std::to_chars(shortest, shortest + sizeof(shortest), value);
    char expected_text[64];
    std::snprintf(expected_text, sizeof(expected_text), "%.17Lg", expected);
    if (ec != std::errc() || p != text.data() + text.size()) {
      problems.push_back("avg_viewed_price_1h " + Printable(text) + " is not a number");
    } else if (ec2 != std::errc() || std::string(shortest, q) != text) {
      problems.push_back("avg_viewed_price_1h " + text + " is not in shortest round-trip form (" +
                         std::string(shortest, q) + ")");
    } else if (win.views == 0 ? text != "0"
                              : std::fabs(static_cast<long double>(value) - expected) > 1e-12L * std::fabs(expected)) {
      problems.push_back("avg_viewed_price_1h is " + text + ", should be ~" + expected_text);
    }
  }
  return problems;
}

std::vector<std::string> SessionProblems(const ExpectedSession& s, const std::map<std::string, std::string>& h) {
  std::vector<std::string> problems;
  ExpectExactFields(h, {"user_id", "event_count", "duration_seconds", "session_start", "session_end"}, &problems);
  ExpectField(h, "user_id", s.user, &problems);
  ExpectField(h, "event_count", std::to_string(s.count), &problems);
  ExpectField(h, "duration_seconds", std::to_string((s.last_ms - s.first_ms) / 1000), &problems);
  ExpectField(h, "session_start", std::to_string(s.first_ms), &problems);
  ExpectField(h, "session_end", std::to_string(s.last_ms), &problems);
  return problems;
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

void CheckWritesNeverGoBack(const std::vector<RedisMonitor::Command>& commands) {
  // Per key: the guard fields of its latest write, and where it came from.
  struct Latest {
    std::vector<int64_t> values;
    std::string origin;
  };
  std::map<std::string, Latest> latest;
  Mismatches backwards("writes that took a key back in time (MONITOR)");
  int64_t checked = 0;
  for (const RedisMonitor::Command& c : commands) {
    if (Upper(c.args[0]) != "HSET" || c.args.size() < 4 || c.args.size() % 2 != 0) continue;
    const std::string& key = c.args[1];
    std::vector<std::string> guard_fields;
    if (key.rfind(kUserPrefix, 0) == 0) {
      guard_fields = {"window_end"};
    } else if (key.rfind(kSessionPrefix, 0) == 0) {
      guard_fields = {"session_end", "event_count"};
    } else {
      continue;
    }
    std::map<std::string, std::string> fields;
    for (size_t i = 2; i + 1 < c.args.size(); i += 2) fields[c.args[i]] = c.args[i + 1];
    Latest now{{}, c.origin};
    for (const std::string& name : guard_fields) now.values.push_back(ParseInt(fields[name]).value_or(INT64_MIN));
    ++checked;
    auto [it, first] = latest.emplace(key, now);
    if (first) continue;
    for (size_t g = 0; g < guard_fields.size(); ++g) {
      if (now.values[g] < it->second.values[g]) {
        backwards.Add(absl::StrCat(Printable(key), ": ", guard_fields[g], " ", it->second.values[g], " (",
                                   it->second.origin, ") then ", now.values[g], " (", c.origin, ")"));
        break;
      }
    }
    it->second = std::move(now);
  }
  backwards.Report();
  std::cout << "[it] MONITOR: " << checked << " feature writes of " << latest.size()
            << " keys checked: none went back in time unless reported above" << std::endl;
}

namespace {

// The client of a MONITOR line's origin "<time> [<db> <client>]": an
// address, or "lua" for a command a script ran.
std::string ClientOf(const std::string& origin) {
  const size_t open = origin.find('[');
  const size_t space = origin.find(' ', open == std::string::npos ? 0 : open);
  const size_t close = origin.find(']', space == std::string::npos ? 0 : space);
  if (open == std::string::npos || space == std::string::npos || close == std::string::npos) return "";
  return origin.substr(space + 1, close - space - 1);
}

}  // namespace

int64_t CheckNoWriteOfASupersededAttempt(const std::vector<RedisMonitor::Command>& commands) {
  std::map<std::string, int64_t> attempt_of_client;
  int64_t fence = 0;  // the newest attempt that raised its fence so far
  std::string script_client;  // the client whose script runs the "lua" commands
  int64_t attributed = 0;
  Mismatches late("feature writes of a superseded attempt after its successor raised the fence (MONITOR)");
  for (const RedisMonitor::Command& c : commands) {
    const std::string name = Upper(c.args[0]);
    const std::string client = ClientOf(c.origin);
    if (name == "CLIENT" && c.args.size() == 3 && Upper(c.args[1]) == "SETNAME") {
      // slipstream:<job>:<attempt>:<writer>
      const std::vector<std::string> parts = absl::StrSplit(c.args[2], ':');
      if (parts.size() == 4 && parts[0] == "slipstream") {
        attempt_of_client[client] = ParseInt(parts[2]).value_or(0);
      }
    } else if (name == "EVALSHA" || name == "EVAL") {
      script_client = client;
      // The fence script: EVALSHA <sha> 1 slipstream:writers <job> <attempt> <ttl>.
      if (c.args.size() == 7 && c.args[2] == "1" && IsSinkBookkeepingKey(c.args[3])) {
        fence = std::max(fence, ParseInt(c.args[5]).value_or(0));
      }
    } else if (name == "HSET" && c.args.size() >= 2 && !IsSinkBookkeepingKey(c.args[1])) {
      const auto it = attempt_of_client.find(client == "lua" ? script_client : client);
      if (it == attempt_of_client.end()) continue;
      ++attributed;
      if (it->second < fence) {
        late.Add(absl::StrCat(c.origin, " ", Printable(c.args[1]), ": written by attempt ", it->second,
                              " after attempt ", fence, " raised the fence"));
      }
    }
  }
  late.Report();
  return attributed;
}

// Every HSET/EXPIRE the job sent to its database, against the model: each
// non-empty window of each user written exactly once, in window order, with
// the right content; each session written exactly once; EXPIRE 7200 / 3600
// after every write; nothing else written.
void CheckFeatureWrites(const ReferenceModel& model, const std::vector<RedisMonitor::Command>& commands) {
  std::map<std::string, std::vector<std::map<std::string, std::string>>> writes;
  std::map<std::string, std::vector<std::string>> expires;
  Mismatches other("commands other than HSET/EXPIRE on the job's database");
  // Commands the test itself sends (reads).
  // Commands the sink sends besides its writes (the guard script and its
  // reads, the fence, connection set-up).
  const std::set<std::string> ignored = {"SELECT", "PING",   "ECHO",    "DBSIZE", "SCAN", "HGETALL", "TTL",
                                         "INFO",   "CLIENT", "COMMAND", "HELLO",  "AUTH", "MULTI",   "EXEC",
                                         "EVALSHA", "EVAL",  "SCRIPT",  "HMGET",  "HGET", "EXISTS"};
  int64_t hsets = 0;
  for (const RedisMonitor::Command& c : commands) {
    const std::string name = Upper(c.args[0]);
    if (c.args.size() >= 2 && IsSinkBookkeepingKey(c.args[1]) && (name == "HSET" || name == "EXPIRE")) continue;
    if ((name == "HSET" || name == "HMSET") && c.args.size() >= 4 && c.args.size() % 2 == 0) {
      std::map<std::string, std::string> fields;
      for (size_t i = 2; i + 1 < c.args.size(); i += 2) fields[c.args[i]] = c.args[i + 1];
      writes[c.args[1]].push_back(std::move(fields));
      ++hsets;
    } else if (name == "EXPIRE" && c.args.size() == 3) {
      expires[c.args[1]].push_back(c.args[2]);
    } else if (!ignored.count(name)) {
      std::vector<std::string> printable;
      for (const std::string& a : c.args) printable.push_back(Printable(a, 60));
      other.Add(absl::StrJoin(printable, " "));
    }
  }
  other.Report();

  Mismatches windows("sliding-window writes (MONITOR)");
  for (const auto& [user, expected] : model.windows()) {
    const std::string key = kUserPrefix + user;
    const auto it = writes.find(key);
    const size_t written = it == writes.end() ? 0 : it->second.size();
    if (written != expected.size()) {
      windows.Add(absl::StrCat(Printable(key), ": ", written, " windows written, expected ", expected.size()));
    }
    for (size_t i = 0; i < std::min(written, expected.size()); ++i) {
      std::vector<std::string> problems = UserFeatureProblems(user, expected[i], it->second[i]);
      if (!problems.empty()) {
        windows.Add(absl::StrCat(Printable(key), " write #", i + 1, " (expected window [", expected[i].start, ", ",
                                 expected[i].end(), ")): ", absl::StrJoin(problems, "; "),
                                 " | actual:", FieldsText(it->second[i])));
        break;  // one per user: later ones are usually shifted copies
      }
    }
  }
  windows.Report();

  Mismatches sessions("session writes (MONITOR)");
  for (const auto& [key, expected] : model.sessions()) {
    const auto it = writes.find(key);
    const size_t written = it == writes.end() ? 0 : it->second.size();
    if (written != 1) {
      sessions.Add(absl::StrCat(Printable(key), " written ", written, " times, expected once"));
      if (written == 0) continue;
    }
    std::vector<std::string> problems = SessionProblems(expected, it->second[0]);
    if (!problems.empty()) {
      sessions.Add(Printable(key) + ": " + absl::StrJoin(problems, "; ") + " | actual:" + FieldsText(it->second[0]));
    }
  }
  sessions.Report();

  Mismatches stray("writes to keys the model does not expect (MONITOR)");
  Mismatches ttl("EXPIRE after each write (MONITOR)");
  for (const auto& [key, list] : writes) {
    const bool user = key.rfind(kUserPrefix, 0) == 0;
    const bool known = user ? model.windows().count(key.substr(kUserPrefix.size())) > 0 : model.sessions().count(key) > 0;
    if (!known) {
      stray.Add(absl::StrCat(Printable(key), " written ", list.size(), " times; first:", FieldsText(list.front())));
    }
    const std::vector<std::string>& e = expires[key];
    const std::string want = user ? "7200" : "3600";
    const bool all_right = std::all_of(e.begin(), e.end(), [&](const std::string& v) { return v == want; });
    // An EXPIRE may outnumber its HSETs: Redis runs the EXPIRE of a
    // pipelined pair whose HSET it refused (-OOM), and the pair is resent.
    if (e.size() < list.size() || !all_right) {
      ttl.Add(absl::StrCat(Printable(key), ": ", list.size(), " HSETs, ", e.size(), " EXPIREs (",
                           absl::StrJoin(e, ","), "), expected EXPIRE ", want, " after each"));
    }
  }
  for (const auto& [key, e] : expires) {
    if (!writes.count(key)) ttl.Add(absl::StrCat(Printable(key), ": EXPIRE without HSET"));
  }
  stray.Report();
  ttl.Report();
  std::cout << "[it] MONITOR saw " << commands.size() << " commands, " << hsets << " feature writes" << std::endl;
  CheckWritesNeverGoBack(commands);
}

// The final state of the job's Redis database against the model: exactly the
// expected keys, each with the expected content and a TTL in range.
absl::StatusOr<StoredFeatures> ReadStoredFeatures(RedisClient& redis) {
  absl::StatusOr<std::vector<std::string>> keys = redis.FeatureKeys();
  if (!keys.ok()) return keys.status();
  std::vector<std::map<std::string, std::string>> hashes;
  std::vector<int64_t> ttls;
  if (absl::Status s = redis.HGetAllMany(*keys, &hashes, &ttls); !s.ok()) return s;
  StoredFeatures stored;
  for (size_t i = 0; i < keys->size(); ++i) stored[(*keys)[i]] = {std::move(hashes[i]), ttls[i]};
  return stored;
}

void CheckFinalRedisState(RedisClient& redis, const ReferenceModel& model) {
  absl::StatusOr<StoredFeatures> stored = ReadStoredFeatures(redis);
  ASSERT_TRUE(stored.ok()) << stored.status();
  CheckStoredFeatures(*stored, model);
}

void CheckStoredFeatures(const StoredFeatures& stored, const ReferenceModel& model) {
  std::set<std::string> actual;
  for (const auto& [key, hash] : stored) actual.insert(key);
  std::set<std::string> expected;
  for (const auto& [user, f] : model.user_features()) expected.insert(kUserPrefix + user);
  for (const auto& [key, s] : model.sessions()) expected.insert(key);
  Mismatches key_set("the set of Redis keys");
  for (const std::string& k : expected) {
    if (!actual.count(k)) key_set.Add("missing key " + Printable(k));
  }
  for (const std::string& k : actual) {
    if (!expected.count(k)) key_set.Add("unexpected key " + Printable(k));
  }
  key_set.Report();

  Mismatches user_mismatches("user_features hashes (final state)");
  Mismatches session_mismatches("session_features hashes (final state)");
  for (const std::string& key : expected) {
    auto found = stored.find(key);
    if (found == stored.end() || found->second.fields.empty()) continue;  // reported as missing above
    const std::map<std::string, std::string>& h = found->second.fields;
    const int64_t ttl = found->second.ttl_seconds;
    if (key.rfind(kUserPrefix, 0) == 0) {
      const std::string user = key.substr(kUserPrefix.size());
      std::vector<std::string> problems = UserFeatureProblems(user, model.user_features().at(user), h);
      if (!(ttl > 3600 && ttl <= 7200)) problems.push_back("TTL " + std::to_string(ttl) + " not in (3600, 7200]");
      if (!problems.empty()) user_mismatches.Add(Printable(key) + ": " + absl::StrJoin(problems, "; ") + " | actual:" + FieldsText(h));
    } else {
      std::vector<std::string> problems = SessionProblems(model.sessions().at(key), h);
      if (!(ttl > 0 && ttl <= 3600)) problems.push_back("TTL " + std::to_string(ttl) + " not in (0, 3600]");
      if (!problems.empty()) session_mismatches.Add(Printable(key) + ": " + absl::StrJoin(problems, "; ") + " | actual:" + FieldsText(h));
    }
  }
  user_mismatches.Report();
  session_mismatches.Report();
}

// After failures the job replays from its last checkpoint, so a window may be
// written more than once; the guarantee is that every value ever written is
// the model's value for that window or session, and every one the model
// expects was written at least once.
void CheckFeatureWritesAreCorrectAtLeastOnce(const ReferenceModel& model,
                                             const std::vector<RedisMonitor::Command>& commands) {
  std::map<std::string, std::map<int64_t, const ExpectedWindow*>> windows_by_start;
  for (const auto& [user, list] : model.windows()) {
    for (const ExpectedWindow& w : list) windows_by_start[user][w.start] = &w;
  }
  std::set<std::pair<std::string, int64_t>> windows_written;
  std::set<std::string> sessions_written;
  int64_t writes = 0, duplicates = 0;
  Mismatches wrong("feature writes (MONITOR) compared with the model, at least once");
  for (const RedisMonitor::Command& c : commands) {
    const std::string name = Upper(c.args[0]);
    if (!((name == "HSET" || name == "HMSET") && c.args.size() >= 4 && c.args.size() % 2 == 0)) continue;
    std::map<std::string, std::string> fields;
    for (size_t i = 2; i + 1 < c.args.size(); i += 2) fields[c.args[i]] = c.args[i + 1];
    const std::string& key = c.args[1];
    if (IsSinkBookkeepingKey(key)) continue;
    ++writes;
    if (key.rfind(kUserPrefix, 0) == 0) {
      const std::string user = key.substr(kUserPrefix.size());
      const std::optional<int64_t> start = ParseInt(fields["window_start"]);
      auto u = windows_by_start.find(user);
      if (!start || u == windows_by_start.end() || !u->second.count(*start)) {
        wrong.Add(Printable(key) + ": a window the model does not have:" + FieldsText(fields));
        continue;
      }
      std::vector<std::string> problems = UserFeatureProblems(user, *u->second.at(*start), fields);
      if (!problems.empty()) {
        wrong.Add(absl::StrCat(c.origin, " ", Printable(key), " window ", *start, ": ", absl::StrJoin(problems, "; ")));
      }
      if (!windows_written.insert({user, *start}).second) ++duplicates;
    } else {
      auto it = model.sessions().find(key);
      if (it == model.sessions().end()) {
        wrong.Add(Printable(key) + ": a session the model does not have:" + FieldsText(fields));
        continue;
      }
      std::vector<std::string> problems = SessionProblems(it->second, fields);
      if (!problems.empty()) wrong.Add(absl::StrCat(c.origin, " ", Printable(key), ": ", absl::StrJoin(problems, "; ")));
      if (!sessions_written.insert(key).second) ++duplicates;
    }
  }
  wrong.Report();
  Mismatches missing("windows and sessions never written");
  for (const auto& [user, list] : model.windows()) {
    for (const ExpectedWindow& w : list) {
      if (!windows_written.count({user, w.start})) missing.Add(absl::StrCat(Printable(user), " window ", w.start));
    }
  }
  for (const auto& [key, session] : model.sessions()) {
    if (!sessions_written.count(key)) missing.Add(Printable(key));
  }
  missing.Report();
  std::cout << "[it] MONITOR saw " << writes << " feature writes, " << duplicates
            << " of them rewrites of a window or session already written (replays after failures)" << std::endl;
  CheckWritesNeverGoBack(commands);
}

void CheckDeadLettersAtLeastOnce(const std::string& bootstrap, const std::string& dlq_topic,
                                 const std::vector<RecordSpec>& specs, const TestProducer& producer,
                                 int64_t* duplicates_out) {
  std::map<std::pair<int32_t, int64_t>, const RecordSpec*> by_source;
  size_t expected = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const Delivery& d = producer.delivery(i);
    by_source[{d.partition, d.offset}] = &specs[i];
    if (!specs[i].dlq_code.empty()) ++expected;
  }
  absl::StatusOr<std::vector<ConsumedRecord>> dlq = ReadWholeTopic(bootstrap, dlq_topic, expected, 60000);
  ASSERT_TRUE(dlq.ok()) << dlq.status();
  Mismatches wrong("dead-letter records");
  std::set<std::pair<int32_t, int64_t>> seen;
  int64_t duplicates = 0;
  for (const ConsumedRecord& r : *dlq) {
    const std::optional<int64_t> partition = ParseInt(r.Header("dlq.source.partition").value_or(""));
    const std::optional<int64_t> offset = ParseInt(r.Header("dlq.source.offset").value_or(""));
    const std::string reason = r.Header("dlq.reason").value_or("");
    if (!partition || !offset) {
      wrong.Add(absl::StrCat("dlq ", r.partition, "@", r.offset, ": no source partition/offset headers"));
      continue;
    }
    const std::pair<int32_t, int64_t> source{static_cast<int32_t>(*partition), *offset};
    auto it = by_source.find(source);
    if (it == by_source.end() || it->second->dlq_code.empty()) {
      wrong.Add(absl::StrCat("dlq ", r.partition, "@", r.offset, ": source ", *partition, "@", *offset,
                             it == by_source.end() ? " was never produced" : " is a valid record",
                             " (reason ", Printable(reason), ")"));
      continue;
    }
    if (reason.rfind(it->second->dlq_code + ": ", 0) != 0) {
      wrong.Add(absl::StrCat("dlq ", r.partition, "@", r.offset, ": reason ", Printable(reason), ", expected ",
                             it->second->dlq_code));
    }
    if (r.value.value_or("") != it->second->value) {
      wrong.Add(absl::StrCat("dlq ", r.partition, "@", r.offset, ": value differs from the source"));
    }
    if (!seen.insert(source).second) ++duplicates;
  }
  for (const auto& [source, spec] : by_source) {
    if (!spec->dlq_code.empty() && !seen.count(source)) {
      wrong.Add(absl::StrCat("no dead letter for ", source.first, "@", source.second, " (", spec->dlq_code, ")"));
    }
  }
  wrong.Report();
  std::cout << "[it] dead-letter topic: " << dlq->size() << " records for " << expected
            << " records that belong there (" << duplicates << " written again by replays)" << std::endl;
  if (duplicates_out != nullptr) *duplicates_out = duplicates;
}

}  // namespace slipstream::it
