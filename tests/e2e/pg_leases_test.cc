// tests/e2e/pg_leases_test.cc — budget leases (storage/budget_lease.h): two ringways on
// loopback sharing one PostgreSQL (RW_TEST_PG, tests/support/pg_server.sh; without one this
// suite skips and says why) keep a key's money budget exact across both. Every request
// here costs exactly its reservation (prompt tokens = the body's bytes, completion tokens =
// its max_tokens), so a budget of ten reservations lets ten requests through in all, never
// more: 200 requests spread over both hosts reach the mock at most ten times and
// PostgreSQL's totals agree with the rows; a host killed with its lease is replaced by the
// other host once the lease's TTL passed; a lease given back on idle is spent by the other.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

constexpr int64_t input_nano = 1000;   // $1 per million input tokens.
constexpr int64_t output_nano = 2000;  // $2 per million output tokens.
constexpr int64_t max_tokens = 8;

std::string usd(int64_t nano) {
    char text[48];
    std::snprintf(text, sizeof(text), "%lld.%09lld", (long long)(nano / 1000000000),
                  (long long)(nano % 1000000000));
    return text;
}

// A body whose mock usage is exactly its reservation: prompt tokens = its byte count (a
// three-digit number written over the placeholder of the same width), `max_tokens` chunks.
std::string exact_body() {
    const std::string templ = chat_body(
        "gpt-4o-mini", false, R"("x_mock":{"prompt-tokens":999,"chunks":8},"max_tokens":8)");
    std::string body = templ;
    const std::string size = std::to_string(templ.size());
    EXPECT_EQ(size.size(), 3u);
    body.replace(body.find("999"), 3, size);
    return body;
}

int64_t cost_nano(const std::string& body) {
    return int64_t(body.size()) * input_nano + max_tokens * output_nano;
}

class PgLeasesTest : public ::testing::Test {
protected:
    void start(const EnvList& env_a, const EnvList& env_b) {
        if (!pg_test_enabled()) {
            GTEST_SKIP() << "needs RW_TEST_PG (ctest runs it with a throwaway PostgreSQL)";
        }
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_));
        ASSERT_NO_FATAL_FAILURE(host_a_.start(env_a));
        ChannelSpec spec;
        spec.name = "main";
        spec.mock_port = mock_.port();
        spec.models = {"gpt-4o-mini"};
        ASSERT_GT(host_a_.create_channel(spec), 0);
        ASSERT_EQ(host_a_.wait_channels_routable().at("main").status, 200);
        const Response price = host_a_.admin(
            "POST", "/admin/prices",
            R"({"model":"gpt-4o-mini","input_per_mtok":"1","output_per_mtok":"2","effective_from":0})");
        ASSERT_EQ(price.status, 201) << price.body;
        EnvList b = env_b;
        b.emplace_back("RINGWAY_DB", host_a_.db_path());
        ASSERT_NO_FATAL_FAILURE(host_b_.start(b));
        ASSERT_NO_FATAL_FAILURE(mock_reset(mock_.port()));
    }

    // A key with a budget of `count` requests, once B knows it (B's first answer is a 200
    // or a 429, never the 401 of a key it has not loaded yet). No request reaches the mock.
    Key budget_key(const std::string& body, int64_t count) {
        const Key key = host_a_.create_key(R"({"name":"leased","budget_usd":")" +
                                           usd(count * cost_nano(body)) + "\"}");
        const std::string unpriced = chat_body("not-served", false);
        EXPECT_TRUE(poll_until(Deadline::after_ms(10000),
                               [&] { return host_b_.chat(key, unpriced).status != 401; }));
        return key;
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
    std::atomic<int> ok_count{0};
    std::atomic<int> refused_count{0};
    std::atomic<int> other_count{0};
    std::vector<std::thread> clients;
    for (int client = 0; client < 8; client++) {
        clients.emplace_back([&, client] {
            for (int sent = 0; sent < 25; sent++) {
                Gateway& host = (client + sent) % 2 == 0 ? host_a_ : host_b_;
                const auto response = http_exchange(
                    host.port(), post_request("/v1/chat/completions", body, key.secret),
                    Deadline::after_ms(20000));
                if (!response.has_value()) {
                    other_count += 1;
                } else if (response->status == 200) {
                    ok_count += 1;
                } else if (response->status == 429 &&
                           response->body.find("insufficient_quota") != std::string::npos) {
                    refused_count += 1;
                } else {
                    other_count += 1;
                }
            }
        });
    }
    for (std::thread& client : clients) {
        client.join();
    }
    EXPECT_EQ(other_count.load(), 0);
    EXPECT_EQ(ok_count.load() + refused_count.load(), 200);
    std::printf("served %d of 200 (budget: 10)\n", ok_count.load());
    EXPECT_GE(ok_count.load(), 1);
    EXPECT_LE(ok_count.load(), 10);
    EXPECT_EQ(mock_requests(mock_.port()), ok_count.load());
    for (Gateway* host : {&host_a_, &host_b_}) {
        const double grants = host->metric("ringway_budget_lease_grants_total");
        EXPECT_GE(grants, 1);
        std::printf("host %c: %.0f grants, %.0f us per grant, %.0f waits\n",
                    host == &host_a_ ? 'A' : 'B', grants,
                    host->metric("ringway_budget_lease_grant_us_total") / std::max(grants, 1.0),
                    host->metric("ringway_budget_lease_waits_total"));
    }
    host_a_.stop();
    host_b_.stop();
    expect_invariants(key, ok_count.load());
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
    Response served;
    EXPECT_TRUE(poll_until(Deadline::after_ms(30000),
                           [&] {
                               served = host_b_.chat(key, body);
                               return served.status == 200;
                           }))
        << served.status << " " << served.body;
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
    Response served;
    EXPECT_TRUE(poll_until(Deadline::after_ms(30000),
                           [&] {
                               served = host_b_.chat(key, body);
                               return served.status == 200;
                           }))
        << served.status << " " << served.body;
    EXPECT_GT(host_a_.metric("ringway_budget_lease_returned_nano_usd_total"), 0);
    EXPECT_EQ(host_b_.chat(key, body).status, 200);
    EXPECT_EQ(host_b_.chat(key, body).status, 429);  // B holds nothing more; A gave all back.
    EXPECT_EQ(host_a_.chat(key, body).status, 429);
    EXPECT_EQ(mock_requests(mock_.port()), 3);
    host_a_.stop();
    host_b_.stop();
    expect_invariants(key, 3);
}

}  // namespace
}  // namespace rw::test::proxy
