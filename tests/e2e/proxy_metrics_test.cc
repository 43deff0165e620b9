// tests/e2e/proxy_metrics_test.cc — the metrics worth graphing, end to end: histogram
// counts equal the proxied requests, a 300 ms first event lands in the (0.25, 0.5] TTFT
// bucket while the gateway's own overhead stays in the small buckets, errors by class,
// tokens by model and channel, and what one scrape costs.
#include <chrono>
#include <cstdio>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

constexpr std::string_view chat_path = "/v1/chat/completions";

class MetricsTest : public ::testing::Test {
protected:
    void SetUp() override {
        start_mock(mock_);
        gateway_.start({{"RINGWAY_SHARDS", "2"}});
        ChannelSpec spec;
        spec.name = "main";
        spec.mock_port = mock_.port();
        spec.models = {"gpt-4o-mini"};
        channel_id_ = gateway_.create_channel(spec);
        gateway_.wait_channels_routable();
        key_ = gateway_.create_key(R"({"name":"app"})");
    }

    // A series of the text, 0 when absent.
    static double value(const std::string& text, std::string_view name,
                        const std::map<std::string, std::string>& labels) {
        return metric_value(text, name, labels).value_or(0);
    }
    static double chat(const std::string& text, std::string_view name, std::string le = {}) {
        std::map<std::string, std::string> labels{{"endpoint", std::string(chat_path)}};
        if (!le.empty()) {
            labels["le"] = le;
        }
        return value(text, name, labels);
    }

    MockUpstream mock_;
    Gateway gateway_;
    int64_t channel_id_ = 0;
    Key key_;
};

TEST_F(MetricsTest, HistogramCountsEqualProxiedRequests) {
    const std::string before = gateway_.metrics();
    constexpr int whole = 5;
    constexpr int streamed = 3;
    for (int i = 0; i < whole + streamed; i++) {
        const Response response = gateway_.chat(key_, chat_body("gpt-4o-mini", i >= whole));
        ASSERT_EQ(response.status, 200) << response.body;
    }
    const std::string after = gateway_.metrics();
    const double records = metric_sum(after, "ringway_usage_records_total") -
                           metric_sum(before, "ringway_usage_records_total");
    EXPECT_EQ(records, whole + streamed);
    for (const char* name :
         {"ringway_request_duration_seconds_count", "ringway_gateway_overhead_seconds_count"}) {
        EXPECT_EQ(chat(after, name) - chat(before, name), whole + streamed) << name;
        // The +Inf bucket is the count; buckets are cumulative.
        const std::string bucket =
            std::string(name).replace(std::string(name).size() - 6, 6, "_bucket");
        EXPECT_EQ(chat(after, bucket, "+Inf"), chat(after, name)) << bucket;
    }
    EXPECT_EQ(chat(after, "ringway_upstream_ttft_seconds_count") -
                  chat(before, "ringway_upstream_ttft_seconds_count"),
              streamed);
    // Tokens by model and by channel add up to what the usage rows charged.
    const std::vector<Row> rows =
        wait_usage_rows(gateway_.db_path(), key_.id, whole + streamed, Deadline::after_ms(10000));
    double prompt = 0;
    for (const Row& row : rows) {
        prompt += double(as_int(row, "prompt_tokens"));
    }
    EXPECT_EQ(
        value(after, "ringway_model_tokens_total", {{"model", "gpt-4o-mini"}, {"type", "prompt"}}),
        prompt);
    const std::string channel = std::to_string(channel_id_);
    EXPECT_GE(
        value(after, "ringway_channel_tokens_total", {{"channel", channel}, {"type", "prompt"}}),
        prompt);  // The channel also served the readiness probes.
}

TEST_F(MetricsTest, SlowFirstEventLandsInItsTtftBucketNotInOverhead) {
    const std::string before = gateway_.metrics();
    const Response response = gateway_.chat(
        key_, chat_body("gpt-4o-mini", true, R"("x_mock":{"first-event-delay-ms":300})"));
    ASSERT_EQ(response.status, 200) << response.body;
    const std::string after = gateway_.metrics();
    const auto delta = [&](std::string_view name, const char* le) {
        return chat(after, std::string(name), le) - chat(before, std::string(name), le);
    };
    EXPECT_EQ(delta("ringway_upstream_ttft_seconds_bucket", "0.25"), 0);
    EXPECT_EQ(delta("ringway_upstream_ttft_seconds_bucket", "0.5"), 1);
    EXPECT_EQ(delta("ringway_request_duration_seconds_bucket", "0.25"), 0);
    // The 300 ms were the provider's: the gateway's own share stays far below them.
    EXPECT_EQ(delta("ringway_gateway_overhead_seconds_bucket", "0.1"), 1);
}

TEST_F(MetricsTest, ErrorsByClass) {
    const Key limited = gateway_.create_key(R"({"name":"narrow","models":["other-model"]})");
    const std::string before = gateway_.metrics();
    EXPECT_EQ(gateway_.call(post_request(chat_path, chat_body("gpt-4o-mini", false), "sk-rw-nope"))
                  .status,
              401);
    EXPECT_EQ(gateway_.chat(limited, chat_body("gpt-4o-mini", false)).status, 403);
    EXPECT_EQ(
        gateway_.chat(key_, chat_body("gpt-4o-mini", false, R"("x_mock":{"status":400})")).status,
        400);
    const std::string after = gateway_.metrics();
    const auto delta = [&](const char* klass, const char* fault) {
        const std::map<std::string, std::string> labels{{"class", klass}, {"fault", fault}};
        return value(after, "ringway_request_errors_total", labels) -
               value(before, "ringway_request_errors_total", labels);
    };
    EXPECT_EQ(delta("client", "client_invalid_api_key"), 1);
    EXPECT_EQ(delta("policy", "client_model_not_allowed"), 1);
    EXPECT_EQ(delta("provider", "upstream_answered_error"), 1);
    // (The readiness probes before were local_no_channel until the channel resolved.)
    EXPECT_EQ(metric_sum(after, "ringway_request_errors_total", {{"class", "gateway"}}),
              metric_sum(before, "ringway_request_errors_total", {{"class", "gateway"}}));
}

// What a scrape costs, over one kept-alive connection (printed; bounded loosely so a
// regression to milliseconds fails).
TEST_F(MetricsTest, ScrapeCost) {
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(gateway_.chat(key_, chat_body("gpt-4o-mini", i % 2 == 0)).status, 200);
    }
    MetricsScraper scraper(gateway_.port());
    ASSERT_TRUE(scraper.scrape(Deadline::after_ms(5000)).has_value());  // Warm: connection, arena.
    constexpr int scrapes = 500;
    size_t bytes = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < scrapes; i++) {
        const auto text = scraper.scrape(Deadline::after_ms(5000));
        ASSERT_TRUE(text.has_value());
        bytes = text->size();
    }
    const auto elapsed_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::steady_clock::now() - start)
                                .count();
    const double per_scrape_us = double(elapsed_us) / scrapes;
    std::printf("scrape cost: %.1f us per scrape (round trip, %zu bytes, %d scrapes)\n",
                per_scrape_us, bytes, scrapes);
    RecordProperty("scrape_us", std::to_string(per_scrape_us));
    EXPECT_LT(bytes, size_t(256 * 1024));  // core/limits.h metrics_text_bytes_max: never truncated.
    EXPECT_LT(per_scrape_us, 20000.0);
}

}  // namespace
}  // namespace rw::test::proxy
