// tests/e2e/proxy_retry_test.cc — retries before the first byte (RULES §6): a 429/5xx
// answer or a refused connect moves the request to the next channel, and the attempts are
// counted three ways (the mocks' request counters, the usage row's attempts, the
// upstream_requests/retries metrics). A refusal on the last channel is relayed; nothing is
// retried once a stream has started or when a fresh connection closed after the request
// was sent (the upstream may have acted on it); RINGWAY_RETRIES bounds the attempts; a
// channel failing three times in a row cools down. One shard, so channel health (kept per
// shard) is deterministic.
#include <gtest/gtest.h>

#include <string>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

class ProxyRetryTest : public ::testing::Test {
protected:
    // A refusing mock (every answer `refusal_status`) and a healthy one.
    void start_mocks(int refusal_status = 503) {
        ASSERT_NO_FATAL_FAILURE(
            start_mock(refusing_, {"status=" + std::to_string(refusal_status)}));
        ASSERT_NO_FATAL_FAILURE(start_mock(healthy_));
    }
    void start_gateway(EnvList env = {}) {
        env.emplace_back("RINGWAY_SHARDS", "1");
        ASSERT_NO_FATAL_FAILURE(gateway_.start(env));
        key_ = gateway_.create_key(R"({"name":"app"})");
    }
    // Priority 10 (tried first) on `first_port` (a mock or a closed port), priority 0 on
    // the healthy mock. "solo-model" is served by the first channel only.
    void two_channels(const std::string& first_base_url) {
        ChannelSpec first;
        first.name = "first";
        first.base_url = first_base_url;
        first.models = {"gpt-4o-mini", "solo-model"};
        first.priority = 10;
        first_id_ = gateway_.create_channel(first);
        ChannelSpec second;
        second.name = "second";
        second.mock_port = healthy_.port();
        second.models = {"gpt-4o-mini"};
        second_id_ = gateway_.create_channel(second);
        ASSERT_GT(first_id_, 0);
        ASSERT_GT(second_id_, 0);
        probes_ = gateway_.wait_channels_routable();
        if (refusing_.port() != 0) {
            ASSERT_NO_FATAL_FAILURE(mock_reset(refusing_.port()));
        }
        ASSERT_NO_FATAL_FAILURE(mock_reset(healthy_.port()));
    }
    std::string mock_url(const MockUpstream& mock) {
        return "http://127.0.0.1:" + std::to_string(mock.port());
    }

    MockUpstream refusing_;
    MockUpstream healthy_;
    Gateway gateway_;
    Key key_;
    int64_t first_id_ = 0;
    int64_t second_id_ = 0;
    std::map<std::string, Response> probes_;
};

class ProxyRetryStatusTest : public ProxyRetryTest, public ::testing::WithParamInterface<int> {};

TEST_P(ProxyRetryStatusTest, RefusalOnTheFirstChannelIsRetriedOnTheNext) {
    ASSERT_NO_FATAL_FAILURE(start_mocks(GetParam()));
    // A cap of 0 on Retry-After: the readiness probe's 429 does not make the first channel
    // skipped (tried last) for the request below (proxy_health_test.cc covers the skip).
    ASSERT_NO_FATAL_FAILURE(start_gateway({{"RINGWAY_CHANNEL_RETRY_AFTER_MAX_MS", "0"}}));
    ASSERT_NO_FATAL_FAILURE(two_channels(mock_url(refusing_)));
    const std::string before = gateway_.metrics();
    const Response response = gateway_.chat(key_, chat_body("gpt-4o-mini", false));
    ASSERT_EQ(response.status, 200) << response.body;
    EXPECT_EQ(Json(response.body).string("/choices/0/message/content"), "aaaabbbbcccc");
    EXPECT_FALSE(response.header("retry-after").has_value());
    EXPECT_EQ(mock_requests(refusing_.port()), 1);
    EXPECT_EQ(mock_requests(healthy_.port()), 1);
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(as_int(rows[0], "attempts"), 2) << describe_row(rows[0]);
    EXPECT_EQ(as_int(rows[0], "channel_id"), second_id_);
    EXPECT_EQ(as_int(rows[0], "status"), 200);
    EXPECT_EQ(rows[0].at("usage_source"), "reported");
    const std::string after = gateway_.metrics();
    EXPECT_EQ(metric_sum(after, "ringway_upstream_requests_total") -
                  metric_sum(before, "ringway_upstream_requests_total"),
              2);
    EXPECT_EQ(metric_sum(after, "ringway_upstream_retries_total") -
                  metric_sum(before, "ringway_upstream_retries_total"),
              1);
    EXPECT_EQ(metric_sum(after, "ringway_usage_records_total") -
                  metric_sum(before, "ringway_usage_records_total"),
              1);
}

