// tests/e2e/pg_outage_test.cc — a ringway on PostgreSQL while PostgreSQL stops and starts
// again (README, Running several hosts, Failure modes). The test runs its own throwaway
// server (tests/support/pg_server.sh start / pause / resume / stop in a temporary
// directory), so the server the other pg. suites share stays up. While PostgreSQL is down
// (`pg_ctl stop -m fast`): a key without limits is served from the snapshot in memory; a
// key with a money budget or a lifetime token quota is served only from what its host's
// lease still holds, then refused with 429 insufficient_quota, and once its lease can no
// longer be live it is refused though the lease had room (fails closed); the writer keeps
// its failed batches. Started again: every row is committed exactly once (rows = requests
// that reached the mock, no request id twice) and each key's quota_used and spend_nano
// equal the sums of daily_usage (the startup invariant). One host: a second would only
// repeat the first's behaviour against the same stopped server.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

// A host spends a lease for three quarters of the TTL after the grant or renewal that
// started last (its own clock): 15 s, long enough for the outage's requests on a loaded
// machine, short enough to wait out.
constexpr int64_t lease_ttl_ms = 20000;
constexpr int64_t lease_spendable_ms = lease_ttl_ms - lease_ttl_ms / 4;

// tests/support/pg_server.sh `command` on this test's own server; true on success.
bool pg_server(const std::string& command, const std::string& info) {
    const std::string line = std::string(RW_PG_SERVER_SCRIPT) + " " + command + " " + info;
    return std::system(line.c_str()) == 0;
}

std::string first_line(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

class PgOutageTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (!pg_test_enabled()) {
            GTEST_SKIP() << "needs RW_TEST_PG (ctest runs it with PostgreSQL installed)";
        }
        info_ = dir_.path() + "/server";
        (void)pg_server("start", info_);
        const std::string url = first_line(info_ + "/url");
        if (url.empty()) {
            GTEST_SKIP() << "no PostgreSQL server of its own: "
                         << first_line(info_ + "/unavailable");
        }
        std::vector<Row> rows;
        std::string error;
        ASSERT_TRUE(pg_query(url + "/postgres", "CREATE DATABASE rw_outage", rows, error)) << error;
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_));
        // Commits fail all through the outage: new requests are not refused for it here
        // (RINGWAY_WRITER_STALL_MS, 2 s by default, would answer 503 after that long).
        ASSERT_NO_FATAL_FAILURE(
            host_.start({{"RINGWAY_DB", url + "/rw_outage"},
                         {"RINGWAY_BUDGET_LEASE_PERCENT", "25"},
                         {"RINGWAY_BUDGET_LEASE_TTL_MS", std::to_string(lease_ttl_ms)},
                         {"RINGWAY_BUDGET_LEASE_IDLE_MS", "600000"},
                         {"RINGWAY_WRITER_STALL_MS", "600000"}}));
        ASSERT_NO_FATAL_FAILURE(priced_channel(host_, mock_.port()));
        ASSERT_NO_FATAL_FAILURE(mock_reset(mock_.port()));
    }

    void TearDown() override {
        if (!info_.empty()) {
            (void)pg_server("stop", info_);
        }
    }

    int64_t scalar(const std::string& sql) { return Db(host_.db_path()).scalar(sql); }

    // `count` requests of `key` one after the other: how many were served; every other
    // answer must be 429 insufficient_quota.
    int served_of(const Key& key, const std::string& body, int count) {
        int served = 0;
        for (int sent = 0; sent < count; sent++) {
            const Response answer = host_.chat(key, body);
            if (answer.status == 200) {
                served += 1;
                continue;
            }
            EXPECT_EQ(answer.status, 429) << answer.body;
            EXPECT_NE(answer.body.find("insufficient_quota"), std::string::npos) << answer.body;
        }
        return served;
    }

    TempDir dir_;
    std::string info_;
    MockUpstream mock_;
    Gateway host_;
};

