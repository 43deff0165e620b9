// tests/unit/proxy/rate_limit_test.cc — the token buckets behind rpm/tpm (proxy/rate_limit.h):
// a full bucket admits `limit` at once, then refills continuously (no boundary lets twice
// the limit through), give_back makes a take undone exactly, and durations are written the
// way OpenAI's x-ratelimit-reset-* headers are.
#include "proxy/rate_limit.h"

#include "proxy/upstream_parse.h"

#include <gtest/gtest.h>

#include <string>

namespace rw {
namespace {

constexpr int64_t minute_us = 60'000'000;

std::string duration(uint64_t us) {
    char out[32];
    return {out, rate_duration_write(us, out)};
}

TEST(RateBucketsTest, AFullBucketAdmitsItsLimitThenRefillsContinuously) {
    RateBuckets buckets(2);
    const int64_t start = 1'700'000'000LL * 1'000'000 + 59'000'000;  // Second 59 of a minute.
    RateView view{};
    uint64_t wait_us = 0;
    for (uint32_t index = 0; index < 3; index++) {
        ASSERT_TRUE(buckets.try_take(0, 1, 3, start, view, wait_us));
        EXPECT_EQ(view.limit, 3u);
        EXPECT_EQ(view.remaining, 2 - index);
    }
    EXPECT_EQ(view.reset_us, uint64_t(minute_us));  // Full again a minute later.
    // Past the minute boundary (2 s later) there is still no room: 18 s to wait.
    EXPECT_FALSE(buckets.try_take(0, 1, 3, start + 2'000'000, view, wait_us));
    EXPECT_EQ(view.remaining, 0u);
    EXPECT_EQ(wait_us, 18'000'000u);
    EXPECT_TRUE(buckets.try_take(0, 1, 3, start + 20'000'000, view, wait_us));
    // The other slot is not affected.
    EXPECT_TRUE(buckets.try_take(1, 3, 3, start, view, wait_us));
}

TEST(RateBucketsTest, GiveBackUndoesATakeAndTooLargeNeverFits) {
    RateBuckets buckets(1);
    const int64_t now = 1'000'000'000'000;
    RateView view{};
    uint64_t wait_us = 0;
    ASSERT_TRUE(buckets.try_take(0, 700, 1000, now, view, wait_us));
    EXPECT_EQ(view.remaining, 300u);
    EXPECT_FALSE(buckets.try_take(0, 400, 1000, now, view, wait_us));
    EXPECT_EQ(view.remaining, 300u);
    buckets.give_back(0, 650, 1000);  // Settled to 50 tokens.
    ASSERT_TRUE(buckets.try_take(0, 400, 1000, now, view, wait_us));
    EXPECT_EQ(view.remaining, 550u);
    buckets.take_more(0, 100, 1000, now);  // Usage above a reservation.
    ASSERT_TRUE(buckets.try_take(0, 1, 1000, now, view, wait_us));
    EXPECT_EQ(view.remaining, 449u);
    EXPECT_FALSE(buckets.try_take(0, 1001, 1000, now, view, wait_us));
    EXPECT_EQ(wait_us, UINT64_MAX);
}

TEST(RateBucketsTest, DurationsAreWrittenAsOpenAiDoes) {
    EXPECT_EQ(duration(0), "0s");
    EXPECT_EQ(duration(19'500), "20ms");
    EXPECT_EQ(duration(1'000'000), "1s");
    EXPECT_EQ(duration(59'123'000), "59.123s");
    EXPECT_EQ(duration(1'500'000), "1.5s");
    EXPECT_EQ(duration(60'000'000), "1m0s");
    EXPECT_EQ(duration(360'000'000), "6m0s");
}

TEST(RateBucketsTest, HeadersNameOnlyTheLimitsARequestHas) {
    RateHold hold{};
    char out[rate_headers_bytes_max];
    EXPECT_EQ(rate_headers_write(hold, out), 0u);
    hold.requests = {60, 59, 1'000'000};
    hold.retry_after_ms = 1500;
    EXPECT_EQ(std::string(out, rate_headers_write(hold, out)),
              "x-ratelimit-limit-requests: 60\r\nx-ratelimit-remaining-requests: 59\r\n"
              "x-ratelimit-reset-requests: 1s\r\nretry-after-ms: 1500\r\n");
    // The provider's lines these replace: -requests only (the hold has no tokens limit).
    EXPECT_EQ(rate_replaced_headers(hold), uint8_t(upstream_replaces_requests));
    hold.tokens = {1000, 999, 60'000};
    EXPECT_EQ(rate_replaced_headers(hold),
              uint8_t(upstream_replaces_requests | upstream_replaces_tokens));
    EXPECT_EQ(rate_replaced_headers(RateHold{}), uint8_t(upstream_replaces_none));
}

}  // namespace
}  // namespace rw
