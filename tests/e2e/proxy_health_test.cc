// tests/e2e/proxy_health_test.cc — channel health shared by every shard, end to end:
// channel A's provider refuses its key (401) → the request still succeeds via B, A is down
// in the database and not tried again from any shard; A fixed → back within two backoffs
// through one live trial; a 429 with Retry-After: 2 skips A for about 2 s without taking
// it down; server failures past the window's count and ratio take it down; an operator's
// probe (API and CLI) brings a fixed channel back at once.
#include <chrono>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

using std::chrono::milliseconds;

class HealthTest : public ::testing::Test {
protected:
    void start(EnvList env) {
        start_mock(a_);
        start_mock(b_);
        env.emplace_back("RINGWAY_SHARDS", "2");
        gateway_.start(env);
        channel_a_ = create("a", a_.port(), 10);
        channel_b_ = create("b", b_.port(), 0);
        gateway_.wait_channels_routable();
        key_ = gateway_.create_key(R"({"name":"app"})");
        mock_reset(a_.port());
        mock_reset(b_.port());
    }

    int64_t create(const std::string& name, uint16_t port, int priority) {
        ChannelSpec spec;
        spec.name = name;
        spec.mock_port = port;
        spec.models = {"gpt-4o-mini"};
        spec.priority = priority;
        return gateway_.create_channel(spec);
    }

    // Replaces mock A's defaults ("" = answers normally again).
    void set_a(const std::string& defaults) {
        const auto response =
            http_exchange(a_.port(),
                          "POST /__mock/defaults HTTP/1.1\r\nHost: mock\r\nContent-Length: " +
                              std::to_string(defaults.size()) + "\r\n\r\n" + defaults,
                          Deadline::after_ms(5000));
        ASSERT_TRUE(response.has_value() && response->status == 200);
    }

    // A request on a new connection (connections spread over the shards).
    int chat() { return gateway_.chat(key_, chat_body("gpt-4o-mini", false)).status; }

    Row channel_row(int64_t id) {
        Db db(gateway_.db_path());
        const std::vector<Row> rows =
            db.query("SELECT * FROM channels WHERE id = " + std::to_string(id));
        return rows.empty() ? Row{} : rows[0];
    }
    bool wait_db_state(int64_t id, const std::string& state, int64_t timeout_ms = 5000) {
        return poll_until(Deadline::after_ms(timeout_ms),
                          [&] { return channel_row(id)["health_state"] == state; });
    }
    Json admin_channel(int64_t id) {
        return Json(gateway_.admin("GET", "/admin/channels/" + std::to_string(id)).body);
    }

    MockUpstream a_;
    MockUpstream b_;
    Gateway gateway_;
    int64_t channel_a_ = 0;
    int64_t channel_b_ = 0;
    Key key_;
};

TEST_F(HealthTest, AuthRefusalDisablesAtOnceAndNoShardTriesItAgain) {
    start({{"RINGWAY_CHANNEL_BACKOFF_MS", "60000"}});
    set_a("status=401");
    ASSERT_EQ(chat(), 200);  // A refused the key; the same request went on to B.
    EXPECT_EQ(mock_requests(a_.port()), 1);
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(as_int(rows[0], "attempts"), 2);
    EXPECT_EQ(as_int(rows[0], "channel_id"), channel_b_);

    ASSERT_TRUE(wait_db_state(channel_a_, "down")) << describe_row(channel_row(channel_a_));
    const Row row = channel_row(channel_a_);
    EXPECT_EQ(row.at("health_reason"), "auth");
    EXPECT_EQ(row.at("health_error"), "HTTP 401");
    EXPECT_GT(std::stoll(row.at("health_since_ms")), 0);
    EXPECT_EQ(row.at("enabled"), "1");  // The operator's switch is untouched.

    for (int i = 0; i < 24; i++) {  // New connections: both shards take some.
        ASSERT_EQ(chat(), 200);
    }
    EXPECT_EQ(mock_requests(a_.port()), 1);
    EXPECT_EQ(mock_requests(b_.port()), 25);

    Json json = admin_channel(channel_a_);
    EXPECT_EQ(json.string("/health/state"), "down");
    EXPECT_EQ(json.string("/health/reason"), "auth");
    EXPECT_EQ(json.string("/health/last_error"), "HTTP 401");
    EXPECT_GT(json.integer("/health/since"), 0);
    const std::string metrics = gateway_.metrics();
    EXPECT_EQ(
        metric_value(metrics, "ringway_channel_up", {{"channel", std::to_string(channel_a_)}}), 0);
    EXPECT_EQ(metric_value(metrics, "ringway_channel_health_transitions_total", {{"to", "down"}}),
              1);
}

