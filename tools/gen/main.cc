// slipstream-gen: produces synthetic (or replayed) e-commerce events to Kafka.
// Replaces the original project's producer notebook. See --help.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/event.h"
#include "common/dynamic_properties.h"
#include "tools/gen/event_generator.h"
#include "tools/gen/kafka_producer.h"

namespace slipstream {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kProgram[] = "slipstream-gen";
constexpr char kWatermarkUserId[] = "__watermark__";
constexpr int kBrokerTimeoutMs = 10'000;
constexpr int kFlushTimeoutMs = 60'000;
constexpr int kCreateTopicTimeoutMs = 30'000;

std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};

extern "C" void OnSignal(int sig) {
  g_signal.store(sig);
  g_stop.store(true);
  std::signal(sig, SIG_DFL);  // a second Ctrl-C kills at once, even mid-flush
}

int Fail(std::string_view message) {
  std::fprintf(stderr, "%s: %.*s\n", kProgram, static_cast<int>(message.size()), message.data());
  return 1;
}
int Fail(const absl::Status& status) { return Fail(std::string(status.message())); }

struct Flags {
  std::string config_path;
  bool help_config = false;
  std::string topic;
  int64_t users = 1000;
  std::string user_prefix;
  int64_t count = 100000;
  std::string duration = "0";
  double rate = 0;
  std::string event_time_start;
  std::string event_time_step = "100 ms";
  std::string jitter = "5 s";
  double late_fraction = 0;
  std::string late_by = "2 h";
  double malformed_fraction = 0;
  uint64_t seed = 42;
  std::string from_file;
  int partitions = 0;
  int replication = 1;
  std::string flush_watermark;
  int partition_for_workers = 0;
  bool quiet = false;
  bool verbose = false;
};

absl::StatusOr<int64_t> DurationFlag(const std::string& flag, const std::string& text) {
  absl::StatusOr<int64_t> ms = ParseDurationMs(text);
  if (!ms.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": invalid duration '", text, "': ", ms.status().message()));
  }
  if (*ms < 0) return absl::InvalidArgumentError(absl::StrCat(flag, ": must be >= 0"));
  return *ms;
}

// CLI11's NonNegativeNumber/PositiveNumber print a 300-digit upper bound in
// their error message; this says just what is wrong.
CLI::Validator AtLeast(double min) {
  return CLI::Validator(
      [min](std::string& text) -> std::string {
        double value = 0;
        if (!CLI::detail::lexical_cast(text, value)) return "not a number: " + text;
        if (!(value >= min)) return absl::StrCat("must be >= ", min, ", got ", text);
        return "";
      },
      min == 0 ? "NONNEGATIVE" : min == 1 ? "POSITIVE" : absl::StrCat(">=", min));
}

// Yields records one at a time; false at the end of the input.
using RecordSource = std::function<absl::StatusOr<bool>(GeneratedRecord*)>;

// Replays a JSON-lines file: each non-blank line is one record value, sent
// unchanged; valid events are keyed by their user_id, others get no key.
class FileSource {
 public:
  static absl::StatusOr<std::unique_ptr<FileSource>> Open(const std::string& path) {
    auto source = std::make_unique<FileSource>();
    source->in_.open(path, std::ios::binary);
    if (!source->in_) {
      return absl::NotFoundError(
          absl::StrCat("--from-file: cannot open ", path, ": ", std::strerror(errno)));
    }
    source->path_ = path;
    return source;
  }

  absl::StatusOr<bool> Next(GeneratedRecord* out) {
    while (std::getline(in_, line_)) {
      ++line_number_;
      if (!line_.empty() && line_.back() == '\r') line_.pop_back();  // CRLF files
      if (line_.find_first_not_of(" \t") == std::string::npos) continue;
      out->sequence = line_number_;
      out->value = line_;
      out->expected_reason = {};
      if (parser_.Parse(line_, &event_).ok()) {
        out->kind = RecordKind::kValid;
        out->key = event_.user_id;
        out->event_time_ms = event_.event_time_ms;
        max_event_time_ms_ = std::max(max_event_time_ms_, event_.event_time_ms);
      } else {
        out->kind = RecordKind::kMalformed;
        out->key.clear();
        out->event_time_ms = 0;
      }
      return true;
    }
    if (in_.bad()) {
      return absl::DataLossError(absl::StrCat("--from-file: read error in ", path_,
                                              " after line ", line_number_));
    }
    return false;
  }

  int64_t max_event_time_ms() const { return max_event_time_ms_; }

