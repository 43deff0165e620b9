// tests/e2e/metrics_test.cc — /metrics as Prometheus scrapes it: the fixed metric names
// are there, and the counters move by exactly what the test did. Scrapes go over one
// kept-alive connection (MetricsScraper) so they add no connections; a scrape is itself a
// 2xx request, so request counts are compared as differences of differences.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/harness.h"

namespace rw::test {
namespace {

class Metrics : public ::testing::Test {
protected:
    void start(const EnvList& env) {
        std::string error;
        ASSERT_TRUE(server_.start(env, &error)) << error;
        scraper_ = MetricsScraper(server_.port());
    }

    std::string scrape() {
        const std::optional<std::string> text = scraper_.scrape(Deadline::after_ms(2000));
        EXPECT_TRUE(text.has_value()) << "GET /metrics failed";
        return text.value_or("");
    }

    // Polls until metric_sum(name, labels) == expected; returns the last value seen.
    double wait_value(std::string_view name, const std::map<std::string, std::string>& labels,
                      double expected) {
        const Deadline deadline = Deadline::after_ms(2000);
        double value = -1;
        do {
            value = metric_sum(scrape(), name, labels);
            if (value == expected) {
                return value;
            }
        } while (!deadline.passed());
        return value;
    }

    void request(std::string_view request_bytes, int expected_status) {
        std::string error;
        const std::optional<Response> response =
            http_exchange(server_.port(), request_bytes, Deadline::after_ms(2000), false, &error);
        ASSERT_TRUE(response.has_value()) << error;
        EXPECT_EQ(response->status, expected_status);
    }

