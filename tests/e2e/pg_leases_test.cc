// tests/e2e/pg_leases_test.cc — budget leases (storage/budget_lease.h): two ringways on
// loopback sharing one PostgreSQL (RW_TEST_PG, tests/support/pg_server.sh; without one this
// suite skips and says why) keep a key's money budget exact across both. Every request
// here costs exactly its reservation (prompt tokens = the body's bytes, completion tokens =
// its max_tokens), so a budget of ten reservations lets ten requests through in all, never
// more: 200 requests spread over both hosts reach the mock at most ten times and
// PostgreSQL's totals agree with the rows, for a money budget and for a lifetime token
// quota alike; a host killed with its lease is replaced by the other host once the lease's
// TTL passed; a lease given back on idle is spent by the other; with one Redis beside the
// one PostgreSQL (the issue's deployment) the budget and a shared rpm hold together.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "tests/e2e/proxy_support.h"
#include "tests/e2e/redis_server.h"

namespace rw::test::proxy {
namespace {

constexpr int64_t input_nano = 1000;   // $1 per million input tokens.
constexpr int64_t output_nano = 2000;  // $2 per million output tokens.

int64_t cost_nano(const std::string& body) {
    return int64_t(body.size()) * input_nano + exact_body_output_tokens * output_nano;
}

class PgLeasesTest : public ::testing::Test {
protected:
    void start(const EnvList& env_a, const EnvList& env_b) {
        if (!pg_test_enabled()) {
            GTEST_SKIP() << "needs RW_TEST_PG (ctest runs it with a throwaway PostgreSQL)";
        }
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_));
        ASSERT_NO_FATAL_FAILURE(host_a_.start(env_a));
        ASSERT_NO_FATAL_FAILURE(priced_channel(host_a_, mock_.port()));
        EnvList b = env_b;
        b.emplace_back("RINGWAY_DB", host_a_.db_path());
        ASSERT_NO_FATAL_FAILURE(host_b_.start(b));
        ASSERT_NO_FATAL_FAILURE(mock_reset(mock_.port()));
    }

    // A key made on A (`limits`: its JSON members), once B knows it (B's first answer is not
    // the 401 of a key it has not loaded yet). No request reaches the mock.
    Key leased_key(const std::string& limits) {
        const Key key = host_a_.create_key(R"({"name":"leased",)" + limits + "}");
        const std::string unserved = chat_body("not-served", false);
        EXPECT_TRUE(poll_until(Deadline::after_ms(10000),
                               [&] { return host_b_.chat(key, unserved).status != 401; }));
        return key;
    }