 private:
  std::ifstream in_;
  std::string path_;
  std::string line_;
  uint64_t line_number_ = 0;
  // The shipped schema (conf/features.yaml): the generator writes that contract.
  EventParser parser_{DefaultFeatureDefinition().input};
  Event event_;
  int64_t max_event_time_ms_ = 0;
};


int Run(int argc, char** argv) {
  absl::StatusOr<SplitArgs> split = ExtractDynamicProperties(argc, argv);
  if (!split.ok()) return Fail(split.status());

  Flags f;
  CLI::App app{
      "Produces synthetic e-commerce events (or replays a JSON-lines file) to a Kafka\n"
      "topic, in the Slipstream event contract:\n"
      "  {\"event_time\": \"2024-01-01T10:00:00.250Z\", \"event_type\": \"view\", "
      "\"user_id\": \"111\", \"price\": 29.99}\n"
      "Output is deterministic for a given --seed and --event-time-start.",
      kProgram};
  app.footer(
      "Configuration:\n"
      "  --config FILE          Flink-style application.properties\n"
      "  -D key=value, -Dkey=value\n"
      "                         set/override a configuration key (repeatable)\n"
      "  Reads kafka.bootstrap.servers and kafka.topic; every other kafka.* key is passed\n"
      "  to librdkafka (e.g. -Dkafka.security.protocol=SSL). --help-config lists all keys.\n"
      "Durations use Flink's format: \"500 ms\", \"5 s\", \"10 min\", \"2 h\", \"1 d\" (bare number = ms).\n"
      "Exit status: 0 ok, 1 error or failed deliveries, 130 interrupted.");
  app.add_option("--config", f.config_path, "application.properties file")->check(CLI::ExistingFile);
  app.add_flag("--help-config", f.help_config, "print every configuration key and exit");
  app.add_option("--topic", f.topic, "topic to produce to (overrides kafka.topic)");
  auto* users = app.add_option("--users", f.users, "number of distinct users (ids \"1\"..\"N\")")
                    ->capture_default_str()->check(AtLeast(1));
  auto* prefix = app.add_option("--user-prefix", f.user_prefix, "prefix for user ids (e.g. \"u\" gives \"u1\")");
  auto* count = app.add_option("--count", f.count,
                               "records to produce, 0 = unlimited (with --from-file: default whole file)")
                    ->capture_default_str()->check(AtLeast(0));
  app.add_option("--duration", f.duration, "wall-clock limit, 0 = none")->capture_default_str();
  app.add_option("--rate", f.rate, "records per second, 0 = as fast as possible")
      ->capture_default_str()->check(AtLeast(0));
  auto* start = app.add_option("--event-time-start", f.event_time_start,
                               "ISO-8601 base time of the first record (default: now - count * "
                               "step, so the stream ends near now; now if --count 0)");
  auto* step = app.add_option("--event-time-step", f.event_time_step,
                              "event-time advance per record (the stream's speed)")
                   ->capture_default_str();
  auto* jitter = app.add_option("--jitter", f.jitter,
                                "max out-of-orderness: each time is base - uniform[0, jitter]")
                     ->capture_default_str();
  auto* late_fraction = app.add_option("--late-fraction", f.late_fraction,
                                       "fraction of late records (time = base - late-by)")
                            ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  auto* late_by = app.add_option("--late-by", f.late_by, "how far behind late records are")
                      ->capture_default_str();
  auto* malformed = app.add_option("--malformed-fraction", f.malformed_fraction,
                                   "fraction of records violating the contract")
                        ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  auto* seed = app.add_option("--seed", f.seed, "random seed")->capture_default_str();
  app.add_option("--from-file", f.from_file,
                 "replay a JSON-lines file in order instead of generating")
      ->check(CLI::ExistingFile)
      ->excludes(users)->excludes(prefix)->excludes(start)->excludes(step)->excludes(jitter)
      ->excludes(late_fraction)->excludes(late_by)->excludes(malformed)->excludes(seed);
  app.add_option("--partitions", f.partitions,
                 "create the topic with N partitions if it does not exist")
      ->check(AtLeast(1));
  app.add_option("--replication", f.replication, "replication factor for --partitions")
      ->capture_default_str()->check(AtLeast(1));
  app.add_option("--flush-watermark", f.flush_watermark,
                 "after the records, send one event with this time (ISO-8601, e.g. "
                 "9999-01-01T00:00:00Z, or +DURATION after the last base time) to every "
                 "partition, user_id \"__watermark__\", so event-time windows close");
  app.add_option("--partition-for-workers", f.partition_for_workers,
                 "instead of Kafka's keyed partitioning, write each user's events to a partition "
                 "read by the worker that owns the user's key group in a cluster of N workers "
                 "(partition p is read by worker p % N; key groups: pipeline.max-parallelism, "
                 "split into contiguous ranges), so no event crosses between workers; flush "
                 "records get a user id (\"__watermark__\", \"__watermark__1\", ...) owned by "
                 "their partition's reader. For benchmarks of the shuffle")
      ->check(AtLeast(1));
  app.add_flag("-q,--quiet", f.quiet, "no progress lines on stderr");
  app.add_flag("-v,--verbose", f.verbose, "print librdkafka's log lines");

  std::vector<const char*> cli_argv;
  for (const std::string& arg : split->remaining) cli_argv.push_back(arg.c_str());
  try {
    app.parse(static_cast<int>(cli_argv.size()), cli_argv.data());
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help or "error: ..." as CLI11 does
    return code == 0 ? 0 : 1;
  }
  if (f.help_config) {
    std::fputs(ConfigHelpText().c_str(), stdout);
    return 0;
  }

  // --- Configuration --------------------------------------------------------
  absl::StatusOr<Config> config = Config::Load(f.config_path, split->overrides);
  if (!config.ok()) return Fail(config.status());
  std::string topic = f.topic;
  if (topic.empty()) {
    absl::StatusOr<std::string> configured = config->GetString("kafka.topic");
    if (!configured.ok()) return Fail(configured.status());
    topic = *configured;
  }
  if (topic.empty()) return Fail("kafka.topic: not set (use --topic or -Dkafka.topic=NAME)");

  absl::StatusOr<int64_t> duration_ms = DurationFlag("--duration", f.duration);
  if (!duration_ms.ok()) return Fail(duration_ms.status());

  std::map<std::string, std::string> kafka = {
      {"linger.ms", "5"},
      {"batch.num.messages", "10000"},
      {"compression.codec", "none"},
      {"queue.buffering.max.messages", "1000000"},
      {"acks", "all"},
      // Retries (e.g. right after the topic is created, before its leader is
      // known) must not reorder records within a partition: the stream's
      // out-of-orderness bound is part of what the generator promises.
      {"enable.idempotence", "true"},
      // Same partition for a key as the Java client's default partitioner.
      {"partitioner", "murmur2_random"},
      // A missing topic is reported (or created with --partitions), never
      // silently auto-created with the broker's default partition count.
      {"allow.auto.create.topics", "false"},
  };
  for (auto& [key, value] : config->KafkaClientProperties()) kafka[key] = value;
  kafka.erase("group.id");  // consumer-only; librdkafka would warn
  if (kafka["bootstrap.servers"].empty()) {
    absl::StatusOr<std::string> servers = config->GetString("kafka.bootstrap.servers");
    if (!servers.ok()) return Fail(servers.status());
    kafka["bootstrap.servers"] = *servers;
  }
  const std::string servers = kafka["bootstrap.servers"];
  if (servers.empty()) return Fail("kafka.bootstrap.servers: not set");

  // --- Record source -------------------------------------------------------
  RecordSource next;
  std::unique_ptr<FileSource> file;
  std::unique_ptr<EventGenerator> generator;
  int64_t step_ms = 0;
  int64_t limit = f.count;
  if (!f.from_file.empty()) {
    absl::StatusOr<std::unique_ptr<FileSource>> opened = FileSource::Open(f.from_file);
    if (!opened.ok()) return Fail(opened.status());
    file = std::move(*opened);
    if (count->count() == 0) limit = 0;  // whole file unless --count is given
    next = [&file](GeneratedRecord* r) { return file->Next(r); };
  } else {
    GeneratorOptions options;
    options.num_users = f.users;
    options.user_id_prefix = f.user_prefix;
    options.late_fraction = f.late_fraction;
    options.malformed_fraction = f.malformed_fraction;
    options.seed = f.seed;
    for (auto [flag, text, out] :
         {std::tuple{"--event-time-step", &f.event_time_step, &options.event_time_step_ms},
          std::tuple{"--jitter", &f.jitter, &options.max_jitter_ms},
          std::tuple{"--late-by", &f.late_by, &options.late_by_ms}}) {
      absl::StatusOr<int64_t> ms = DurationFlag(flag, *text);
      if (!ms.ok()) return Fail(ms.status());
      *out = *ms;
    }
    step_ms = options.event_time_step_ms;
    if (!f.event_time_start.empty()) {
      absl::StatusOr<int64_t> ms = ParseIso8601Millis(f.event_time_start);
      if (!ms.ok()) {
        return Fail(absl::StrCat("--event-time-start: invalid ISO-8601 time '",
                                 f.event_time_start, "': ", ms.status().message()));
      }
      options.event_time_start_ms = *ms;
    } else {
      options.event_time_start_ms = slipstream::Clock::Real().WallMs() - f.count * options.event_time_step_ms;
    }
    absl::StatusOr<EventGenerator> created = EventGenerator::Create(options);
    if (!created.ok()) return Fail(created.status());
    generator = std::make_unique<EventGenerator>(std::move(*created));
    next = [&generator](GeneratedRecord* r) -> absl::StatusOr<bool> {
      generator->Next(r);
      return true;
    };
  }
  // Validate the watermark's syntax before producing anything; a relative
  // one is resolved after the last record.
  int64_t watermark_offset_ms = -1;
  int64_t watermark_ms = -1;
  if (!f.flush_watermark.empty()) {
    if (f.flush_watermark[0] == '+') {
      absl::StatusOr<int64_t> ms = DurationFlag("--flush-watermark", f.flush_watermark.substr(1));
      if (!ms.ok()) return Fail(ms.status());
      watermark_offset_ms = *ms;
    } else {
      absl::StatusOr<int64_t> ms = ParseIso8601Millis(f.flush_watermark);
      if (!ms.ok()) {
        return Fail(absl::StrCat("--flush-watermark: invalid ISO-8601 time '", f.flush_watermark,
                                 "': ", ms.status().message()));
      }
      watermark_ms = *ms;
    }
  }

  // --- Kafka ----------------------------------------------------------------
  absl::StatusOr<std::unique_ptr<KafkaProducer>> created = KafkaProducer::Create(kafka, f.verbose);
  if (!created.ok()) return Fail(created.status());
  KafkaProducer& producer = **created;

  absl::StatusOr<int> partitions = producer.TopicPartitions(topic, kBrokerTimeoutMs);
  if (!partitions.ok()) {
    return Fail(absl::StrCat("kafka.bootstrap.servers: no broker reachable at ", servers,
                             " after ", kBrokerTimeoutMs / 1000, " s (",
                             partitions.status().message(), ")"));
  }
  if (*partitions == 0) {
    if (f.partitions == 0) {
      return Fail(absl::StrCat("kafka.topic: topic '", topic,
                               "' does not exist (use --partitions N to create it)"));
    }
    if (absl::Status s = producer.CreateTopic(topic, f.partitions, f.replication,
                                              kCreateTopicTimeoutMs);
        !s.ok()) {
      return Fail(s);
    }
    partitions = producer.TopicPartitions(topic, kBrokerTimeoutMs);
    if (!partitions.ok()) return Fail(partitions.status());
    if (!f.quiet) {
      std::fprintf(stderr, "%s: created topic %s with %d partitions\n", kProgram, topic.c_str(),
                   *partitions);
    }
  } else if (f.partitions != 0 && f.partitions != *partitions && !f.quiet) {
    std::fprintf(stderr, "%s: topic %s already exists with %d partitions; leaving it\n",
                 kProgram, topic.c_str(), *partitions);
  }
  if (absl::Status s = producer.OpenTopic(topic); !s.ok()) return Fail(s);

  std::unique_ptr<WorkerLocalPartitioner> local_partitioner;
  if (f.partition_for_workers > 0) {
    absl::StatusOr<int64_t> max_parallelism = config->GetInt("pipeline.max-parallelism");
    if (!max_parallelism.ok()) return Fail(max_parallelism.status());
    absl::StatusOr<WorkerLocalPartitioner> created_partitioner = WorkerLocalPartitioner::Create(
        *partitions, f.partition_for_workers, static_cast<int>(*max_parallelism));
    if (!created_partitioner.ok()) {
      return Fail(absl::StrCat("--partition-for-workers: ", created_partitioner.status().message()));
    }
    local_partitioner = std::make_unique<WorkerLocalPartitioner>(std::move(*created_partitioner));
    if (!f.quiet) {
      std::fprintf(stderr,
                   "%s: partitioning for %d workers: each key to a partition of the worker that "
                   "owns its key group (max parallelism %lld)\n",
                   kProgram, f.partition_for_workers, static_cast<long long>(*max_parallelism));
    }
  }

  // --- Produce ---------------------------------------------------------------
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

  int64_t by_kind[3] = {0, 0, 0};
  int64_t sent = 0;
  GeneratedRecord record;
  const Clock::time_point t0 = Clock::now();
  const Clock::time_point deadline =
      *duration_ms > 0 ? t0 + std::chrono::milliseconds(*duration_ms) : Clock::time_point::max();
  Clock::time_point next_report = t0 + std::chrono::seconds(1);
  int64_t sent_at_last_report = 0;
  Clock::time_point last_report = t0;

  auto report = [&](Clock::time_point now) {
    const double interval = std::chrono::duration<double>(now - last_report).count();
    std::fprintf(stderr, "%s: %lld records sent (%.0f records/s), %lld delivered, %lld errors\n",
                 kProgram, static_cast<long long>(sent),
                 interval > 0 ? static_cast<double>(sent - sent_at_last_report) / interval : 0.0,
                 static_cast<long long>(producer.delivered()),
                 static_cast<long long>(producer.failed()));
    sent_at_last_report = sent;
    last_report = now;
    next_report = now + std::chrono::seconds(1);
  };

  while (!g_stop.load(std::memory_order_relaxed) && (limit == 0 || sent < limit)) {
    // Checking the clock costs ~20 ns; unthrottled, do it every 1024 records.
    if (f.rate > 0 || (sent & 1023) == 0) {
      Clock::time_point now = Clock::now();
      producer.Poll(0);  // serve delivery reports
      if (now >= deadline) break;
      if (!f.quiet && now >= next_report) report(now);
      if (f.rate > 0) {
        // Sleep only when more than 1 ms ahead: bursts of <= 1 ms keep high
        // rates precise without a syscall per record.
        const auto due = t0 + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(sent / f.rate));
        while (due - now > std::chrono::milliseconds(1) && !g_stop.load()) {
          const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(due - now);
          producer.Poll(static_cast<int>(std::min<int64_t>(wait.count(), 100)));
          now = Clock::now();
          if (!f.quiet && now >= next_report) report(now);
        }
        if (now >= deadline || g_stop.load()) break;
      }
    }
    absl::StatusOr<bool> more = next(&record);
    if (!more.ok()) return Fail(more.status());
    if (!*more) break;
    const int32_t partition = local_partitioner && !record.key.empty()
                                  ? local_partitioner->PartitionFor(record.key)
                                  : KafkaProducer::kAnyPartition;
    absl::Status s = producer.Produce(record.key, record.value, partition, &g_stop);
    if (absl::IsCancelled(s)) break;
    if (!s.ok()) return Fail(s);
    ++sent;
    ++by_kind[static_cast<int>(record.kind)];
  }

  if (absl::Status s = producer.Flush(kFlushTimeoutMs); !s.ok()) return Fail(s);

  if (!f.flush_watermark.empty() && g_signal.load() == 0) {
    if (watermark_offset_ms >= 0) {
      const int64_t last_base =
          generator ? generator->next_base_time_ms() - step_ms : file->max_event_time_ms();
      watermark_ms = last_base + watermark_offset_ms;
    }
    std::string value;
    for (int p = 0; p < *partitions; ++p) {
      std::string user = kWatermarkUserId;
      if (local_partitioner) {
        absl::StatusOr<std::string> local = local_partitioner->LocalKeyFor(p, kWatermarkUserId);
        if (!local.ok()) return Fail(local.status());
        user = *std::move(local);
      }
      value.clear();
      AppendEventJson(watermark_ms, "view", user, 0.0, &value);
      if (absl::Status s = producer.Produce(user, value, p, &g_stop); !s.ok()) {
        return Fail(s);
      }
    }
    if (absl::Status s = producer.Flush(kFlushTimeoutMs); !s.ok()) return Fail(s);
    if (!f.quiet) {
      std::fprintf(stderr, "%s: flushed watermark %s to all %d partitions of %s\n", kProgram,
                   FormatIso8601Millis(watermark_ms).c_str(), *partitions, topic.c_str());
    }
  }

  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("produced %lld records (valid %lld, late %lld, malformed %lld) to topic %s in "
              "%.2f s (%.0f records/s)\n",
              static_cast<long long>(sent), static_cast<long long>(by_kind[0]),
              static_cast<long long>(by_kind[1]), static_cast<long long>(by_kind[2]),
              topic.c_str(), seconds, seconds > 0 ? static_cast<double>(sent) / seconds : 0.0);
  std::fflush(stdout);

  if (producer.failed() > 0) {
    return Fail(absl::StrCat(producer.failed(), " records failed delivery (first error: ",
                             producer.first_delivery_error(), ")"));
  }
  if (g_signal.load() != 0) {
    std::fprintf(stderr, "%s: interrupted by signal %d\n", kProgram, g_signal.load());
    return 130;
  }
  return 0;
}

}  // namespace
}  // namespace slipstream

int main(int argc, char** argv) { return slipstream::Run(argc, argv); }
