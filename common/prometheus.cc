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
  Header(name, help, "histogram");
  const std::string bucket = std::string(name) + "_bucket";
  int64_t cumulative = 0;
  for (size_t i = 0; i < LatencyHistogram::kBoundsMs.size(); ++i) {
    cumulative += histogram.bucket_counts[i];
    MetricLabels with_le = labels;
    with_le.emplace_back("le", FormatValue(LatencyHistogram::kBoundsMs[i] / 1000.0));
    Sample(bucket, with_le, static_cast<double>(cumulative));
  }
  MetricLabels inf = labels;
  inf.emplace_back("le", "+Inf");
  Sample(bucket, inf, static_cast<double>(histogram.count));
  Sample(std::string(name) + "_sum", labels, histogram.sum_ms / 1000.0);
  Sample(std::string(name) + "_count", labels, static_cast<double>(histogram.count));
}

}  // namespace slipstream
