// tests/unit/proxy/channel_health_test.cc — the shared channel health board (proxy/
// channel_health.h) as a state machine: auth down at once, rate limits skip without
// taking down, server failures need both the count and the ratio in the window, one trial
// per backoff with the backoff doubling to its cap, the auto_disable opt-out, restore and
// reset, and the transition counters.
#include "proxy/channel_health.h"

#include <gtest/gtest.h>

namespace rw {
namespace {

constexpr FailureReport auth_401{FailureKind::auth, 401, 0, {}};
constexpr FailureReport server_503{FailureKind::server, 503, 0, {}};

HealthSettings settings_for_test() {
    HealthSettings settings;
    settings.window_ms = 10000;
    settings.failures_min = 3;
    settings.failure_percent = 50;
    settings.backoff_ms = 1000;
    settings.backoff_max_ms = 3000;
    settings.retry_after_max_ms = 5000;
    return settings;
}

TEST(ChannelHealth, UnknownChannelsAreUp) {
    ChannelHealthBoard board(settings_for_test());
    EXPECT_EQ(board.judge(7, 1000), Verdict::use);
    EXPECT_FALSE(board.view(7, 1000).is_known);
}

TEST(ChannelHealth, AuthFailureTakesTheChannelDownAtOnce) {
    ChannelHealthBoard board(settings_for_test());
    board.failed(1, true, auth_401, 1000, false);
    EXPECT_EQ(board.judge(1, 1000), Verdict::down);
    const HealthView view = board.view(1, 1000);
    EXPECT_TRUE(view.is_down);
    EXPECT_EQ(view.reason, HealthReason::auth);
    EXPECT_STREQ(view.last_error, "HTTP 401");
    EXPECT_EQ(view.retry_in_ms, 1000u);
    EXPECT_GT(view.since_unix_ms, 0);
    EXPECT_EQ(board.transitions_down(), 1u);
}

TEST(ChannelHealth, RateLimitSkipsForRetryAfterCappedAndStaysUp) {
    ChannelHealthBoard board(settings_for_test());
    board.failed(1, true, {FailureKind::rate, 429, 2, {}}, 1000, false);
    EXPECT_EQ(board.judge(1, 2999), Verdict::rate_limited);
    EXPECT_EQ(board.judge(1, 3000), Verdict::use);
    board.failed(1, true, {FailureKind::rate, 429, 3600, {}}, 10000, false);  // Capped: 5 s.
    EXPECT_EQ(board.judge(1, 14999), Verdict::rate_limited);
    EXPECT_EQ(board.judge(1, 15000), Verdict::use);
    EXPECT_FALSE(board.view(1, 10000).is_down);
    EXPECT_EQ(board.transitions_down(), 0u);
}

TEST(ChannelHealth, ServerFailuresNeedTheCountAndTheRatio) {
    ChannelHealthBoard board(settings_for_test());
    // Ten successes, then three failures: 3 of 13 is below 50 %.
    for (int i = 0; i < 10; i++) {
        board.succeeded(1, 1000, false);
    }
    for (int i = 0; i < 3; i++) {
        board.failed(1, true, server_503, 1000, false);
    }
    EXPECT_EQ(board.judge(1, 1000), Verdict::use);
    // A fresh channel: two failures are below the count, the third takes it down.
    board.failed(2, true, server_503, 1000, false);
    board.failed(2, true, server_503, 1000, false);
    EXPECT_EQ(board.judge(2, 1000), Verdict::use);
    board.failed(2, true, {FailureKind::server, 0, 0, "upstream_timeout"}, 1000, false);
    EXPECT_EQ(board.judge(2, 1000), Verdict::down);
    EXPECT_EQ(board.view(2, 1000).reason, HealthReason::server);
    EXPECT_STREQ(board.view(2, 1000).last_error, "upstream_timeout");
}

TEST(ChannelHealth, OldFailuresSlideOutOfTheWindow) {
    ChannelHealthBoard board(settings_for_test());
    board.failed(1, true, server_503, 1000, false);
    board.failed(1, true, server_503, 1000, false);
    // Two windows later, the old failures weigh nothing: one more is not three.
    board.failed(1, true, server_503, 25000, false);
    EXPECT_EQ(board.judge(1, 25000), Verdict::use);
}

TEST(ChannelHealth, OneTrialPerBackoffAndTheBackoffDoublesToItsCap) {
    ChannelHealthBoard board(settings_for_test());
    board.failed(1, true, auth_401, 0, false);
    EXPECT_EQ(board.judge(1, 999), Verdict::down);
    EXPECT_EQ(board.judge(1, 1000), Verdict::trial);
    EXPECT_EQ(board.judge(1, 1000), Verdict::down);  // The trial is taken.
    board.failed(1, true, auth_401, 1000, true);     // Failed: 2 s now.
    EXPECT_EQ(board.judge(1, 2999), Verdict::down);
    EXPECT_EQ(board.judge(1, 3000), Verdict::trial);
    board.failed(1, true, auth_401, 3000, true);  // 4 s, capped at 3 s.
    EXPECT_EQ(board.judge(1, 5999), Verdict::down);
    EXPECT_EQ(board.judge(1, 6000), Verdict::trial);
    board.trial_abandoned(1);  // Never reached the channel: the next caller may try.
    EXPECT_EQ(board.judge(1, 6000), Verdict::trial);
    board.succeeded(1, 6000, true);
    EXPECT_EQ(board.judge(1, 6000), Verdict::use);
    EXPECT_EQ(board.transitions_down(), 1u);  // Failed trials are not new transitions.
    EXPECT_EQ(board.transitions_up(), 1u);
    // Down again later: the backoff starts over.
    board.failed(1, true, auth_401, 10000, false);
    EXPECT_EQ(board.view(1, 10000).retry_in_ms, 1000u);
}

TEST(ChannelHealth, RateLimitedTrialBringsTheChannelUp) {
    ChannelHealthBoard board(settings_for_test());
    board.failed(1, true, auth_401, 0, false);
    ASSERT_EQ(board.judge(1, 1000), Verdict::trial);
    board.failed(1, true, {FailureKind::rate, 429, 1, {}}, 1000, true);
    EXPECT_FALSE(board.view(1, 1000).is_down);
    EXPECT_EQ(board.judge(1, 1000), Verdict::rate_limited);
}

TEST(ChannelHealth, OptedOutChannelsAreNeverTakenDown) {
    ChannelHealthBoard board(settings_for_test());
    for (int i = 0; i < 10; i++) {
        board.failed(1, false, auth_401, 1000, false);
        board.failed(1, false, server_503, 1000, false);
    }
    EXPECT_EQ(board.judge(1, 1000), Verdict::use);
    EXPECT_EQ(board.transitions_down(), 0u);
}

TEST(ChannelHealth, RestoredDownWaitsOneBackoffAndResetBringsUp) {
    ChannelHealthBoard board(settings_for_test());
    board.restore_down(1, HealthReason::auth, 1700000000000, 5000);
    EXPECT_EQ(board.judge(1, 5999), Verdict::down);
    EXPECT_EQ(board.view(1, 5000).since_unix_ms, 1700000000000);
    board.reset(1, 5500);  // An operator's probe succeeded.
    EXPECT_EQ(board.judge(1, 5500), Verdict::use);
    EXPECT_EQ(board.transitions_up(), 1u);
}

TEST(ChannelHealth, VersionMovesOnEveryUpDownChange) {
    ChannelHealthBoard board(settings_for_test());
    board.succeeded(1, 0, false);
    const uint32_t start = board.view(1, 0).version;
    board.failed(1, true, auth_401, 0, false);
    EXPECT_EQ(board.view(1, 0).version, start + 1);
    ASSERT_EQ(board.judge(1, 1000), Verdict::trial);
    board.succeeded(1, 1000, true);
    EXPECT_EQ(board.view(1, 1000).version, start + 2);
}

}  // namespace
}  // namespace rw