TEST_F(HealthTest, FixedChannelIsBackWithinTwoBackoffsThroughOneTrial) {
    constexpr int64_t backoff_ms = 1000;
    start({{"RINGWAY_CHANNEL_BACKOFF_MS", std::to_string(backoff_ms)},
           {"RINGWAY_CHANNEL_BACKOFF_MAX_MS", "8000"}});
    set_a("status=401");
    ASSERT_EQ(chat(), 200);
    ASSERT_TRUE(wait_db_state(channel_a_, "down"));
    set_a("");  // The provider accepts the key again.
    const auto fixed_at = Clock::now();
    const bool is_back = poll_until(Deadline::after_ms(4 * backoff_ms), [&] {
        EXPECT_EQ(chat(), 200);
        return mock_requests(a_.port()) >= 2;  // The trial reached A.
    });
    ASSERT_TRUE(is_back);
    EXPECT_LE(elapsed_ms(fixed_at), 2 * backoff_ms);
    ASSERT_TRUE(wait_db_state(channel_a_, "up"));
    // Up again: A leads by priority.
    const int64_t before = mock_requests(a_.port());
    ASSERT_EQ(chat(), 200);
    EXPECT_EQ(mock_requests(a_.port()), before + 1);
    EXPECT_EQ(admin_channel(channel_a_).string("/health/state"), "up");
    EXPECT_EQ(metric_value(gateway_.metrics(), "ringway_channel_health_transitions_total",
                           {{"to", "up"}}),
              1);
}

TEST_F(HealthTest, RetryAfterSkipsTheChannelForAboutThatLongWithoutDisablingIt) {
    start({});
    set_a("status=429\nretry-after=2");
    const auto limited_at = Clock::now();
    ASSERT_EQ(chat(), 200);  // 429 from A, retried on B.
    ASSERT_EQ(mock_requests(a_.port()), 1);
    set_a("");
    EXPECT_EQ(admin_channel(channel_a_).string("/health/state"), "rate_limited");
    const bool is_back = poll_until(Deadline::after_ms(6000), [&] {
        EXPECT_EQ(chat(), 200);
        return mock_requests(a_.port()) >= 2;
    });
    ASSERT_TRUE(is_back);
    const int64_t skipped_ms = elapsed_ms(limited_at);
    EXPECT_GE(skipped_ms, 1900);
    EXPECT_LE(skipped_ms, 3500);
    EXPECT_EQ(channel_row(channel_a_).at("health_state"), "up");
    EXPECT_EQ(metric_value(gateway_.metrics(), "ringway_channel_health_transitions_total",
                           {{"to", "down"}}),
              0);
}

TEST_F(HealthTest, ServerFailuresPastCountAndRatioDisable) {
    start({{"RINGWAY_CHANNEL_FAILURE_MIN", "3"},
           {"RINGWAY_CHANNEL_FAILURE_PERCENT", "50"},
           {"RINGWAY_CHANNEL_BACKOFF_MS", "60000"}});
    set_a("status=503");
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(chat(), 200);
    }
    EXPECT_EQ(admin_channel(channel_a_).string("/health/state"), "up");  // Two: below the count.
    ASSERT_EQ(chat(), 200);
    ASSERT_TRUE(wait_db_state(channel_a_, "down"));
    EXPECT_EQ(channel_row(channel_a_).at("health_reason"), "server");
    EXPECT_EQ(channel_row(channel_a_).at("health_error"), "HTTP 503");
    ASSERT_EQ(chat(), 200);
    EXPECT_EQ(mock_requests(a_.port()), 3);
}

TEST_F(HealthTest, ProbeNowFromTheApiAndTheCli) {
    start({{"RINGWAY_CHANNEL_BACKOFF_MS", "60000"}});
    set_a("status=401");
    const std::string path = "/admin/channels/" + std::to_string(channel_a_) + "/test";
    Json refused(gateway_.admin("POST", path).body);
    EXPECT_EQ(refused.string("/result"), "failed") << refused.text();
    EXPECT_EQ(refused.integer("/status"), 401);
    EXPECT_EQ(refused.string("/state"), "down");
    ASSERT_TRUE(wait_db_state(channel_a_, "down"));
    EXPECT_EQ(mock_requests(b_.port()), 0);

    set_a("");
    Process cli;
    SpawnOptions options;
    options.program = ringway_path();
    options.args = {"channel", "test", std::to_string(channel_a_)};
    options.env = {{"RINGWAY_ADMIN_TOKEN", std::string(admin_token)},
                   {"RINGWAY_ADMIN_LISTEN",
                    "127.0.0.1:" + std::to_string(admin_port_of(gateway_.ringway().ready_line()))}};
    std::string error;
    ASSERT_TRUE(cli.start(options, &error)) << error;
    const auto status = cli.wait_exit(Deadline::after_ms(20000));
    ASSERT_TRUE(status.has_value() && status->is_exited && status->code == 0)
        << cli.output(Stream::err);
    EXPECT_NE(cli.output(Stream::out).find("ok"), std::string::npos) << cli.output(Stream::out);
    EXPECT_EQ(admin_channel(channel_a_).string("/health/state"), "up");
    ASSERT_TRUE(wait_db_state(channel_a_, "up"));
    // The probe asked for the model list with the channel's key, nothing billable.
    Json stats(mock_stats_text(a_.port()));
    EXPECT_EQ(stats.string("/last_request/path"), "/v1/models");
    EXPECT_EQ(stats.string("/last_request/headers/authorization"),
              "Bearer " + std::string(upstream_key));
}

}  // namespace
}  // namespace rw::test::proxy
