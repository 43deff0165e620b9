// tests/e2e/zero_alloc_test.cc — the data plane allocates nothing per request in steady
// state (DESIGN.md "Per-request arena"). ringway counts every heap allocation made on a
// shard thread (core/alloc_count.cc) as ringway_heap_allocations_total{shard}; after a
// warm-up, more requests of the same kinds must leave it unchanged. One shard, so every
// request and every scrape lands on shard 0.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/harness.h"

namespace rw::test {
namespace {

class ZeroAlloc : public ::testing::Test {
protected:
    void SetUp() override {
        std::string error;
        ASSERT_TRUE(server_.start({{"RINGWAY_SHARDS", "1"}}, &error)) << error;
        for (Client& client : clients_) {
            ASSERT_TRUE(client.connect(server_.port(), Deadline::after_ms(2000), &error)) << error;
        }
    }

    // The shard's allocation count, scraped over a kept-alive connection.
    double allocations() {
        const std::optional<std::string> text = scraper_.scrape(Deadline::after_ms(2000));
        EXPECT_TRUE(text.has_value());
        if (!text.has_value()) {
            return -1;
        }
        const std::optional<double> value =
            metric_value(*text, "ringway_heap_allocations_total", {{"shard", "0"}});
        EXPECT_TRUE(value.has_value()) << "no ringway_heap_allocations_total{shard=\"0\"}";
        return value.value_or(-1);
    }

    // One round: on every kept-alive client `sequential_count` requests one at a time,
    // then a pipelined batch of `pipelined_count` sent on every client before any answer
    // is read, so several requests are in flight at once. Returns the requests made.
    int round(int sequential_count, int pipelined_count) {
        int request_count = 0;
        std::string error;
        for (Client& client : clients_) {
            for (int index = 0; index < sequential_count; index++) {
                const bool is_health = index % 2 == 0;
                EXPECT_TRUE(client.send(get_request(is_health ? "/healthz" : "/readyz"),
                                        Deadline::after_ms(2000)));
                const std::optional<Response> response =
                    client.read_response(Deadline::after_ms(2000), false, &error);
                EXPECT_TRUE(response.has_value()) << error;
                if (!response.has_value()) {
                    return request_count;
                }
                EXPECT_EQ(response->status, 200);
                request_count++;
            }
        }
        std::string batch;
        for (int index = 0; index < pipelined_count; index++) {
            batch += index % 3 == 2 ? "HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                                    : get_request(index % 3 == 0 ? "/healthz" : "/readyz");
        }
        for (Client& client : clients_) {
            EXPECT_TRUE(client.send(batch, Deadline::after_ms(2000)));
        }
        for (Client& client : clients_) {
            for (int index = 0; index < pipelined_count; index++) {
                const std::optional<Response> response =
                    client.read_response(Deadline::after_ms(2000), index % 3 == 2, &error);
                EXPECT_TRUE(response.has_value()) << error;
                if (!response.has_value()) {
                    return request_count;
                }
                EXPECT_EQ(response->status, 200);
                request_count++;
            }
        }
        return request_count;
    }

    Ringway server_;
    MetricsScraper scraper_{0};
    std::vector<Client> clients_ = std::vector<Client>(4);
};

TEST_F(ZeroAlloc, KeptAliveAndPipelinedRequestsDoNotAllocate) {
#if defined(RW_NO_RECYCLE)
    GTEST_SKIP() << "debug/sanitizer builds allocate every arena chunk afresh (RW_NO_RECYCLE)";
#endif
    scraper_ = MetricsScraper(server_.port());
    const double at_start = allocations();
    // The counting hook must be live: shard setup allocates its slots and pools.
    EXPECT_GT(at_start, 0) << "the allocation counter never moved; is the hook installed?";
    // Warm-up: several hundred requests of every kind measured below, and scrapes.
    int warm_count = 0;
    for (int index = 0; index < 3; index++) {
        warm_count += round(25, 20);
        (void)allocations();
    }
    ASSERT_GE(warm_count, 500);
    const double before = allocations();
    int measured_count = 0;
    for (int index = 0; index < 5; index++) {
        measured_count += round(30, 20);  // 4 clients x 50 = 200 requests per round.
    }
    ASSERT_EQ(measured_count, 1000);
    const double after = allocations();
    EXPECT_EQ(after, before) << (after - before) << " heap allocations on shard 0 during "
                             << measured_count << " steady-state requests";
}

TEST_F(ZeroAlloc, ScrapingMetricsDoesNotAllocate) {
#if defined(RW_NO_RECYCLE)
    GTEST_SKIP() << "debug/sanitizer builds allocate every arena chunk afresh (RW_NO_RECYCLE)";
#endif
    scraper_ = MetricsScraper(server_.port());
    for (int index = 0; index < 20; index++) {
        (void)allocations();
    }
    const double before = allocations();
    for (int index = 0; index < 50; index++) {
        (void)allocations();
    }
    EXPECT_EQ(allocations(), before);
}

TEST_F(ZeroAlloc, NewConnectionsAndErrorResponsesDoNotAllocate) {
#if defined(RW_NO_RECYCLE)
    GTEST_SKIP() << "debug/sanitizer builds allocate every arena chunk afresh (RW_NO_RECYCLE)";
#endif
    // Connection slots are allocated once at shard start, and an error response uses the
    // request arena like any other: churn must not reach the heap either.
    scraper_ = MetricsScraper(server_.port());
    auto churn = [&](int count) {
        for (int index = 0; index < count; index++) {
            const char* request =
                index % 3 == 0   ? "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                : index % 3 == 1 ? "GET /no-such-path HTTP/1.1\r\nHost: t\r\n\r\n"
                                 : "GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n";
            std::string error;
            const std::optional<Response> response =
                http_exchange(server_.port(), request, Deadline::after_ms(2000), false, &error);
            EXPECT_TRUE(response.has_value()) << error;
        }
    };
    churn(150);
    // The first scrape's own response is allocated after its text is rendered, so it
    // shows only in the next scrape: scrape twice before taking the baseline.
    (void)allocations();
    const double before = allocations();
    churn(300);
    // Closed connections are reaped asynchronously; wait until none but the scraper's is
    // active so the last closes are inside the measurement.
    const Deadline deadline = Deadline::after_ms(2000);
    double after = before;
    do {
        const std::optional<std::string> text = scraper_.scrape(Deadline::after_ms(2000));
        ASSERT_TRUE(text.has_value());
        after =
            metric_value(*text, "ringway_heap_allocations_total", {{"shard", "0"}}).value_or(-1);
        const double active = metric_sum(*text, "ringway_connections_active");
        if (active <= 1 + static_cast<double>(clients_.size())) {
            break;
        }
    } while (!deadline.passed());
    EXPECT_EQ(after, before) << (after - before)
                             << " heap allocations on shard 0 for 300 short connections";
}

}  // namespace
}  // namespace rw::test