INSTANTIATE_TEST_SUITE_P(Statuses, ProxyRetryStatusTest, ::testing::Values(503, 429, 500, 502));

TEST_F(ProxyRetryTest, RefusedConnectIsRetriedOnTheNextChannel) {
    ASSERT_NO_FATAL_FAILURE(start_mock(healthy_));
    ASSERT_NO_FATAL_FAILURE(start_gateway());
    const uint16_t dead_port = closed_port();
    ASSERT_NE(dead_port, 0);
    ASSERT_NO_FATAL_FAILURE(two_channels("http://127.0.0.1:" + std::to_string(dead_port)));
    // Alone, the dead channel is a 502 upstream_unreachable.
    EXPECT_EQ(probes_.at("first").status, 502) << probes_.at("first").body;
    EXPECT_NE(probes_.at("first").body.find("upstream_unreachable"), std::string::npos);
    const Response response = gateway_.chat(key_, chat_body("gpt-4o-mini", true));
    ASSERT_EQ(response.status, 200) << response.body;
    EXPECT_EQ(sse_events(response.body).back(), "data: [DONE]");
    EXPECT_EQ(mock_requests(healthy_.port()), 1);
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(as_int(rows[0], "attempts"), 2) << describe_row(rows[0]);
    EXPECT_EQ(as_int(rows[0], "channel_id"), second_id_);
    EXPECT_EQ(rows[0].at("end_reason"), "complete");
}

TEST_F(ProxyRetryTest, RefusalOnTheOnlyChannelIsRelayed) {
    ASSERT_NO_FATAL_FAILURE(start_mocks(503));
    ASSERT_NO_FATAL_FAILURE(start_gateway());
    ASSERT_NO_FATAL_FAILURE(two_channels(mock_url(refusing_)));
    const Response response = gateway_.chat(key_, chat_body("solo-model", false));
    EXPECT_EQ(response.status, 503);
    EXPECT_TRUE(response.header("retry-after").has_value());
    Json error(response.body);
    EXPECT_TRUE(error.has("/error/message")) << response.body;  // The upstream's own error.
    EXPECT_EQ(mock_requests(refusing_.port()), 1);
    EXPECT_EQ(mock_requests(healthy_.port()), 0);
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 1u);
    const Row& row = rows[0];
    EXPECT_EQ(as_int(row, "attempts"), 1);
    EXPECT_EQ(as_int(row, "status"), 503);
    EXPECT_EQ(as_int(row, "channel_id"), first_id_);
    EXPECT_EQ(row.at("usage_source"), "unknown");  // An error answer charges nothing.
    EXPECT_EQ(as_int(row, "total_tokens"), 0);
    EXPECT_EQ(row.at("end_reason"), "upstream_error");
}

TEST_F(ProxyRetryTest, NoRetryOnceTheStreamHasStarted) {
    ASSERT_NO_FATAL_FAILURE(start_mock(refusing_, {"chunks=5"}));  // Healthy, in fact.
    ASSERT_NO_FATAL_FAILURE(start_mock(healthy_));
    ASSERT_NO_FATAL_FAILURE(start_gateway());
    ASSERT_NO_FATAL_FAILURE(two_channels(mock_url(refusing_)));
    Client client;
    ASSERT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000)));
    ASSERT_TRUE(client.send(post_request("/v1/chat/completions",
                                         chat_body("gpt-4o-mini", true,
                                                   R"("x_mock":{"fault":"reset","fault-after":2})"),
                                         key_.secret),
                            Deadline::after_ms(5000)));
    ASSERT_TRUE(client.wait_closed(Deadline::after_ms(10000)));
    const RawResponse raw = parse_raw_response(client.unread());
    EXPECT_EQ(raw.status, 200);
    EXPECT_FALSE(raw.has_last_chunk);
    const auto events = sse_events(raw.payload);
    ASSERT_EQ(events.size(), 3u) << escape_bytes(raw.payload, 2000);
    EXPECT_EQ(events.back(), upstream_lost_event);
    EXPECT_EQ(mock_requests(refusing_.port()), 1);
    EXPECT_EQ(mock_requests(healthy_.port()), 0) << "retried after the stream had started";
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(as_int(rows[0], "attempts"), 1);
    EXPECT_EQ(rows[0].at("end_reason"), "upstream_reset");
}

