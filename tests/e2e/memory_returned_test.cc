// tests/e2e/memory_returned_test.cc — memory a burst took is returned (issue 8: after the
// probes RSS stayed at its peak, the shard's chunk pool keeping what it grew forever).
// Twenty connections each hold a 200 KB body at once, growing the pool; once they are
// answered, the cached bytes must fall back to the small-chunk floor within a few trim
// periods (RINGWAY_POOL_TRIM_MS), as ringway_arena_pool_bytes{state} shows. Builds that
// do not recycle (RW_NO_RECYCLE: debug, sanitizers) cache nothing, so only the fall is
// checked there.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "core/limits.h"
#include "tests/support/harness.h"

namespace rw::test {
namespace {

// pool_small_chunks_floor chunks, plus the blocks the polling scrapes keep using (the
// metrics text, metrics_text_bytes_max, and its response, at most 128 KiB), which a trim
// rightly keeps.
constexpr double floor_bytes = 64.0 * 16 * 1024 + metrics_text_bytes_max + 128 * 1024;

double pool_bytes(uint16_t port, const char* state) {
    const std::optional<std::string> text = scrape_metrics(port, Deadline::after_ms(2000));
    EXPECT_TRUE(text.has_value());
    return text ? metric_sum(*text, "ringway_arena_pool_bytes", {{"state", state}}) : -1;
}

TEST(MemoryReturned, CachedPoolBytesFallBackAfterABurst) {
    Ringway server;
    std::string error;
    ASSERT_TRUE(server.start({{"RINGWAY_SHARDS", "1"}, {"RINGWAY_POOL_TRIM_MS", "300"}}, &error))
        << error;
    constexpr size_t body_bytes = 200 * 1000;
    const std::string request =
        "POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body_bytes) +
        "\r\n\r\n" + std::string(body_bytes, 'b');
    // Every body but its last byte is sent on every connection before any body ends, so
    // the twenty bodies are held at once.
    std::vector<Client> clients(20);
    for (Client& client : clients) {
        ASSERT_TRUE(client.connect(server.port(), Deadline::after_ms(2000), &error)) << error;
        ASSERT_TRUE(client.send(std::string_view(request).substr(0, request.size() - 1),
                                Deadline::after_ms(5000)));
    }
    double in_use_at_peak = 0;
    for (const Deadline deadline = Deadline::after_ms(5000);
         !deadline.passed() && in_use_at_peak < 20.0 * body_bytes;) {
        in_use_at_peak = pool_bytes(server.port(), "in_use");
    }
    EXPECT_GE(in_use_at_peak, 20.0 * body_bytes) << "the bodies were not held at once";
    for (Client& client : clients) {
        ASSERT_TRUE(client.send("b", Deadline::after_ms(5000)));
    }
    for (Client& client : clients) {
        const std::optional<Response> response =
            client.read_response(Deadline::after_ms(5000), false, &error);
        ASSERT_TRUE(response.has_value()) << error;
        EXPECT_EQ(response->status, 405);  // The core's path, after the whole body.
    }
    const double cached_after_burst = pool_bytes(server.port(), "cached");
#if !defined(RW_NO_RECYCLE)
    EXPECT_GT(cached_after_burst, floor_bytes + 20 * body_bytes / 2)
        << "the burst did not grow the pool; the test measures nothing";
#endif
    // Within a few periods the cache is back at the floor, and nothing is in use.
    double cached = cached_after_burst;
    const Deadline deadline = Deadline::after_ms(5000);
    while (!deadline.passed() && cached > floor_bytes) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // Poll interval only.
        cached = pool_bytes(server.port(), "cached");
    }
    EXPECT_LE(cached, floor_bytes) << "cached pool bytes stayed at " << cached;
    // Only the scrape's own memory is in use (its text block and a chunk or two).
    EXPECT_LE(pool_bytes(server.port(), "in_use"), metrics_text_bytes_max + 64 * 1024);
    const std::optional<std::string> text = scrape_metrics(server.port(), Deadline::after_ms(2000));
    ASSERT_TRUE(text.has_value());
#if !defined(RW_NO_RECYCLE)
    EXPECT_GE(metric_sum(*text, "ringway_arena_pool_trimmed_bytes_total"),
              cached_after_burst - floor_bytes);
#endif
}

}  // namespace
}  // namespace rw::test