    // A key with a money budget of `count` requests.
    Key budget_key(const std::string& body, int64_t count) {
        return leased_key(R"("budget_usd":")" + usd(count * cost_nano(body)) + "\"");
    }

    // 200 requests from 8 clients alternating between the hosts; at most `covered` served.
    int burst_over_both(const Key& key, const std::string& body, int covered) {
        const BurstTally tally =
            quota_burst({host_a_.port(), host_b_.port()}, 8, 25, body, key.secret);
        EXPECT_EQ(tally.other_count, 0);
        EXPECT_EQ(tally.ok_count + tally.refused_count, 200);
        std::printf("served %d of 200 (covered: %d)\n", tally.ok_count, covered);
        EXPECT_GE(tally.ok_count, 1);
        EXPECT_LE(tally.ok_count, covered);
        EXPECT_EQ(mock_requests(mock_.port()), tally.ok_count);
        for (Gateway* host : {&host_a_, &host_b_}) {
            const double grants = host->metric("ringway_budget_lease_grants_total");
            EXPECT_GE(grants, 1);
            std::printf("host %c: %.0f grants, %.0f us per grant, %.0f waits\n",
                        host == &host_a_ ? 'A' : 'B', grants,
                        host->metric("ringway_budget_lease_grant_us_total") / std::max(grants, 1.0),
                        host->metric("ringway_budget_lease_waits_total"));
        }
        return tally.ok_count;
    }

    int64_t scalar(const std::string& sql) {
        Db db(host_a_.db_path());
        EXPECT_TRUE(db.ok()) << db.error();
        return db.scalar(sql);
    }

    // spend_nano and quota_used equal the sums of the key's rows, and every row was
    // committed against a lease: the hosts' committed parts sum to the spend.
    void expect_invariants(const Key& key, int64_t rows) {
        const std::string id = std::to_string(key.id);
        EXPECT_EQ(scalar("SELECT COUNT(*) FROM usage_logs WHERE key_id = " + id), rows);
        EXPECT_EQ(scalar("SELECT spend_nano - COALESCE((SELECT SUM(cost_nano) FROM usage_logs"
                         " WHERE key_id = " +
                         id + "), 0) FROM keys WHERE id = " + id),
                  0);
        EXPECT_EQ(scalar("SELECT quota_used - COALESCE((SELECT SUM(total_tokens) FROM usage_logs"
                         " WHERE key_id = " +
                         id + "), 0) FROM keys WHERE id = " + id),
                  0);
        EXPECT_EQ(scalar("SELECT spend_nano - COALESCE((SELECT SUM(committed_nano) FROM"
                         " budget_leases WHERE key_id = " +
                         id + "), 0) FROM keys WHERE id = " + id),
                  0);
        EXPECT_LE(scalar("SELECT spend_nano - budget_nano FROM keys WHERE id = " + id), 0);
    }

    // Waits until `rows` usage rows of the key are committed (bounded).
    void wait_rows(const Key& key, int64_t rows) {
        EXPECT_TRUE(poll_until(Deadline::after_ms(10000), [&] {
            return scalar("SELECT COUNT(*) FROM usage_logs WHERE key_id = " +
                          std::to_string(key.id)) == rows;
        }));
    }

    MockUpstream mock_;
    Gateway host_a_;
    Gateway host_b_;
};

TEST_F(PgLeasesTest, TwoHundredRequestsOverTwoHostsOnABudgetForTenReachTheMockAtMostTenTimes) {
    const EnvList env = {{"RINGWAY_BUDGET_LEASE_PERCENT", "30"}, {"RINGWAY_SHARDS", "2"}};
    ASSERT_NO_FATAL_FAILURE(start(env, env));
    const std::string body = exact_body();
    const Key key = budget_key(body, 10);
    const int served = burst_over_both(key, body, 10);
    host_a_.stop();
    host_b_.stop();
    expect_invariants(key, served);
}

// A lifetime token quota (period none) is leased like a budget: each host once counted it
// from keys.quota_used at its start, so two hosts served up to twice what was left.
TEST_F(PgLeasesTest,
       TwoHundredRequestsOverTwoHostsOnALifetimeQuotaForTenReachTheMockAtMostTenTimes) {
    const EnvList env = {{"RINGWAY_BUDGET_LEASE_PERCENT", "30"}, {"RINGWAY_SHARDS", "2"}};
    ASSERT_NO_FATAL_FAILURE(start(env, env));
    const std::string body = exact_body();
    const int64_t tokens =
        int64_t(body.size()) + exact_body_output_tokens;  // The mock's usage: the bound.
    const Key key = leased_key(R"("quota_tokens":)" + std::to_string(10 * tokens));
    const int served = burst_over_both(key, body, 10);
    host_a_.stop();
    host_b_.stop();
    const std::string id = std::to_string(key.id);
    EXPECT_EQ(scalar("SELECT COUNT(*) FROM usage_logs WHERE key_id = " + id), served);
    EXPECT_EQ(scalar("SELECT COUNT(DISTINCT request_id) FROM usage_logs WHERE key_id = " + id),
              served);
    EXPECT_EQ(scalar("SELECT quota_used FROM keys WHERE id = " + id), served * tokens);
    EXPECT_EQ(scalar("SELECT quota_used - COALESCE((SELECT SUM(total_tokens) FROM usage_logs"
                     " WHERE key_id = " +
                     id + "), 0) FROM keys WHERE id = " + id),
              0);
    // Every row was committed against a lease: the hosts' committed parts sum to the use.
    EXPECT_EQ(scalar("SELECT quota_used - COALESCE((SELECT SUM(committed_tokens) FROM"
                     " budget_leases WHERE key_id = " +
                     id + "), 0) FROM keys WHERE id = " + id),
              0);
    EXPECT_LE(scalar("SELECT quota_used - quota_limit FROM keys WHERE id = " + id), 0);
}

