// The Prometheus text format: HELP/TYPE once per family, labels escaped,
// histogram buckets cumulative in seconds with +Inf, _sum and _count.
#include "common/prometheus.h"

#include <gtest/gtest.h>

#include <vector>

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

TEST(Prometheus, QuantileInterpolatesInsideItsBucketLikeHistogramQuantile) {
  // 10 observations: 4 in (0, 1], 6 in (2, 5]. Worked by hand with
  // Prometheus' rule: rank q*count, linear within the bucket holding it.
  const std::vector<double> bounds = {1, 2, 5};
  const std::vector<int64_t> counts = {4, 0, 6};
  EXPECT_DOUBLE_EQ(EstimateQuantileMs(bounds, counts, 10, 0.2), 0.5);   // rank 2 of 4 in (0, 1]
  EXPECT_DOUBLE_EQ(EstimateQuantileMs(bounds, counts, 10, 0.4), 1.0);   // rank 4: the top of (0, 1]
  EXPECT_DOUBLE_EQ(EstimateQuantileMs(bounds, counts, 10, 0.7), 3.5);   // rank 7: 3rd of 6 in (2, 5]
  EXPECT_NEAR(EstimateQuantileMs(bounds, counts, 10, 0.99), 4.95, 1e-9);  // rank 9.9: 2 + 3 * 5.9 / 6
  // Two observations above every bound: quantiles past the bounds are the last bound.
  EXPECT_DOUBLE_EQ(EstimateQuantileMs(bounds, counts, 12, 0.99), 5.0);
  EXPECT_DOUBLE_EQ(EstimateQuantileMs(bounds, counts, 0, 0.5), 0.0);  // empty
}

TEST(Prometheus, HistogramWithItsOwnBounds) {
  PrometheusWriter w;
  const std::vector<double> bounds = {10, 100};
  const std::vector<int64_t> counts = {2, 3};
  w.Histogram("h_seconds", "H.", bounds, counts, 7, 1500, {{"worker_id", "w1"}});
  EXPECT_EQ(w.text(),
            "# HELP h_seconds H.\n"
            "# TYPE h_seconds histogram\n"
            "h_seconds_bucket{worker_id=\"w1\",le=\"0.01\"} 2\n"
            "h_seconds_bucket{worker_id=\"w1\",le=\"0.1\"} 5\n"
            "h_seconds_bucket{worker_id=\"w1\",le=\"+Inf\"} 7\n"
            "h_seconds_sum{worker_id=\"w1\"} 1.5\n"
            "h_seconds_count{worker_id=\"w1\"} 7\n");
}

}  // namespace
}  // namespace slipstream
