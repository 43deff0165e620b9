// tests/e2e/proxy_protocols_test.cc — what clients of each protocol see through the gateway
// beyond the happy path (issue 10): a channel with stream_usage off; errors in the client's
// protocol (Anthropic's shape on /v1/messages, its `event: error` for a cut stream);
// whether a refusal invites a retry (x-should-retry, Retry-After, OpenAI's types and codes);
// /v1/messages/count_tokens passed through or estimated; query strings kept; the provider's
// headers clients act on relayed, never its cookies; a provider error inside a stream
// recorded as upstream_stream_error and billed as an upstream error.
#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

class ProxyProtocolsTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_));
        ASSERT_NO_FATAL_FAILURE(gateway_.start({{"RINGWAY_SHARDS", "2"}}));
        ChannelSpec openai;
        openai.name = "openai";
        openai.mock_port = mock_.port();
        openai.models = {"gpt-4o-mini"};
        openai_id_ = gateway_.create_channel(openai);
        ChannelSpec plain;
        plain.name = "plain";
        plain.mock_port = mock_.port();
        plain.models = {"plain-model"};
        plain.extra_json = R"("stream_usage":"off")";
        plain_id_ = gateway_.create_channel(plain);
        ChannelSpec anthropic;
        anthropic.name = "anthropic";
        anthropic.kind = "anthropic";
        anthropic.mock_port = mock_.port();
        anthropic.models = {"claude-sonnet-4"};
        anthropic_id_ = gateway_.create_channel(anthropic);
        ASSERT_GT(openai_id_, 0);
        ASSERT_GT(plain_id_, 0);
        ASSERT_GT(anthropic_id_, 0);
        for (const auto& [name, probe] : gateway_.wait_channels_routable()) {
            ASSERT_EQ(probe.status, 200) << name << ": " << probe.body;
        }
        key_ = gateway_.create_key(R"({"name":"app"})");
        ASSERT_NO_FATAL_FAILURE(mock_reset(mock_.port()));
    }

    Response messages(const Key& key, const std::string& body, std::string_view path_tail = {},
                      std::string_view headers = {}) {
        return gateway_.call(
            post_request("/v1/messages" + std::string(path_tail), body, key.secret,
                         "anthropic-version: 2023-06-01\r\n" + std::string(headers)));
    }

    MockUpstream mock_;
    Gateway gateway_;
    int64_t openai_id_ = 0;
    int64_t plain_id_ = 0;
    int64_t anthropic_id_ = 0;
    Key key_;
};

std::string messages_body(bool is_stream, std::string_view x_mock = {}) {
    std::string body =
        R"({"model":"claude-sonnet-4","max_tokens":64,"messages":[{"role":"user","content":"Hi"}])";
    if (is_stream) {
        body += R"(,"stream":true)";
    }
    if (!x_mock.empty()) {
        body += R"(,"x_mock":)" + std::string(x_mock);
    }
    return body + "}";
}

// ---- stream_usage: off ----------------------------------------------------------------

