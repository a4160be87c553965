// Prometheus text exposition (format 0.0.4) for the /metrics endpoints of the
// coordinator and the workers, and the latency histogram they share. Hand
// written because Debian has no Prometheus C++ client; the format is small:
//   # HELP name text
//   # TYPE name counter|gauge|histogram
//   name{label="value"} 42
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace slipstream {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// Cumulative-bucket histogram of durations in milliseconds. Not thread-safe:
// guard it with the owner's lock and copy it out for rendering.
struct LatencyHistogram {
  static constexpr std::array<double, 12> kBoundsMs = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};
  std::array<int64_t, kBoundsMs.size()> bucket_counts{};  // per bucket (not cumulative)
  int64_t count = 0;  // also the +Inf bucket
  double sum_ms = 0;

  void Observe(double ms);
};

class PrometheusWriter {
 public:
  // Families must be written together: HELP/TYPE are emitted on the first
  // sample of a name.
  void Counter(std::string_view name, std::string_view help, double value, const MetricLabels& labels = {});
  void Gauge(std::string_view name, std::string_view help, double value, const MetricLabels& labels = {});
  // Renders `histogram` in seconds (Prometheus base unit), with `_bucket`,
  // `_sum` and `_count` series.
  void Histogram(std::string_view name, std::string_view help, const LatencyHistogram& histogram,
                 const MetricLabels& labels = {});
  // The same for a histogram with other bounds (e.g. one received in a
  // heartbeat): per-bucket counts under ascending `bounds_ms`, `count` all
  // observations (the +Inf bucket).
  void Histogram(std::string_view name, std::string_view help, std::span<const double> bounds_ms,
                 std::span<const int64_t> bucket_counts, int64_t count, double sum_ms,
                 const MetricLabels& labels = {});

  const std::string& text() const { return text_; }

 private:
  void Header(std::string_view name, std::string_view help, std::string_view type);
  void Sample(std::string_view name, const MetricLabels& labels, double value);

  std::string text_;
  std::string last_family_;
};

// Estimates the q-quantile (0 < q < 1), in ms, of a histogram with per-bucket
// counts under ascending `bounds_ms` and `count` observations in all, as
// Prometheus' histogram_quantile() does: linear interpolation inside the
// bucket that holds it (the first bucket starts at 0), the last bound when it
// lies above every bound, 0 when the histogram is empty.
double EstimateQuantileMs(std::span<const double> bounds_ms, std::span<const int64_t> bucket_counts, int64_t count,
                          double q);

// Escapes a label value (backslash, double quote, newline).
std::string EscapeLabelValue(std::string_view value);

}  // namespace slipstream
