// tests/e2e/proxy_zero_alloc_test.cc — the proxied request path makes no heap allocation
// in steady state. The binary counts every allocation made on a shard thread, in any
// library (it defines the malloc family; ringway_heap_allocations_total{shard}), so this
// covers the key hash (OpenSSL), the JSON reads (simdjson), the upstream pool, the relay
// and the usage record, for whole and streamed chat completions on a kept-alive client.
#include <gtest/gtest.h>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

class ProxyZeroAllocTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_));
        ASSERT_NO_FATAL_FAILURE(gateway_.start({{"RINGWAY_SHARDS", "1"}}));
        ChannelSpec spec;
        spec.name = "main";
        spec.mock_port = mock_.port();
        spec.models = {"gpt-4o-mini"};
        ASSERT_GT(gateway_.create_channel(spec), 0);
        const auto probes = gateway_.wait_channels_routable();
        ASSERT_EQ(probes.at("main").status, 200) << probes.at("main").body;
        key_ = gateway_.create_key(R"({"name":"app"})");
        ASSERT_FALSE(key_.secret.empty());
    }

    double allocations() {
        const std::optional<std::string> text = scraper_->scrape(Deadline::after_ms(2000));
        EXPECT_TRUE(text.has_value());
        return text ? metric_value(*text, "ringway_heap_allocations_total", {{"shard", "0"}})
                          .value_or(-1)
                    : -1;
    }

    // count requests over one kept-alive client connection; all must answer 200.
    void run(Client& client, const std::string& body, int count) {
        const std::string request = post_request("/v1/chat/completions", body, key_.secret);
        for (int index = 0; index < count; index++) {
            ASSERT_TRUE(client.send(request, Deadline::after_ms(5000)));
            std::string error;
            const std::optional<Response> response =
                client.read_response(Deadline::after_ms(5000), false, &error);
            ASSERT_TRUE(response.has_value()) << error;
            ASSERT_EQ(response->status, 200) << response->body;
        }
    }

    MockUpstream mock_;
    Gateway gateway_;
    Key key_;
    std::optional<MetricsScraper> scraper_;
};

TEST_F(ProxyZeroAllocTest, WholeAndStreamedChatDoNotAllocate) {
#if defined(RW_NO_RECYCLE)
    GTEST_SKIP() << "debug/sanitizer builds allocate every arena chunk afresh (RW_NO_RECYCLE)";
#endif
    scraper_.emplace(gateway_.port());
    Client client;
    ASSERT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000)));
    const std::string whole = chat_body("gpt-4o-mini", false);
    const std::string streamed = chat_body("gpt-4o-mini", true);
    // Warm-up: pools, the upstream connection, the parser and the metrics scrape grow once.
    ASSERT_NO_FATAL_FAILURE(run(client, whole, 200));
    ASSERT_NO_FATAL_FAILURE(run(client, streamed, 200));
    (void)allocations();
    (void)allocations();
    const double before = allocations();
    ASSERT_GT(before, 0) << "the allocation counter never moved; is it installed?";
    ASSERT_NO_FATAL_FAILURE(run(client, whole, 300));
    ASSERT_NO_FATAL_FAILURE(run(client, streamed, 300));
    const double after = allocations();
    EXPECT_EQ(after, before) << (after - before)
                             << " heap allocations on shard 0 for 600 proxied requests";
    // The requests did go upstream and were metered.
    EXPECT_GE(gateway_.metric("ringway_usage_records_total"), 1000);
}

}  // namespace
}  // namespace rw::test::proxy