TEST_F(ProxyProtocolsTest, StreamUsageOffSendsTheClientsBodyAndBillsAnEstimate) {
    const Response channel = gateway_.admin("GET", "/admin/channels/" + std::to_string(plain_id_));
    EXPECT_EQ(Json(channel.body).string("/stream_usage"), "off") << channel.body;
    EXPECT_EQ(Json(gateway_.admin("GET", "/admin/channels/" + std::to_string(openai_id_)).body)
                  .string("/stream_usage"),
              "inject");
    const std::string body = chat_body("plain-model", true, R"("x_mock":{"chunks":3})");
    const Response response = gateway_.chat(key_, body);
    ASSERT_EQ(response.status, 200) << response.body;
    Json stats(mock_stats_text(mock_.port()));
    EXPECT_EQ(stats.string("/last_request/body"), body) << "the body was rewritten";
    EXPECT_EQ(response.body.find("\"usage\":{"), std::string::npos);
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(as_int(rows[0], "channel_id"), plain_id_);
    EXPECT_EQ(rows[0].at("usage_source"), "estimated") << describe_row(rows[0]);
    EXPECT_EQ(rows[0].at("end_reason"), "complete");
    EXPECT_GT(as_int(rows[0], "total_tokens"), 0);
    // PATCH back to inject: the next stream is metered by the provider's usage again.
    const Response patched = gateway_.admin("PATCH", "/admin/channels/" + std::to_string(plain_id_),
                                            R"({"stream_usage":"inject"})");
    ASSERT_EQ(patched.status, 200) << patched.body;
    EXPECT_EQ(Json(patched.body).string("/stream_usage"), "inject");
    const Response bad = gateway_.admin("PATCH", "/admin/channels/" + std::to_string(plain_id_),
                                        R"({"stream_usage":"sometimes"})");
    EXPECT_EQ(bad.status, 400) << bad.body;
    ASSERT_EQ(gateway_.chat(key_, body).status, 200);
    const auto after = wait_usage_rows(gateway_.db_path(), key_.id, 2, Deadline::after_ms(5000));
    ASSERT_EQ(after.size(), 2u);
    EXPECT_EQ(after[1].at("usage_source"), "reported") << describe_row(after[1]);
}

// ---- errors in the client's protocol, and whether a retry can help ----------------------

TEST_F(ProxyProtocolsTest, AnthropicClientsGetAnthropicErrorsOpenAiClientsOpenAis) {
    const Key stranger{0, "sk-rw-not-a-real-key-0000000000000000"};
    const Response anthropic = messages(stranger, messages_body(false));
    EXPECT_EQ(anthropic.status, 401);
    Json anthropic_body(anthropic.body);
    EXPECT_EQ(anthropic_body.string("/type"), "error") << anthropic.body;
    EXPECT_EQ(anthropic_body.string("/error/type"), "authentication_error");
    EXPECT_EQ(anthropic_body.string("/error/message"), "Incorrect API key provided.");
    EXPECT_FALSE(anthropic_body.has("/error/code"));
    EXPECT_EQ(anthropic.header("x-should-retry").value_or(""), "false");

    const Response openai = gateway_.chat(stranger, chat_body("gpt-4o-mini", false));
    EXPECT_EQ(openai.status, 401);
    Json openai_body(openai.body);
    EXPECT_EQ(openai_body.string("/error/type"), "invalid_request_error") << openai.body;
    EXPECT_EQ(openai_body.string("/error/code"), "invalid_api_key");
    EXPECT_EQ(openai.header("x-should-retry").value_or(""), "false");

    // Unknown model on /v1/messages: Anthropic's not_found_error, no retry.
    const Response missing =
        messages(key_, R"({"model":"claude-none","max_tokens":8,"messages":[]})");
    EXPECT_EQ(missing.status, 404);
    EXPECT_EQ(Json(missing.body).string("/error/type"), "not_found_error") << missing.body;
    EXPECT_EQ(missing.header("x-should-retry").value_or(""), "false");
}

