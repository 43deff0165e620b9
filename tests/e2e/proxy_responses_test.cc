// tests/e2e/proxy_responses_test.cc — /v1/responses by channel kind, over raw HTTP: an
// openai channel gets it as sent (passthrough, the mock's own Responses answer), an
// openai-compatible one (chat-only) gets Chat Completions and the client a translated
// Responses answer or stream, whatever the upstream's bytes' cuts; a field with no Chat
// equivalent is a 400 naming it that never reaches the upstream and leaves no row;
// /v1/responses/input_tokens passes through to openai channels only, free of charge.
#include <gtest/gtest.h>

#include <string>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

class ProxyResponsesTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_));
        ASSERT_NO_FATAL_FAILURE(gateway_.start({{"RINGWAY_SHARDS", "2"}}));
        ChannelSpec openai;
        openai.name = "openai";
        openai.mock_port = mock_.port();
        openai.models = {"gpt-4o-mini"};
        ASSERT_GT(gateway_.create_channel(openai), 0);
        ChannelSpec compatible;
        compatible.name = "compatible";
        compatible.kind = "openai-compatible";
        compatible.mock_port = mock_.port();
        compatible.models = {"local-llama"};
        ASSERT_GT(gateway_.create_channel(compatible), 0);
        for (const auto& [name, probe] : gateway_.wait_channels_routable()) {
            ASSERT_EQ(probe.status, 200) << name << ": " << probe.body;
        }
        key_ = gateway_.create_key(R"({"name":"app"})");
        ASSERT_NO_FATAL_FAILURE(mock_reset(mock_.port()));
    }

    Response responses(const std::string& body, std::string_view path = "/v1/responses") {
        return gateway_.call(post_request(path, body, key_.secret));
    }

    // The mock's controls for every request (a translated body cannot carry x_mock: it
    // would be refused as a member Chat does not have).
    void mock_defaults(const std::string& lines) {
        const std::string request =
            "POST /__mock/defaults HTTP/1.1\r\nHost: mock\r\nContent-Length: " +
            std::to_string(lines.size()) + "\r\n\r\n" + lines;
        const auto response = http_exchange(mock_.port(), request, Deadline::after_ms(5000));
        ASSERT_TRUE(response.has_value() && response->status == 200);
    }

    std::string last_upstream_path() {
        return Json(mock_stats_text(mock_.port())).string("/last_request/path");
    }

    MockUpstream mock_;
    Gateway gateway_;
    Key key_;
};

TEST_F(ProxyResponsesTest, AnOpenAiChannelGetsResponsesAsSentAChatOnlyOneGetsChat) {
    const Response native = responses(R"({"model":"gpt-4o-mini","input":"hi"})");
    ASSERT_EQ(native.status, 200) << native.body;
    EXPECT_EQ(last_upstream_path(), "/v1/responses");
    const Response translated = responses(R"({"model":"local-llama","input":"hi"})");
    ASSERT_EQ(translated.status, 200) << translated.body;
    EXPECT_EQ(last_upstream_path(), "/v1/chat/completions");
    Json answer(translated.body);
    EXPECT_EQ(answer.string("/object"), "response");
    EXPECT_EQ(answer.string("/status"), "completed");
    EXPECT_EQ(answer.string("/output/0/type"), "message");
    EXPECT_EQ(answer.string("/output/0/content/0/text"), "aaaabbbbcccc");
    EXPECT_EQ(answer.integer("/usage/output_tokens"), 3);
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 2, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 2u);
    for (const Row& row : rows) {
        EXPECT_EQ(row.at("endpoint"), "/v1/responses") << describe_row(row);
        EXPECT_EQ(row.at("usage_source"), "reported") << describe_row(row);
        EXPECT_EQ(row.at("completion_tokens"), "3") << describe_row(row);
    }
}

// The upstream's stream cut at arbitrary bytes (across events and HTTP chunks) and with CRLF
// line ends: the client's events are the same as from a stream in one piece.
TEST_F(ProxyResponsesTest, ATranslatedStreamDoesNotDependOnTheUpstreamsCuts) {
    const std::string body = R"({"model":"local-llama","input":"hi","stream":true})";
    const Response whole = responses(body);
    ASSERT_EQ(whole.status, 200) << whole.body;
    ASSERT_NO_FATAL_FAILURE(mock_defaults("split-bytes=7\nsplit-delay-ms=0\n"));
    const Response cut = responses(body);
    ASSERT_NO_FATAL_FAILURE(mock_defaults("eol=crlf\n"));
    const Response crlf = responses(body);
    const std::string expected = normalize_mock_ids(whole.body);
    EXPECT_EQ(normalize_mock_ids(cut.body), expected);
    EXPECT_EQ(normalize_mock_ids(crlf.body), expected);
    const std::vector<std::string> events = sse_events(whole.body);
    ASSERT_FALSE(events.empty());
    EXPECT_TRUE(events.front().starts_with("event: response.created\n")) << events.front();
    EXPECT_TRUE(events.back().starts_with("event: response.completed\n")) << events.back();
    Json completed(sse_data(events.back()));
    EXPECT_EQ(completed.string("/response/output/0/content/0/text"), "aaaabbbbcccc");
    EXPECT_EQ(completed.integer("/response/usage/output_tokens"), 3);
}

TEST_F(ProxyResponsesTest, AFieldWithoutAChatEquivalentIsRefusedByNameBeforeTheUpstream) {
    const Response refused =
        responses(R"({"model":"local-llama","input":"hi","tools":[{"type":"web_search"}]})");
    EXPECT_EQ(refused.status, 400) << refused.body;
    Json error(refused.body);
    EXPECT_EQ(error.string("/error/code"), "unsupported_parameter");
    EXPECT_NE(error.string("/error/message").find("web_search"), std::string::npos) << refused.body;
    EXPECT_EQ(mock_requests(mock_.port()), 0);
    // The same request on the openai channel is the provider's to judge: passed through.
    EXPECT_EQ(
        responses(R"({"model":"gpt-4o-mini","input":"hi","tools":[{"type":"web_search"}]})").status,
        200);
    EXPECT_EQ(mock_requests(mock_.port()), 1);
}

TEST_F(ProxyResponsesTest, InputTokensPassThroughToOpenAiChannelsOnlyFreeOfCharge) {
    const Response counted =
        responses(R"({"model":"gpt-4o-mini","input":"hello there","x_mock":{"prompt-tokens":42}})",
                  "/v1/responses/input_tokens");
    ASSERT_EQ(counted.status, 200) << counted.body;
    EXPECT_EQ(Json(counted.body).integer("/input_tokens"), 42);
    EXPECT_EQ(last_upstream_path(), "/v1/responses/input_tokens");
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].at("endpoint"), "/v1/responses/input_tokens") << describe_row(rows[0]);
    EXPECT_EQ(rows[0].at("prompt_tokens"), "0") << describe_row(rows[0]);
    // A chat-only channel has no such endpoint: its model is not found there.
    const Response missing =
        responses(R"({"model":"local-llama","input":"hi"})", "/v1/responses/input_tokens");
    EXPECT_EQ(missing.status, 404) << missing.body;
    EXPECT_EQ(mock_requests(mock_.port()), 1);
}

}  // namespace
}  // namespace rw::test::proxy