// The issue's deployment: two hosts on one PostgreSQL and one Redis. The budget is leased
// through PostgreSQL (200 requests, at most the ten it covers served) while an rpm is shared
// through Redis (each host alone would serve the whole rpm; together they keep to one, plus
// the advances); the rows and totals agree in PostgreSQL afterwards.
TEST_F(PgLeasesTest, TwoHostsOnOnePostgresAndOneRedisShareTheBudgetAndTheRpm) {
    if (const std::string why = redis_unavailable(); !why.empty()) {
        GTEST_SKIP() << why;
    }
    RedisServer redis;
    ASSERT_NO_FATAL_FAILURE(redis.start(closed_port()));
    const EnvList env = {{"RINGWAY_BUDGET_LEASE_PERCENT", "30"},
                         {"RINGWAY_SHARDS", "2"},
                         {"RINGWAY_REDIS", redis.url()}};
    ASSERT_NO_FATAL_FAILURE(start(env, env));
    for (Gateway* host : {&host_a_, &host_b_}) {
        ASSERT_TRUE(poll_until(Deadline::after_ms(20000),
                               [&] { return host->metric("ringway_redis_up") == 1; }));
    }
    const std::string body = exact_body();
    const Key budget = budget_key(body, 10);
    const int served = burst_over_both(budget, body, 10);

    constexpr int rpm = 10;
    const Key limited = leased_key("\"rpm\":" + std::to_string(rpm));
    ASSERT_NO_FATAL_FAILURE(mock_reset(mock_.port()));
    const auto started = Clock::now();
    int rpm_served[2] = {};
    for (int sent = 0; sent < 3 * rpm; sent++) {
        Gateway& host = sent % 2 == 0 ? host_a_ : host_b_;
        const Response response = host.chat(limited, body);
        if (response.status == 200) {
            rpm_served[sent % 2] += 1;
        } else {
            EXPECT_EQ(response.status, 429) << response.body;
            EXPECT_NE(response.body.find("rate_limit_exceeded"), std::string::npos)
                << response.body;
        }
    }
    const int rpm_total = rpm_served[0] + rpm_served[1];
    EXPECT_LE(rpm_total, redis_rpm_bound(rpm, 2, elapsed_ms(started)))
        << "served " << rpm_served[0] << " + " << rpm_served[1];
    EXPECT_GE(rpm_served[0], 1);
    EXPECT_GE(rpm_served[1], 1);
    EXPECT_EQ(mock_requests(mock_.port()), rpm_total);
    for (Gateway* host : {&host_a_, &host_b_}) {
        EXPECT_GT(host->metric("ringway_redis_batches_total"), 0);
        EXPECT_EQ(host->metric("ringway_redis_errors_total"), 0);
    }
    host_a_.stop();
    host_b_.stop();
    expect_invariants(budget, served);
    EXPECT_EQ(
        scalar("SELECT COUNT(*) FROM usage_logs WHERE key_id = " + std::to_string(limited.id)),
        rpm_total);
}

TEST_F(PgLeasesTest, AKilledHostsLeaseReturnsWithinItsTtlAndTheOtherHostSpendsIt) {
    // A leases the whole budget at once and never goes idle; its lease lives 1.5 s.
    const EnvList env = {{"RINGWAY_BUDGET_LEASE_PERCENT", "100"},
                         {"RINGWAY_BUDGET_LEASE_TTL_MS", "1500"},
                         {"RINGWAY_BUDGET_LEASE_IDLE_MS", "600000"}};
    ASSERT_NO_FATAL_FAILURE(start(env, env));
    const std::string body = exact_body();
    const Key key = budget_key(body, 4);
    const Response first = host_a_.chat(key, body);
    ASSERT_EQ(first.status, 200) << first.body << host_a_.ringway().stderr_text();
    // A holds the other three: B is refused.
    const Response refused = host_b_.chat(key, body);
    EXPECT_EQ(refused.status, 429) << refused.body;
    wait_rows(key, 1);  // A's row committed (it would be lost with A otherwise).
    host_a_.ringway().process().kill_and_reap();
    (void)wait_served(host_b_, key, body);
    // Exactly the three A held and never spent, then nothing.
    EXPECT_EQ(host_b_.chat(key, body).status, 200);
    EXPECT_EQ(host_b_.chat(key, body).status, 200);
    EXPECT_EQ(host_b_.chat(key, body).status, 429);
    EXPECT_EQ(mock_requests(mock_.port()), 4);
    host_b_.stop();
    expect_invariants(key, 4);
}