TEST_F(PgOutageTest, ServedFromSnapshotAndLeasesWhileDownThenEveryRowCommittedOnce) {
    const std::string body = exact_body();
    const int64_t tokens = int64_t(body.size()) + exact_body_output_tokens;
    const int64_t cost = int64_t(body.size()) * 1000 + exact_body_output_tokens * 2000;
    // Each limited key covers 20 requests; its host leases a quarter, 5, at a time.
    const Key open = host_.create_key(R"({"name":"open"})");
    const Key budget =
        host_.create_key(R"({"name":"budget","budget_usd":")" + usd(20 * cost) + "\"}");
    const Key quota =
        host_.create_key(R"({"name":"quota","quota_tokens":)" + std::to_string(20 * tokens) + "}");
    for (const Key* key : {&open, &budget, &quota}) {
        const Response answer = host_.chat(*key, body);
        ASSERT_EQ(answer.status, 200) << answer.body;
    }
    const std::string keys = "(" + std::to_string(open.id) + ", " + std::to_string(budget.id) +
                             ", " + std::to_string(quota.id) + ")";
    const std::string rows_sql = "SELECT COUNT(*) FROM usage_logs WHERE key_id IN " + keys;
    ASSERT_TRUE(poll_until(Deadline::after_ms(10000), [&] { return scalar(rows_sql) == 3; }));

    ASSERT_TRUE(pg_server("pause", info_));
    // No renewal can succeed from here on: every lease stops being spendable by then.
    const auto leases_dead =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(lease_spendable_ms + 500);
    EXPECT_EQ(served_of(open, body, 3), 3);
    // The budget's lease holds the four requests left of its slice, then fails closed:
    // no grant is possible, though the key's budget has fifteen more.
    EXPECT_EQ(served_of(budget, body, 8), 4);
    EXPECT_EQ(served_of(quota, body, 1), 1);  // Its lease: three more left.
    EXPECT_TRUE(poll_until(Deadline::after_ms(10000),
                           [&] { return host_.metric("ringway_writer_commit_errors_total") > 0; }));
    EXPECT_EQ(host_.metric("ringway_writer_stalled"), 1);
    EXPECT_GT(host_.metric("ringway_budget_lease_grant_failures_total"), 0);
    // Waiting out a clock, not an event: past it no lease of this host can be live, so the
    // quota key is refused with room left in its lease; the open key is still served.
    std::this_thread::sleep_until(leases_dead);
    EXPECT_EQ(served_of(quota, body, 1), 0);
    EXPECT_EQ(served_of(open, body, 1), 1);

    ASSERT_TRUE(pg_server("resume", info_));
    // A grant is possible again (the first ask may find the lease thread reconnecting).
    (void)wait_served(host_, quota, body);
    const int64_t reached = mock_requests(mock_.port());
    EXPECT_EQ(reached, 3 + 3 + 4 + 1 + 1 + 1);
    EXPECT_TRUE(poll_until(Deadline::after_ms(30000), [&] { return scalar(rows_sql) == reached; }))
        << scalar(rows_sql) << " rows of " << reached << "\n"
        << host_.ringway().stderr_text();
    host_.stop();
    EXPECT_EQ(scalar(rows_sql), reached);
    EXPECT_EQ(scalar("SELECT COUNT(DISTINCT request_id) FROM usage_logs WHERE key_id IN " + keys),
              reached);
    // The startup invariant over every key, and the limits kept.
    EXPECT_EQ(scalar("SELECT COUNT(*) FROM keys k WHERE k.quota_used <> COALESCE((SELECT"
                     " SUM(total_tokens) FROM daily_usage d WHERE d.key_id = k.id), 0) OR"
                     " k.spend_nano <> COALESCE((SELECT SUM(cost_nano) FROM daily_usage d"
                     " WHERE d.key_id = k.id), 0)"),
              0);
    EXPECT_EQ(scalar("SELECT quota_used FROM keys WHERE id = " + std::to_string(quota.id)),
              3 * tokens);
    EXPECT_EQ(scalar("SELECT spend_nano FROM keys WHERE id = " + std::to_string(budget.id)),
              5 * cost);
}

}  // namespace
}  // namespace rw::test::proxy
