#include "common/prometheus.h"

#include <charconv>
#include <cmath>

namespace slipstream {

void LatencyHistogram::Observe(double ms) {
  for (size_t i = 0; i < kBoundsMs.size(); ++i) {
    if (ms <= kBoundsMs[i]) {
      ++bucket_counts[i];
      break;
    }
  }
  ++count;
  sum_ms += ms;
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

namespace {

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  // Integers print exactly (counters are int64 underneath).
  if (value == std::floor(value) && std::fabs(value) < 9.0e15) {
    auto r = std::to_chars(buf, buf + sizeof(buf), static_cast<int64_t>(value));
    return std::string(buf, r.ptr);
  }
  auto r = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, r.ptr);
}

}  // namespace

void PrometheusWriter::Header(std::string_view name, std::string_view help, std::string_view type) {
  if (last_family_ == name) return;
  last_family_ = std::string(name);
  text_ += "# HELP ";
  text_ += name;
  text_ += ' ';
  text_ += help;
  text_ += "\n# TYPE ";
  text_ += name;
  text_ += ' ';
  text_ += type;
  text_ += '\n';
}

void PrometheusWriter::Sample(std::string_view name, const MetricLabels& labels, double value) {
  text_ += name;
  if (!labels.empty()) {
    text_ += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) text_ += ',';
      text_ += labels[i].first;
      text_ += "=\"";
      text_ += EscapeLabelValue(labels[i].second);
      text_ += '"';
    }
    text_ += '}';
  }
  text_ += ' ';
  text_ += FormatValue(value);
  text_ += '\n';
}

void PrometheusWriter::Counter(std::string_view name, std::string_view help, double value,
                               const MetricLabels& labels) {
  Header(name, help, "counter");
  Sample(name, labels, value);
}

void PrometheusWriter::Gauge(std::string_view name, std::string_view help, double value, const MetricLabels& labels) {
  Header(name, help, "gauge");
  Sample(name, labels, value);
}

void PrometheusWriter::Histogram(std::string_view name, std::string_view help, const LatencyHistogram& histogram,
                                 const MetricLabels& labels) {
  Histogram(name, help, LatencyHistogram::kBoundsMs, histogram.bucket_counts, histogram.count, histogram.sum_ms,
            labels);
}

void PrometheusWriter::Histogram(std::string_view name, std::string_view help, std::span<const double> bounds_ms,
                                 std::span<const int64_t> bucket_counts, int64_t count, double sum_ms,
                                 const MetricLabels& labels) {
  Header(name, help, "histogram");
  const std::string bucket = std::string(name) + "_bucket";
  int64_t cumulative = 0;
  for (size_t i = 0; i < bounds_ms.size(); ++i) {
    if (i < bucket_counts.size()) cumulative += bucket_counts[i];
    MetricLabels with_le = labels;
    with_le.emplace_back("le", FormatValue(bounds_ms[i] / 1000.0));
    Sample(bucket, with_le, static_cast<double>(cumulative));
  }
  MetricLabels inf = labels;
  inf.emplace_back("le", "+Inf");
  Sample(bucket, inf, static_cast<double>(count));
  Sample(std::string(name) + "_sum", labels, sum_ms / 1000.0);
  Sample(std::string(name) + "_count", labels, static_cast<double>(count));
}

double EstimateQuantileMs(std::span<const double> bounds_ms, std::span<const int64_t> bucket_counts, int64_t count,
                          double q) {
  if (count <= 0 || bounds_ms.empty()) return 0;
  const double rank = q * static_cast<double>(count);
  double below = 0;  // observations in the buckets before bucket i
  for (size_t i = 0; i < bounds_ms.size() && i < bucket_counts.size(); ++i) {
    const double in_bucket = static_cast<double>(bucket_counts[i]);
    if (in_bucket > 0 && below + in_bucket >= rank) {
      const double lower = i == 0 ? 0 : bounds_ms[i - 1];
      return lower + (bounds_ms[i] - lower) * (rank - below) / in_bucket;
    }
    below += in_bucket;
  }
  return bounds_ms.back();
}

}  // namespace slipstream
