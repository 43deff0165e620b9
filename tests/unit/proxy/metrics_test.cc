// tests/unit/proxy/metrics_test.cc — the pure parts of proxy/metrics: bounded label slots,
// histogram buckets, the fault taxonomy, and the rendered Prometheus text.
#include "proxy/metrics.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace rw {
namespace {

TEST(MetricLabels, SlotsAreStableThenOtherPastTheCap) {
    auto labels = std::make_unique<MetricLabels>();
    EXPECT_EQ(labels->slot("gpt-4o"), 0u);
    EXPECT_EQ(labels->slot("claude"), 1u);
    EXPECT_EQ(labels->slot("gpt-4o"), 0u);
    for (uint32_t i = 2; i < metric_labels_max; i++) {
        EXPECT_EQ(labels->slot("model-" + std::to_string(i)), i);
    }
    EXPECT_EQ(labels->slot("one-too-many"), MetricLabels::other);
    EXPECT_EQ(labels->slot("claude"), 1u);
    EXPECT_EQ(labels->value(1), "claude");
    EXPECT_EQ(labels->published_count(), metric_labels_max);
    const std::string long_name(200, 'm');  // Truncated, and the truncation is its value.
    auto fresh = std::make_unique<MetricLabels>();
    EXPECT_EQ(fresh->slot(long_name), 0u);
    EXPECT_EQ(fresh->value(0).size(), metric_label_bytes_max);
    EXPECT_EQ(fresh->slot(long_name), 0u);
}

TEST(Histogram, ObservationsLandInTheirBucket) {
    Histogram histogram;
    histogram.observe(300'000, ttft_bounds_us);      // (0.25, 0.5]
    histogram.observe(250'000, ttft_bounds_us);      // le=0.25 is inclusive
    histogram.observe(999'000'000, ttft_bounds_us);  // +Inf
    EXPECT_EQ(histogram.buckets[2].get(), 1u);
    EXPECT_EQ(histogram.buckets[3].get(), 1u);
    EXPECT_EQ(histogram.buckets[std::size(ttft_bounds_us)].get(), 1u);
    EXPECT_EQ(histogram.sum_us.get(), 999'550'000u);
}

TEST(FaultClass, ClosedTaxonomy) {
    EXPECT_EQ(fault_class(Fault::none), "");
    EXPECT_EQ(fault_class(Fault::client_invalid_body), "client");
    EXPECT_EQ(fault_class(Fault::client_gone), "client");
    EXPECT_EQ(fault_class(Fault::client_rate_limited), "policy");
    EXPECT_EQ(fault_class(Fault::client_quota_exceeded), "policy");
    EXPECT_EQ(fault_class(Fault::client_model_not_allowed), "policy");
    EXPECT_EQ(fault_class(Fault::upstream_timeout), "provider");
    EXPECT_EQ(fault_class(Fault::upstream_answered_error), "provider");
    EXPECT_EQ(fault_class(Fault::local_no_channel), "gateway");
    for (uint32_t f = 1; f < static_cast<uint32_t>(Fault::count_); f++) {
        EXPECT_FALSE(fault_class(static_cast<Fault>(f)).empty()) << f;
    }
}

TEST(GatewayMetricsRender, HistogramsAreCumulativeInSecondsAndTokensMerged) {
    auto metrics = std::make_unique<GatewayMetrics>();
    auto shared = std::make_unique<MetricsShared>();
    metrics_observe(*metrics, *shared,
                    {Endpoint::chat, 400'000, 300'000, 300'000, "gpt-4o", 3, 10, 2, 1'500'000'000});
    metrics_observe(*metrics, *shared, {Endpoint::chat, 40'000, 39'950, 0, "gpt-4o", 3, 5, 1, 25});
    GatewayMetrics* shards[shards_max] = {metrics.get()};
    std::string text(256 * 1024, '\0');
    text.resize(gateway_metrics_render(text.data(), uint32_t(text.size()), shards, 1, shared.get(),
                                       nullptr));
    const auto has = [&](const std::string& line) {
        return text.find(line + "\n") != std::string::npos;
    };
    const std::string chat = "endpoint=\"/v1/chat/completions\"";
    EXPECT_TRUE(has("ringway_upstream_ttft_seconds_bucket{" + chat + ",le=\"0.25\"} 0")) << text;
    EXPECT_TRUE(has("ringway_upstream_ttft_seconds_bucket{" + chat + ",le=\"0.5\"} 1"));
    EXPECT_TRUE(has("ringway_upstream_ttft_seconds_count{" + chat + "} 1"));
    EXPECT_TRUE(has("ringway_request_duration_seconds_count{" + chat + "} 2"));
    EXPECT_TRUE(has("ringway_request_duration_seconds_sum{" + chat + "} 0.44"));
    // Overheads 100 ms and 50 us: le=0.00005 holds one, le=0.1 both.
    EXPECT_TRUE(has("ringway_gateway_overhead_seconds_bucket{" + chat + ",le=\"0.00005\"} 1"));
    EXPECT_TRUE(has("ringway_gateway_overhead_seconds_bucket{" + chat + ",le=\"0.1\"} 2"));
    EXPECT_TRUE(has("ringway_model_tokens_total{model=\"gpt-4o\",type=\"prompt\"} 15"));
    EXPECT_TRUE(has("ringway_channel_tokens_total{channel=\"3\",type=\"completion\"} 3"));
    EXPECT_TRUE(has("ringway_model_tokens_total{model=\"other\",type=\"prompt\"} 0"));
    EXPECT_TRUE(has("ringway_model_cost_usd_total{model=\"gpt-4o\"} 1.500000025")) << text;
    EXPECT_TRUE(has("ringway_channel_cost_usd_total{channel=\"3\"} 1.500000025"));
    EXPECT_TRUE(has("ringway_model_cost_usd_total{model=\"other\"} 0.000000000"));
    // Series of what never happened are left out: an endpoint without observations, a
    // fault that never ended a request.
    EXPECT_EQ(text.find("endpoint=\"/v1/embeddings\""), std::string::npos);
    EXPECT_EQ(text.find("fault=\"client_rate_limited\""), std::string::npos);
    metrics->faults[static_cast<uint32_t>(Fault::client_rate_limited)].add();
    text.assign(256 * 1024, '\0');
    text.resize(gateway_metrics_render(text.data(), uint32_t(text.size()), shards, 1, shared.get(),
                                       nullptr));
    EXPECT_TRUE(
        has("ringway_request_errors_total{class=\"policy\",fault=\"client_rate_limited\"} 1"));
}

}  // namespace
}  // namespace rw