TEST_F(ProxyRetryTest, NoRetryWhenAFreshConnectionClosesAfterTheRequestWasSent) {
    // connection-close: nothing is pooled, so the request goes out on a fresh connection,
    // which the upstream then resets without answering. It may have acted on it.
    ASSERT_NO_FATAL_FAILURE(start_mock(refusing_, {"connection-close=1"}));
    ASSERT_NO_FATAL_FAILURE(start_mock(healthy_));
    ASSERT_NO_FATAL_FAILURE(start_gateway());
    ASSERT_NO_FATAL_FAILURE(two_channels(mock_url(refusing_)));
    const Response response =
        gateway_.chat(key_, chat_body("gpt-4o-mini", false, R"("x_mock":{"fault":"reset-early"})"));
    EXPECT_EQ(response.status, 502) << response.body;
    std::string code;
    EXPECT_EQ(check_error_response(response, &code), "");
    EXPECT_EQ(mock_requests(refusing_.port()), 1);
    EXPECT_EQ(mock_requests(healthy_.port()), 0) << "a POST the upstream may have run was retried";
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(as_int(rows[0], "attempts"), 1);
    EXPECT_EQ(as_int(rows[0], "status"), 502);
    EXPECT_EQ(rows[0].at("end_reason"), "upstream_reset");
    EXPECT_EQ(rows[0].at("usage_source"), "unknown");
}

TEST_F(ProxyRetryTest, RetriesAreBoundedByRingwayRetries) {
    MockUpstream also_refusing;
    ASSERT_NO_FATAL_FAILURE(start_mocks(503));
    ASSERT_NO_FATAL_FAILURE(start_mock(also_refusing, {"status=503"}));
    ASSERT_NO_FATAL_FAILURE(start_gateway({{"RINGWAY_RETRIES", "1"}}));
    ChannelSpec middle;
    middle.name = "middle";
    middle.mock_port = also_refusing.port();
    middle.models = {"gpt-4o-mini"};
    middle.priority = 5;
    const int64_t middle_id = gateway_.create_channel(middle);
    ASSERT_NO_FATAL_FAILURE(two_channels(mock_url(refusing_)));
    ASSERT_NO_FATAL_FAILURE(mock_reset(also_refusing.port()));
    const Response response = gateway_.chat(key_, chat_body("gpt-4o-mini", false));
    EXPECT_EQ(response.status, 503) << response.body;  // The second (last allowed) refusal.
    EXPECT_EQ(mock_requests(refusing_.port()), 1);
    EXPECT_EQ(mock_requests(also_refusing.port()), 1);
    EXPECT_EQ(mock_requests(healthy_.port()), 0);
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(as_int(rows[0], "attempts"), 2);
    EXPECT_EQ(as_int(rows[0], "channel_id"), middle_id);
}

// Server failures (5xx) past RINGWAY_CHANNEL_FAILURE_MIN and _PERCENT in the window take
// the channel down (proxy_health_test.cc covers auth, rate limits and recovery).
TEST_F(ProxyRetryTest, ChannelFailingPastTheWindowThresholdGoesDown) {
    ASSERT_NO_FATAL_FAILURE(start_mocks(503));
    ASSERT_NO_FATAL_FAILURE(start_gateway(
        {{"RINGWAY_CHANNEL_FAILURE_MIN", "3"}, {"RINGWAY_CHANNEL_BACKOFF_MS", "60000"}}));
    ASSERT_NO_FATAL_FAILURE(two_channels(mock_url(refusing_)));
    std::vector<int64_t> attempts;
    for (int i = 0; i < 6; i++) {
        ASSERT_EQ(gateway_.chat(key_, chat_body("gpt-4o-mini", false)).status, 200);
    }
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 6, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 6u);
    for (const Row& row : rows) {
        attempts.push_back(as_int(row, "attempts"));
    }
    // The readiness probe of the refusing channel (its only model, so its 503 is relayed)
    // is its first failure; two more retried 503s make three, all of its outcomes: down.
    EXPECT_EQ(attempts, (std::vector<int64_t>{2, 2, 1, 1, 1, 1}));
    EXPECT_EQ(mock_requests(refusing_.port()), 2);
    EXPECT_EQ(mock_requests(healthy_.port()), 6);
    EXPECT_TRUE(gateway_.ringway()
                    .process()
                    .wait_for_line(Stream::err, "event=channel_down", Deadline::after_ms(5000))
                    .has_value());
    // While down, a model only that channel serves finds no channel (503), until the
    // channel's backoff lets one live request try it.
    const Response solo = gateway_.chat(key_, chat_body("solo-model", false));
    EXPECT_EQ(solo.status, 503);
    EXPECT_NE(solo.body.find("no_channel_available"), std::string::npos) << solo.body;
    EXPECT_EQ(mock_requests(refusing_.port()), 2);
}

}  // namespace
}  // namespace rw::test::proxy