TEST_F(PgLeasesTest, ALeaseGivenBackOnIdleIsSpentByTheOtherHost) {
    // A's lease would live a minute; A gives back what it did not reserve after 300 ms idle.
    const EnvList env_a = {{"RINGWAY_BUDGET_LEASE_PERCENT", "100"},
                           {"RINGWAY_BUDGET_LEASE_TTL_MS", "60000"},
                           {"RINGWAY_BUDGET_LEASE_IDLE_MS", "300"}};
    const EnvList env_b = {{"RINGWAY_BUDGET_LEASE_PERCENT", "100"},
                           {"RINGWAY_BUDGET_LEASE_TTL_MS", "60000"},
                           {"RINGWAY_BUDGET_LEASE_IDLE_MS", "600000"}};
    ASSERT_NO_FATAL_FAILURE(start(env_a, env_b));
    const std::string body = exact_body();
    const Key key = budget_key(body, 3);
    ASSERT_EQ(host_a_.chat(key, body).status, 200);
    (void)wait_served(host_b_, key, body);
    EXPECT_GT(host_a_.metric("ringway_budget_lease_returned_nano_usd_total"), 0);
    EXPECT_EQ(host_b_.chat(key, body).status, 200);
    EXPECT_EQ(host_b_.chat(key, body).status, 429);  // B holds nothing more; A gave all back.
    EXPECT_EQ(host_a_.chat(key, body).status, 429);
    EXPECT_EQ(mock_requests(mock_.port()), 3);
    host_a_.stop();
    host_b_.stop();
    expect_invariants(key, 3);
}

// A strict key's limit on a host is what that host may still spend: its lease's ceiling
// less its own use, not the budget less its own use (which ignores what other hosts hold).
// A holds half the budget ($0.001 of $0.002); B's request without a limit waits for a
// grant, gets the other half (all that is free) and is sent with the output that half
// affords after its body. From B's own use the limit was RINGWAY_DEFAULT_OUTPUT_RESERVE
// (800), whose bound no grant could cover: 429.
TEST_F(PgLeasesTest, AStrictKeysLimitIsWhatItsHostsLeaseStillAffords) {
    const EnvList env = {{"RINGWAY_BUDGET_LEASE_PERCENT", "50"},
                         {"RINGWAY_BUDGET_LEASE_TTL_MS", "60000"},
                         {"RINGWAY_BUDGET_LEASE_IDLE_MS", "600000"},
                         {"RINGWAY_DEFAULT_OUTPUT_RESERVE", "800"}};
    ASSERT_NO_FATAL_FAILURE(start(env, env));
    const int64_t half_nano = 1000000;
    const Key key = leased_key(R"("strict":true,"budget_usd":")" + usd(2 * half_nano) + "\"");
    // A's request sets its own limit (strictness leaves it alone); its grant is a slice.
    ASSERT_EQ(host_a_.chat(key, exact_body()).status, 200);
    const std::string body = chat_body(
        "gpt-4o-mini", false, R"("x_mock":{"prompt-tokens":10,"obey-max-tokens":1,"chunks":3})");
    const Response served = host_b_.chat(key, body);
    ASSERT_EQ(served.status, 200) << served.body;
    const std::string sent = Json(mock_stats_text(mock_.port())).string("/last_request/body");
    EXPECT_EQ(member_value(sent, "max_tokens"),
              (half_nano - int64_t(body.size()) * input_nano) / output_nano)
        << sent;
    EXPECT_EQ(mock_requests(mock_.port()), 2);
}

}  // namespace
}  // namespace rw::test::proxy
