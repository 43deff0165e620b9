// tests/e2e/pg_hosts_test.cc — two ringways on loopback sharing one PostgreSQL database
// (RW_TEST_PG: the throwaway server of tests/support/pg_server.sh; without one this suite
// skips and says why). A catalog write on one host reaches the other through LISTEN/NOTIFY
// and its snapshot reload, without a restart: a key revoked on A is refused on B at B's
// next request once B has reloaded, an alias made on A is served by B; usage served by both lands
// in the one database with the quota invariant holding over both hosts' rows.
#include <gtest/gtest.h>

#include <string>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

class PgHostsTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (!pg_test_enabled()) {
            GTEST_SKIP() << "needs RW_TEST_PG (ctest runs it with a throwaway PostgreSQL)";
        }
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_));
        ASSERT_NO_FATAL_FAILURE(host_a_.start({}));
        ChannelSpec spec;
        spec.name = "main";
        spec.mock_port = mock_.port();
        spec.models = {"gpt-4o-mini"};
        ASSERT_GT(host_a_.create_channel(spec), 0);
        ASSERT_EQ(host_a_.wait_channels_routable().at("main").status, 200);
        // B: the same database; its own local lock and spill file (its temp dir).
        ASSERT_NO_FATAL_FAILURE(host_b_.start({{"RINGWAY_DB", host_a_.db_path()}}));
    }

    // B's snapshot reloads caused by notifications so far (its log lines).
    size_t reloads_b() {
        return host_b_.ringway()
            .process()
            .lines_containing(Stream::err, "catalog: reloaded")
            .size();
    }

    // B's answer to `key` once it is `status` (B has reloaded after A's notification; the
    // reload log line alone cannot say which notification it followed), polling for up to
    // 10 s; the last answer otherwise. A refused poll reaches no upstream (no usage row).
    Response wait_b_answers(const Key& key, const std::string& body, int status) {
        Response response;
        (void)poll_until(Deadline::after_ms(10000), [&] {
            response = host_b_.chat(key, body);
            return response.status == status;
        });
        return response;
    }

    MockUpstream mock_;
    Gateway host_a_;
    Gateway host_b_;
};

TEST_F(PgHostsTest, KeyRevokedOnOneHostIsRefusedOnTheOtherAtItsNextRequest) {
    const std::string body = chat_body("gpt-4o-mini", false);
    const Key key = host_a_.create_key(R"({"name":"shared"})");
    // B never saw the key's creation but through the notification (it started earlier).
    const Response served_b = wait_b_answers(key, body, 200);
    ASSERT_EQ(served_b.status, 200) << served_b.body << host_b_.ringway().stderr_text();
    ASSERT_GT(reloads_b(), 0u);
    ASSERT_EQ(host_a_.chat(key, body).status, 200);

    const Response revoked = host_a_.admin("DELETE", "/admin/keys/" + std::to_string(key.id));
    ASSERT_EQ(revoked.status, 200) << revoked.body;
    const Response refused_b = wait_b_answers(key, body, 401);
    EXPECT_EQ(refused_b.status, 401) << refused_b.body;
    EXPECT_EQ(host_a_.chat(key, body).status, 401);
}

TEST_F(PgHostsTest, AliasCreatedOnOneHostIsServedOnTheOtherAfterItsNotification) {
    const Key key = host_a_.create_key(R"({"name":"alias-user"})");
    const std::string known_body = chat_body("gpt-4o-mini", false);
    ASSERT_EQ(wait_b_answers(key, known_body, 200).status, 200);
    const std::string body = chat_body("fast", false);
    // Not an alias yet: no channel serves "fast" on B.
    EXPECT_NE(host_b_.chat(key, body).status, 200);
    const Response created =
        host_a_.admin("POST", "/admin/aliases", R"({"name":"fast","models":["gpt-4o-mini"]})");
    ASSERT_EQ(created.status, 201) << created.body;
    const Response served_b = wait_b_answers(key, body, 200);
    ASSERT_EQ(served_b.status, 200) << served_b.body;
    // The mock echoes the model it was sent: the alias's one model.
    EXPECT_EQ(Json(served_b.body).string("/model"), "gpt-4o-mini");
}

TEST_F(PgHostsTest, BothHostsRowsLandInTheOneDatabaseAndTheInvariantHolds) {
    const std::string body = chat_body("gpt-4o-mini", false, R"("x_mock":{"prompt-tokens":7})");
    const Key key = host_a_.create_key(R"({"name":"both"})");
    // B's first 200 is the first of its five rows.
    ASSERT_EQ(wait_b_answers(key, body, 200).status, 200);
    for (int i = 0; i < 9; i++) {
        ASSERT_EQ(((i % 2) == 0 ? host_a_ : host_b_).chat(key, body).status, 200);
    }
    host_a_.stop();
    host_b_.stop();
    Db db(host_a_.db_path());
    ASSERT_TRUE(db.ok()) << db.error();
    const std::string id = std::to_string(key.id);
    EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM usage_logs WHERE key_id = " + id), 10);
    EXPECT_GT(db.scalar("SELECT quota_used FROM keys WHERE id = " + id), 70);
    EXPECT_EQ(db.scalar("SELECT quota_used - (SELECT SUM(total_tokens) FROM usage_logs"
                        " WHERE key_id = " +
                        id + ") FROM keys WHERE id = " + id),
              0);
    EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM keys AS k LEFT JOIN (SELECT key_id,"
                        " SUM(total_tokens) AS used, SUM(cost_nano) AS spent FROM daily_usage"
                        " GROUP BY key_id) AS u ON u.key_id = k.id WHERE k.quota_used !="
                        " COALESCE(u.used, 0) OR k.spend_nano != COALESCE(u.spent, 0)"),
              0)
        << db.error();
}

}  // namespace
}  // namespace rw::test::proxy