TEST_F(ProxyProtocolsTest, SpentQuotaSaysNoRetryCanHelpInBothShapes) {
    // One request is admitted (its bound fits) and reports far more than the quota.
    const Key spent = gateway_.create_key(R"({"name":"spent","quota_tokens":1000})");
    ASSERT_EQ(gateway_
                  .chat(spent, chat_body("gpt-4o-mini", false,
                                         R"("max_tokens":1,"x_mock":{"prompt-tokens":5000})"))
                  .status,
              200);
    ASSERT_TRUE(poll_until(Deadline::after_ms(5000), [&] {
        return gateway_.chat(spent, chat_body("gpt-4o-mini", false)).status == 429;
    }));
    const Response openai = gateway_.chat(spent, chat_body("gpt-4o-mini", false));
    EXPECT_EQ(openai.status, 429);
    Json openai_body(openai.body);
    EXPECT_EQ(openai_body.string("/error/type"), "insufficient_quota") << openai.body;
    EXPECT_EQ(openai_body.string("/error/code"), "insufficient_quota");
    EXPECT_EQ(openai.header("x-should-retry").value_or(""), "false");
    EXPECT_FALSE(openai.header("retry-after").has_value()) << "waiting does not refill a quota";

    const Response anthropic = messages(spent, messages_body(false));
    EXPECT_EQ(anthropic.status, 429);
    EXPECT_EQ(Json(anthropic.body).string("/error/type"), "rate_limit_error") << anthropic.body;
    EXPECT_EQ(anthropic.header("x-should-retry").value_or(""), "false");
}

TEST_F(ProxyProtocolsTest, ModelNotAllowedSaysNoRetryCanHelp) {
    const Key narrow = gateway_.create_key(R"({"name":"narrow","models":["plain-model"]})");
    const Response refused = gateway_.chat(narrow, chat_body("gpt-4o-mini", false));
    EXPECT_EQ(refused.status, 403);
    EXPECT_EQ(refused.header("x-should-retry").value_or(""), "false");
    const Response anthropic = messages(narrow, messages_body(false));
    EXPECT_EQ(anthropic.status, 403);
    EXPECT_EQ(Json(anthropic.body).string("/error/type"), "permission_error") << anthropic.body;
}

TEST_F(ProxyProtocolsTest, RateLimitRefusalCarriesARealRetryAfter) {
    const Key limited = gateway_.create_key(R"({"name":"limited","rpm":1})");
    Response refused;
    // The first request of a minute passes; the next one in the same minute is refused.
    ASSERT_TRUE(poll_until(Deadline::after_ms(20000), [&] {
        refused = gateway_.chat(limited, chat_body("gpt-4o-mini", false));
        return refused.status == 429;
    }));
    Json body(refused.body);
    EXPECT_EQ(body.string("/error/type"), "requests") << refused.body;
    EXPECT_EQ(body.string("/error/code"), "rate_limit_exceeded");
    EXPECT_FALSE(refused.header("x-should-retry").has_value());
    const int retry_after = std::atoi(refused.header("retry-after").value_or("0").c_str());
    EXPECT_GE(retry_after, 1) << "until the minute turns";
    EXPECT_LE(retry_after, 60);
}

// ---- /v1/messages streams and count_tokens ----------------------------------------------

TEST_F(ProxyProtocolsTest, CutMessagesStreamEndsWithAnthropicsErrorEvent) {
    const std::string body = messages_body(true, R"({"chunks":6,"fault":"reset","fault-after":3})");
    Client client;
    ASSERT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000)));
    ASSERT_TRUE(client.send(
        post_request("/v1/messages", body, key_.secret, "anthropic-version: 2023-06-01\r\n"),
        Deadline::after_ms(5000)));
    ASSERT_TRUE(client.wait_closed(Deadline::after_ms(10000))) << escape_bytes(client.unread());
    const RawResponse raw = parse_raw_response(client.unread());
    EXPECT_EQ(raw.status, 200);
    EXPECT_FALSE(raw.has_last_chunk) << "a cut stream must not end cleanly";
    const std::vector<std::string> events = sse_events(raw.payload);
    ASSERT_FALSE(events.empty()) << escape_bytes(raw.payload);
    EXPECT_EQ(events.back(),
              "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\","
              "\"message\":\"upstream connection lost\"}}");
    EXPECT_EQ(raw.payload.find("data: {\"error\""), std::string::npos) << "an OpenAI event";
}

