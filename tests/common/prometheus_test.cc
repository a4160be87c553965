// The Prometheus text format: HELP/TYPE once per family, labels escaped,
// histogram buckets cumulative in seconds with +Inf, _sum and _count.
#include "common/prometheus.h"

#include <gtest/gtest.h>

namespace slipstream {
namespace {

TEST(Prometheus, CountersAndGaugesWithLabels) {
  PrometheusWriter w;
  w.Counter("x_total", "An x.", 3, {{"worker", "a"}});
  w.Counter("x_total", "An x.", 4, {{"worker", "b\"c\\\n"}});
  w.Gauge("y", "A y.", 1.5);
  EXPECT_EQ(w.text(),
            "# HELP x_total An x.\n"
            "# TYPE x_total counter\n"
            "x_total{worker=\"a\"} 3\n"
            "x_total{worker=\"b\\\"c\\\\\\n\"} 4\n"
            "# HELP y A y.\n"
            "# TYPE y gauge\n"
            "y 1.5\n");
}

TEST(Prometheus, HistogramIsCumulativeInSeconds) {
  LatencyHistogram h;
  h.Observe(0.5);    // le 0.001
  h.Observe(3);      // le 0.005
  h.Observe(3);      // le 0.005
  h.Observe(9000);   // only +Inf
  PrometheusWriter w;
  w.Histogram("lat_seconds", "Latency.", h, {{"w", "1"}});
  const std::string& t = w.text();
  EXPECT_NE(t.find("# TYPE lat_seconds histogram\n"), std::string::npos) << t;
  EXPECT_NE(t.find("lat_seconds_bucket{w=\"1\",le=\"0.001\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("lat_seconds_bucket{w=\"1\",le=\"0.002\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("lat_seconds_bucket{w=\"1\",le=\"0.005\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("lat_seconds_bucket{w=\"1\",le=\"5\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("lat_seconds_bucket{w=\"1\",le=\"+Inf\"} 4\n"), std::string::npos) << t;
  EXPECT_NE(t.find("lat_seconds_count{w=\"1\"} 4\n"), std::string::npos) << t;
  EXPECT_NE(t.find("lat_seconds_sum{w=\"1\"} 9.0065\n"), std::string::npos) << t;
}

}  // namespace
}  // namespace slipstream
