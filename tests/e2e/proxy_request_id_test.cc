// tests/e2e/proxy_request_id_test.cc — request ids end to end: every answer (proxied or
// refused, whole or streamed) carries ringway's x-request-id; the client's x-request-id
// and traceparent reach the upstream and the usage row; the provider's request id is on
// the row; GET /admin/logs?request_id= and `ringway logs --request ID` find the row by
// ringway's, the client's or the provider's id.
#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

constexpr std::string_view client_id = "client-trace-0042";
constexpr std::string_view traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

class RequestIdTest : public ::testing::Test {
protected:
    void SetUp() override {
        start_mock(mock_);
        gateway_.start({{"RINGWAY_SHARDS", "1"}});
        ChannelSpec spec;
        spec.name = "main";
        spec.mock_port = mock_.port();
        spec.models = {"gpt-4o-mini"};
        gateway_.create_channel(spec);
        gateway_.wait_channels_routable();
        key_ = gateway_.create_key(R"({"name":"app"})");
    }

    MockUpstream mock_;
    Gateway gateway_;
    Key key_;
};

bool is_ringway_id(const std::optional<std::string>& id) {
    return id.has_value() && std::regex_match(*id, std::regex("rw-[0-9]+-[0-9a-f]+-[0-9a-f]+"));
}

TEST_F(RequestIdTest, WholeAnswerCarriesIdsToUpstreamRowAndLookups) {
    const std::string headers = "x-request-id: " + std::string(client_id) +
                                "\r\ntraceparent: " + std::string(traceparent) + "\r\n";
    const Response response = gateway_.call(post_request(
        "/v1/chat/completions", chat_body("gpt-4o-mini", false), key_.secret, headers));
    ASSERT_EQ(response.status, 200) << response.body;
    const std::optional<std::string> id = response.header("x-request-id");
    ASSERT_TRUE(is_ringway_id(id)) << id.value_or("<none>");
    EXPECT_EQ(response.header_count("x-request-id"), 1u);

    Json stats(mock_stats_text(mock_.port()));
    EXPECT_EQ(stats.string("/last_request/headers/x-request-id"), client_id) << stats.text();
    EXPECT_EQ(stats.string("/last_request/headers/traceparent"), traceparent);

    const std::vector<Row> rows =
        wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(10000));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].at("request_id"), *id);
    EXPECT_EQ(rows[0].at("client_request_id"), client_id);
    EXPECT_EQ(rows[0].at("traceparent"), traceparent);
    const std::string upstream_id = rows[0].at("upstream_request_id");
    EXPECT_TRUE(upstream_id.starts_with("req_mock")) << describe_row(rows[0]);

    for (const std::string& lookup : {*id, std::string(client_id), upstream_id}) {
        const Response found = gateway_.admin("GET", "/admin/logs?request_id=" + lookup);
        ASSERT_EQ(found.status, 200) << found.body;
        Json json(found.body);
        ASSERT_EQ(json.array_size("/data"), 1u) << lookup << ": " << found.body;
        EXPECT_EQ(json.string("/data/0/request_id"), *id);
        EXPECT_EQ(json.string("/data/0/upstream_request_id"), upstream_id);
    }
    EXPECT_EQ(
        Json(gateway_.admin("GET", "/admin/logs?request_id=rw-9-0-0").body).array_size("/data"),
        0u);

    // The CLI, as an operator types it, against the running server.
    Process cli;
    SpawnOptions options;
    options.program = ringway_path();
    options.args = {"logs", "--request", *id};
    options.env = {{"RINGWAY_ADMIN_TOKEN", std::string(admin_token)},
                   {"RINGWAY_ADMIN_LISTEN",
                    "127.0.0.1:" + std::to_string(admin_port_of(gateway_.ringway().ready_line()))}};
    std::string error;
    ASSERT_TRUE(cli.start(options, &error)) << error;
    const auto status = cli.wait_exit(Deadline::after_ms(20000));
    ASSERT_TRUE(status.has_value() && status->is_exited && status->code == 0)
        << cli.output(Stream::err);
    EXPECT_NE(cli.output(Stream::out).find(*id), std::string::npos) << cli.output(Stream::out);
}

TEST_F(RequestIdTest, StreamedAnswerCarriesTheId) {
    const std::string raw_request =
        post_request("/v1/chat/completions", chat_body("gpt-4o-mini", true), key_.secret);
    const Response response = gateway_.call(raw_request);
    ASSERT_EQ(response.status, 200) << response.body;
    EXPECT_TRUE(response.is_chunked);
    EXPECT_TRUE(is_ringway_id(response.header("x-request-id")));
    // No client ids: none is invented for the upstream or the row.
    Json stats(mock_stats_text(mock_.port()));
    EXPECT_FALSE(stats.has("/last_request/headers/traceparent"));
    const std::vector<Row> rows =
        wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(10000));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].at("request_id"), response.header("x-request-id").value_or(""));
    EXPECT_EQ(rows[0].at("client_request_id"), "");
}

TEST_F(RequestIdTest, RefusalsCarryDistinctIds) {
    const Response bad_key = gateway_.call(
        post_request("/v1/chat/completions", chat_body("gpt-4o-mini", false), "sk-rw-wrong"));
    EXPECT_EQ(bad_key.status, 401);
    const Response bad_method = gateway_.call(get_request("/v1/chat/completions"));
    EXPECT_EQ(bad_method.status, 405);
    const Response models = gateway_.call(get_with_key("/v1/models", key_.secret));
    EXPECT_EQ(models.status, 200);
    EXPECT_TRUE(is_ringway_id(bad_key.header("x-request-id")));
    EXPECT_TRUE(is_ringway_id(bad_method.header("x-request-id")));
    EXPECT_TRUE(is_ringway_id(models.header("x-request-id")));
    EXPECT_NE(bad_key.header("x-request-id"), bad_method.header("x-request-id"));
}

TEST_F(RequestIdTest, MalformedClientIdsAreNeitherPassedNorRecorded) {
    const std::string headers =
        "x-request-id: " + std::string(100, 'x') + "\r\ntraceparent: 00-not-a-trace\r\n";
    const Response response = gateway_.call(post_request(
        "/v1/chat/completions", chat_body("gpt-4o-mini", false), key_.secret, headers));
    ASSERT_EQ(response.status, 200) << response.body;
    Json stats(mock_stats_text(mock_.port()));
    EXPECT_FALSE(stats.has("/last_request/headers/x-request-id"));
    EXPECT_FALSE(stats.has("/last_request/headers/traceparent"));
    const std::vector<Row> rows =
        wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(10000));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].at("client_request_id"), "");
    EXPECT_EQ(rows[0].at("traceparent"), "");
}

}  // namespace
}  // namespace rw::test::proxy