TEST_F(ProxyProtocolsTest, CountTokensPassesThroughToAnthropicChannelsAndIsFree) {
    const std::string body =
        R"({"model":"claude-sonnet-4","messages":[{"role":"user","content":"Count me."}]})";
    const Response response = messages(key_, body, "/count_tokens");
    ASSERT_EQ(response.status, 200) << response.body;
    EXPECT_EQ(Json(response.body).integer("/input_tokens"), int64_t((body.size() + 3) / 4));
    EXPECT_FALSE(response.header("x-ringway-token-count").has_value());
    Json stats(mock_stats_text(mock_.port()));
    EXPECT_EQ(stats.string("/last_request/path"), "/v1/messages/count_tokens");
    EXPECT_EQ(stats.string("/last_request/headers/x-api-key"), std::string(upstream_key));
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].at("endpoint"), "/v1/messages/count_tokens");
    EXPECT_EQ(as_int(rows[0], "channel_id"), anthropic_id_);
    EXPECT_EQ(as_int(rows[0], "total_tokens"), 0) << describe_row(rows[0]);
    EXPECT_EQ(rows[0].at("usage_source"), "reported");
}

TEST_F(ProxyProtocolsTest, CountTokensForAnOpenAiModelIsALabelledLocalEstimateWithoutARow) {
    const std::string body =
        R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Count me, please."}]})";
    const Response response = messages(key_, body, "/count_tokens");
    ASSERT_EQ(response.status, 200) << response.body;
    Json answer(response.body);
    EXPECT_EQ(answer.integer("/input_tokens"), int64_t((body.size() + 3) / 4));
    EXPECT_EQ(answer.boolean("/estimated"), true);
    EXPECT_EQ(response.header("x-ringway-token-count").value_or(""), "estimated");
    EXPECT_EQ(mock_requests(mock_.port()), 0) << "no upstream was asked";
    // No row for it: the next row of this key is the chat that follows.
    ASSERT_EQ(gateway_.chat(key_, chat_body("gpt-4o-mini", false)).status, 200);
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].at("endpoint"), "/v1/chat/completions");
    // A model no channel serves is still unknown.
    const Response unknown =
        messages(key_, R"({"model":"nobody-serves-this","messages":[]})", "/count_tokens");
    EXPECT_EQ(unknown.status, 404);
    EXPECT_EQ(Json(unknown.body).string("/error/type"), "not_found_error") << unknown.body;
}

TEST_F(ProxyProtocolsTest, QueryStringsReachTheUpstreamWithoutCredentials) {
    ASSERT_EQ(messages(key_, messages_body(false), "?beta=true").status, 200);
    EXPECT_EQ(Json(mock_stats_text(mock_.port())).string("/last_request/target"),
              "/v1/messages?beta=true");
    const Response leaky = messages(key_, messages_body(false),
                                    "?beta=true&api_key=" + key_.secret + "&Access_Token=x&v=2");
    ASSERT_EQ(leaky.status, 200) << leaky.body;
    Json stats(mock_stats_text(mock_.port()));
    EXPECT_EQ(stats.string("/last_request/target"), "/v1/messages?beta=true&v=2");
    EXPECT_EQ(stats.text().find(key_.secret), std::string::npos);
}

// ---- the provider's headers -------------------------------------------------------------

TEST_F(ProxyProtocolsTest, ProviderHeadersClientsActOnAreRelayedCookiesAreNot) {
    for (const bool is_stream : {false, true}) {
        const Response chat = gateway_.chat(key_, chat_body("gpt-4o-mini", is_stream));
        ASSERT_EQ(chat.status, 200) << chat.body;
        // The provider's id under its own name; x-request-id is ringway's (request ids).
        EXPECT_TRUE(chat.header("x-upstream-request-id").value_or("").starts_with("req_mock"));
        EXPECT_TRUE(chat.header("x-request-id").value_or("").starts_with("rw-"));
        EXPECT_EQ(chat.header_count("x-request-id"), 1u);
        EXPECT_EQ(chat.header("openai-processing-ms").value_or(""), "42");
        EXPECT_EQ(chat.header("x-ratelimit-remaining-requests").value_or(""), "9999");
        EXPECT_EQ(chat.header("x-ratelimit-reset-tokens").value_or(""), "6ms");
        EXPECT_FALSE(chat.header("set-cookie").has_value()) << "stream " << is_stream;

        const Response message = messages(key_, messages_body(is_stream));
        ASSERT_EQ(message.status, 200) << message.body;
        EXPECT_TRUE(message.header("request-id").value_or("").starts_with("req_mock"));
        EXPECT_EQ(message.header("anthropic-ratelimit-output-tokens-remaining").value_or(""),
                  "3999");
        EXPECT_EQ(message.header("anthropic-ratelimit-input-tokens-reset").value_or(""),
                  "2025-01-01T00:00:07Z");
    }
}