    Ringway server_;
    MetricsScraper scraper_{0};
};

TEST_F(Metrics, EveryContractMetricIsExposed) {
    start({{"RINGWAY_SHARDS", "2"}});
    request(get_request("/healthz"), 200);
    const std::optional<Response> response =
        http_exchange(server_.port(), get_request("/metrics"), Deadline::after_ms(2000));
    ASSERT_TRUE(response.has_value());
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->header("content-type").value_or("").rfind("text/plain", 0), 0u)
        << response->header("content-type").value_or("<absent>");
    const std::string& text = response->body;
    EXPECT_TRUE(metric_value(text, "ringway_requests_total", {{"class", "2xx"}}).has_value());
    EXPECT_GE(metric_value(text, "ringway_requests_total", {{"class", "2xx"}}).value_or(0), 1);
    EXPECT_TRUE(metric_value(text, "ringway_connections_active").has_value());
    EXPECT_TRUE(metric_value(text, "ringway_connections_accepted_total").has_value());
    EXPECT_TRUE(metric_value(text, "ringway_arena_chunks_in_use").has_value());
    EXPECT_EQ(metric_value(text, "ringway_recv_buffer_exhausted_total"), 0.0);
    for (const char* phase : {"header", "body", "keepalive", "send"}) {
        EXPECT_EQ(metric_value(text, "ringway_timeouts_total", {{"phase", phase}}), 0.0)
            << "ringway_timeouts_total{phase=\"" << phase << "\"}";
    }
    // A shard that has not finished a turn yet may still show 0; the one that served
    // these requests has turned.
    EXPECT_GT(metric_sum(text, "ringway_loop_iterations_total"), 0);
    for (uint32_t shard = 0; shard < server_.shard_count(); shard++) {
        const std::map<std::string, std::string> label = {{"shard", std::to_string(shard)}};
        EXPECT_TRUE(metric_value(text, "ringway_loop_iterations_total", label).has_value())
            << "shard " << shard;
        EXPECT_TRUE(metric_value(text, "ringway_heap_allocations_total", label).has_value())
            << "shard " << shard;
    }
    // Every non-comment line is a sample the parser understood.
    size_t sample_lines = 0;
    size_t from = 0;
    while (from < text.size()) {
        const size_t newline = text.find('\n', from);
        const std::string line = text.substr(from, newline - from);
        if (!line.empty() && line[0] != '#') {
            sample_lines++;
        }
        from = newline == std::string::npos ? text.size() : newline + 1;
    }
    EXPECT_EQ(parse_metrics(text).size(), sample_lines) << text;
    EXPECT_EQ(text.back(), '\n') << "Prometheus text must end with a newline";
}

TEST_F(Metrics, RequestsAreCountedByStatusClass) {
    start({{"RINGWAY_SHARDS", "2"}});
    const std::string a = scrape();
    const std::string b = scrape();
    // Ten 2xx on one connection, four 404s, two 405s (each error closes its connection).
    Client client;
    std::string error;
    ASSERT_TRUE(client.connect(server_.port(), Deadline::after_ms(2000), &error)) << error;
    for (int index = 0; index < 10; index++) {
        ASSERT_TRUE(
            client.send(get_request(index < 7 ? "/healthz" : "/readyz"), Deadline::after_ms(2000)));
        const std::optional<Response> response =
            client.read_response(Deadline::after_ms(2000), false, &error);
        ASSERT_TRUE(response.has_value()) << error;
    }
    for (int index = 0; index < 4; index++) {
        request(get_request("/nope"), 404);
    }
    for (int index = 0; index < 2; index++) {
        request("POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", 405);
    }
    const std::string c = scrape();
    auto count = [](const std::string& text, const char* status_class) {
        return metric_sum(text, "ringway_requests_total", {{"class", status_class}});
    };
    // (c - b) - (b - a): the scrapes' own contribution cancels out.
    EXPECT_EQ((count(c, "2xx") - count(b, "2xx")) - (count(b, "2xx") - count(a, "2xx")), 10);
    EXPECT_EQ(count(c, "4xx") - count(b, "4xx"), 6);
    EXPECT_EQ(count(c, "5xx") - count(b, "5xx"), 0);
}

TEST_F(Metrics, AcceptedConnectionsAreCountedOnce) {
    start({{"RINGWAY_SHARDS", "2"}});
    const double before = metric_sum(scrape(), "ringway_connections_accepted_total");
    for (int index = 0; index < 5; index++) {
        request(get_request("/healthz", "Connection: close\r\n"), 200);
    }
    // A kept-alive connection with several requests counts once.
    Client client;
    std::string error;
    ASSERT_TRUE(client.connect(server_.port(), Deadline::after_ms(2000), &error)) << error;
    for (int index = 0; index < 3; index++) {
        ASSERT_TRUE(client.send(get_request("/healthz"), Deadline::after_ms(2000)));
        ASSERT_TRUE(client.read_response(Deadline::after_ms(2000)).has_value());
    }
    EXPECT_EQ(metric_sum(scrape(), "ringway_connections_accepted_total"), before + 6);
}

TEST_F(Metrics, ActiveConnectionsFollowOpenAndClose) {
    start({{"RINGWAY_SHARDS", "2"}});
    const double base = metric_sum(scrape(), "ringway_connections_active");
    EXPECT_GE(base, 1) << "the scrape connection itself is active";
    std::vector<Client> clients(6);
    std::string error;
    for (Client& client : clients) {
        ASSERT_TRUE(client.connect(server_.port(), Deadline::after_ms(2000), &error)) << error;
        ASSERT_TRUE(client.send(get_request("/healthz"), Deadline::after_ms(2000)));
        ASSERT_TRUE(client.read_response(Deadline::after_ms(2000)).has_value());
    }
    EXPECT_EQ(wait_value("ringway_connections_active", {}, base + 6), base + 6);
    clients.clear();  // Closes all six.
    EXPECT_EQ(wait_value("ringway_connections_active", {}, base), base)
        << "closed connections still counted as active";
}

TEST_F(Metrics, ArenaChunksReturnToBaselineWhenIdle) {
    start({{"RINGWAY_SHARDS", "1"}});
    const double base = metric_sum(scrape(), "ringway_arena_chunks_in_use");
    Client client;
    std::string error;
    ASSERT_TRUE(client.connect(server_.port(), Deadline::after_ms(2000), &error)) << error;
    std::string batch;
    for (int index = 0; index < 50; index++) {
        batch += get_request(index % 2 ? "/healthz" : "/metrics");
    }
    ASSERT_TRUE(client.send(batch, Deadline::after_ms(2000)));
    for (int index = 0; index < 50; index++) {
        ASSERT_TRUE(client.read_response(Deadline::after_ms(2000), false, &error).has_value())
            << error;
    }
    for (int index = 0; index < 20; index++) {
        request(get_request("/nope"), 404);
    }
    client.close();
    EXPECT_EQ(wait_value("ringway_arena_chunks_in_use", {}, base), base)
        << "arena chunks leaked by finished requests";
}

TEST_F(Metrics, LoopIterationsAdvancePerShard) {
    start({{"RINGWAY_SHARDS", "1"}});
    const double first =
        metric_value(scrape(), "ringway_loop_iterations_total", {{"shard", "0"}}).value_or(-1);
    for (int index = 0; index < 5; index++) {
        request(get_request("/healthz"), 200);
    }
    const double second =
        metric_value(scrape(), "ringway_loop_iterations_total", {{"shard", "0"}}).value_or(-1);
    EXPECT_GT(first, 0);
    EXPECT_GT(second, first) << "the loop counter did not move while serving";
}

// An idle shard wakes for its deadline sweep (every 25 ms) and for nothing else: about 40
// loop turns a second plus the scrapes. A loop that re-slept in 1 ms steps until the coarse
// clock caught up with the sweep made ~140. The bound only caps wake-ups; a slow machine
// makes fewer, never more.
TEST_F(Metrics, IdleShardWakesOnlyForTheSweep) {
    start({{"RINGWAY_SHARDS", "1"}});
    const std::map<std::string, std::string> shard0{{"shard", "0"}};
    const double first =
        metric_value(scrape(), "ringway_loop_iterations_total", shard0).value_or(-1);
    const auto start = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(2000));
    const double second =
        metric_value(scrape(), "ringway_loop_iterations_total", shard0).value_or(-1);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_GT(first, 0);
    EXPECT_LE((second - first) / seconds, 60.0)
        << (second - first) << " loop turns in " << seconds << " s of idle";
}

TEST_F(Metrics, ParseErrorsAreCountedByKind) {
    start({{"RINGWAY_SHARDS", "1"}});
    const std::string before = scrape();
    request("GET /healthz HTTP/1.1\r\n\r\n", 400);                        // missing_host
    request("GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);  // duplicate_host
    request("GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    const std::string after = scrape();
    auto kind = [](const std::string& text, const char* code) {
        return metric_sum(text, "ringway_parse_errors_total", {{"kind", code}});
    };
    EXPECT_EQ(kind(after, "missing_host") - kind(before, "missing_host"), 1);
    EXPECT_EQ(kind(after, "duplicate_host") - kind(before, "duplicate_host"), 2);
    EXPECT_EQ(metric_sum(after, "ringway_parse_errors_total") -
                  metric_sum(before, "ringway_parse_errors_total"),
              3);
    // A refusal is a 4xx response like any other.
    EXPECT_EQ(metric_sum(after, "ringway_requests_total", {{"class", "4xx"}}) -
                  metric_sum(before, "ringway_requests_total", {{"class", "4xx"}}),
              3);
}

}  // namespace
}  // namespace rw::test