TEST_F(ProxyProtocolsTest, TheProvidersRetryAfterIsRelayedAsSent) {
    const Response limited = gateway_.chat(
        key_, chat_body("gpt-4o-mini", false,
                        R"("x_mock":{"status":429,"retry-after":7,"retry-after-ms":7000})"));
    ASSERT_EQ(limited.status, 429) << limited.body;
    EXPECT_EQ(limited.header_count("retry-after"), 1u);
    EXPECT_EQ(limited.header("retry-after").value_or(""), "7");
    EXPECT_EQ(limited.header("retry-after-ms").value_or(""), "7000");
    EXPECT_EQ(Json(limited.body).string("/error/code"), "rate_limit_exceeded") << limited.body;
    const Response overloaded =
        messages(key_, messages_body(false, R"({"status":529,"retry-after":9})"));
    EXPECT_EQ(overloaded.status, 529);
    EXPECT_EQ(overloaded.header("retry-after").value_or(""), "9");
    EXPECT_EQ(Json(overloaded.body).string("/error/type"), "overloaded_error") << overloaded.body;
}

// ---- a provider error inside a stream ---------------------------------------------------

TEST_F(ProxyProtocolsTest, AProviderErrorInsideAStreamIsRecordedAndBilledAsAnUpstreamError) {
    const Response chat = gateway_.chat(
        key_, chat_body("gpt-4o-mini", true,
                        R"("x_mock":{"chunks":5,"fault":"error-event","fault-after":3})"));
    ASSERT_EQ(chat.status, 200);
    EXPECT_NE(chat.body.find("mock: injected mid-stream error"), std::string::npos) << chat.body;
    EXPECT_EQ(chat.body.find("upstream connection lost"), std::string::npos);
    const Response message = messages(
        key_, messages_body(true, R"({"chunks":5,"fault":"error-event","fault-after":4})"));
    ASSERT_EQ(message.status, 200);
    EXPECT_NE(message.body.find("event: error"), std::string::npos) << message.body;
    auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 2, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 2u);
    // Two shards: the writer may commit the two rows in either order.
    if (rows[0].at("endpoint") != "/v1/chat/completions") {
        std::swap(rows[0], rows[1]);
    }
    EXPECT_EQ(rows[0].at("endpoint"), "/v1/chat/completions");
    EXPECT_EQ(rows[0].at("end_reason"), "upstream_stream_error") << describe_row(rows[0]);
    EXPECT_EQ(rows[0].at("usage_source"), "unknown");
    EXPECT_EQ(as_int(rows[0], "total_tokens"), 0);
    // Anthropic reported the input in message_start before the error: charged as reported.
    EXPECT_EQ(rows[1].at("end_reason"), "upstream_stream_error") << describe_row(rows[1]);
    EXPECT_EQ(rows[1].at("usage_source"), "reported");
    Db db(gateway_.db_path());
    EXPECT_EQ(db.scalar("SELECT quota_used FROM keys WHERE id = " + std::to_string(key_.id)),
              as_int(rows[1], "total_tokens"));
}

}  // namespace
}  // namespace rw::test::proxy
