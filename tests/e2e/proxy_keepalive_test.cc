// tests/e2e/proxy_keepalive_test.cc — RINGWAY_SSE_KEEPALIVE_MS (README "Endpoints"): a
// streamed request whose upstream is silent past the interval gets the 200 head and
// ": keep-alive" comments, then the stream; a fast upstream's bytes are unchanged; a channel
// that fails after the head went out is retried on the next one under the same head; with
// no channel left the stream ends with one error event in the client's protocol (OpenAI
// data: {"error":…}, Anthropic event: error), recorded with the failure's status and
// end_reason and charged nothing. The mock delays its answer with first-byte-delay-ms
// (before its status line) or first-event-delay-ms (after its head).
#include <gtest/gtest.h>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

constexpr std::string_view comment = ": keep-alive\n\n";

size_t count_of(std::string_view text, std::string_view what) {
    size_t count = 0;
    for (size_t at = text.find(what); at != std::string_view::npos;
         at = text.find(what, at + what.size())) {
        count += 1;
    }
    return count;
}

class ProxyKeepAliveTest : public ::testing::Test {
protected:
    // interval_ms 100: comments come fast; the delays below are 800 ms, far under the
    // first-byte timeout of 5 s (the timeout test waits for it).
    void start(const std::string& interval_ms) {
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_));
        ASSERT_NO_FATAL_FAILURE(gateway_.start({{"RINGWAY_SSE_KEEPALIVE_MS", interval_ms},
                                                {"RINGWAY_UPSTREAM_FIRST_BYTE_TIMEOUT_MS", "5000"},
                                                {"RINGWAY_RETRIES", "1"}}));
        // Two channels on the same mock, "first" tried first: x-mock-fail-first fails the
        // first request of a scenario only, so a retry lands on "second".
        for (const auto& [name, priority] : {std::pair{"first", 10}, std::pair{"second", 0}}) {
            ChannelSpec spec;
            spec.name = name;
            spec.mock_port = mock_.port();
            spec.priority = priority;
            spec.models = {"gpt-4o-mini"};
            ASSERT_GT(gateway_.create_channel(spec), 0);
        }
        ChannelSpec claude;
        claude.name = "claude";
        claude.kind = "anthropic";
        claude.mock_port = mock_.port();
        claude.models = {"claude-sonnet-4"};
        ASSERT_GT(gateway_.create_channel(claude), 0);
        for (const auto& [name, answer] : gateway_.wait_channels_routable()) {
            ASSERT_EQ(answer.status, 200) << name << ": " << answer.body;
        }
        key_ = gateway_.create_key(R"({"name":"keepalive"})");
        ASSERT_FALSE(key_.secret.empty());
        ASSERT_NO_FATAL_FAILURE(mock_reset(mock_.port()));
    }

    // The request on a new connection, read to the gateway's close (a stream ended by an
    // error event) or to its terminating chunk.
    RawResponse stream(std::string_view path, const std::string& body) {
        Client client;
        EXPECT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000)));
        std::string headers;
        if (path == "/v1/messages") {
            headers += "anthropic-version: 2023-06-01\r\n";
        }
        EXPECT_TRUE(
            client.send(post_request(path, body, key_.secret, headers), Deadline::after_ms(5000)));
        // wait_closed appends what arrives meanwhile; a complete stream keeps its connection.
        const bool is_done = poll_until(Deadline::after_ms(30000), [&] {
            return client.wait_closed(Deadline::after_ms(100)) ||
                   parse_raw_response(client.unread()).has_last_chunk;
        });
        EXPECT_TRUE(is_done) << escape_bytes(client.unread(), 2000);
        return parse_raw_response(client.unread());
    }

    Row only_row() {
        const auto rows =
            wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(10000));
        EXPECT_EQ(rows.size(), 1u);
        return rows.empty() ? Row{} : rows.back();
    }

    MockUpstream mock_;
    Gateway gateway_;
    Key key_;
};

TEST_F(ProxyKeepAliveTest, CommentsWhileTheUpstreamIsSilentThenTheStream) {
    ASSERT_NO_FATAL_FAILURE(start("100"));
    const RawResponse raw = stream(
        "/v1/chat/completions",
        chat_body("gpt-4o-mini", true, R"("x_mock":{"first-byte-delay-ms":800,"chunks":3})"));
    EXPECT_EQ(raw.status, 200) << raw.head;
    EXPECT_TRUE(raw.has_last_chunk) << escape_bytes(raw.payload, 2000);
    EXPECT_TRUE(raw.payload.starts_with(comment)) << escape_bytes(raw.payload, 400);
    const size_t comments = count_of(raw.payload, comment);
    EXPECT_GE(comments, 1u);
    // The comments all come before the first event, and the stream is the usual one.
    EXPECT_EQ(raw.payload.find(comment, raw.payload.find("data: ")), std::string::npos);
    const auto events = sse_events(raw.payload.substr(comments * comment.size()));
    // Role, 3 deltas, finish, [DONE]; the usage chunk ringway asked for is cut as usual.
    ASSERT_EQ(events.size(), 6u) << escape_bytes(raw.payload, 2000);
    EXPECT_EQ(raw.payload.find("\"usage\":{"), std::string::npos);
    EXPECT_EQ(events.back(), "data: [DONE]");
    // The head went out before the upstream's: ringway's own headers, not the provider's.
    EXPECT_EQ(count_of(raw.head, "HTTP/1.1 200"), 1u);
    EXPECT_NE(raw.head.find("text/event-stream"), std::string::npos) << raw.head;
    EXPECT_EQ(raw.head.find("x-upstream-request-id"), std::string::npos) << raw.head;
    EXPECT_EQ(raw.payload.find("HTTP/1.1"), std::string::npos);
    EXPECT_EQ(gateway_.metric("ringway_sse_keepalives_total"), double(comments));
    const Row row = only_row();
    EXPECT_EQ(as_int(row, "status"), 200) << describe_row(row);
    EXPECT_EQ(row.at("end_reason"), "complete");
    EXPECT_EQ(row.at("usage_source"), "reported");
    EXPECT_EQ(as_int(row, "completion_tokens"), 3);
}

TEST_F(ProxyKeepAliveTest, CommentsAfterTheUpstreamHeadUntilItsFirstEvent) {
    ASSERT_NO_FATAL_FAILURE(start("100"));
    const RawResponse raw =
        stream("/v1/chat/completions",
               chat_body("gpt-4o-mini", true, R"("x_mock":{"first-event-delay-ms":800})"));
    EXPECT_EQ(raw.status, 200);
    EXPECT_TRUE(raw.has_last_chunk);
    // The provider's head went out as it came (its request id relayed), then the comments.
    EXPECT_NE(raw.head.find("x-upstream-request-id"), std::string::npos) << raw.head;
    EXPECT_TRUE(raw.payload.starts_with(comment)) << escape_bytes(raw.payload, 400);
    EXPECT_TRUE(raw.payload.ends_with("data: [DONE]\n\n"));
    EXPECT_EQ(only_row().at("end_reason"), "complete");
}

// A chat client of a model only the anthropic channel serves: translated, under the early
// head as well.
TEST_F(ProxyKeepAliveTest, TranslatedStreamGoesOnUnderTheHead) {
    ASSERT_NO_FATAL_FAILURE(start("100"));
    // Translation refuses the x_mock body member: the mock's defaults slow it down instead.
    const auto set = http_exchange(
        mock_.port(), post_request("/__mock/defaults", "first-byte-delay-ms=800\nchunks=2", ""),
        Deadline::after_ms(5000));
    ASSERT_TRUE(set.has_value() && set->status == 200);
    const RawResponse raw = stream("/v1/chat/completions", chat_body("claude-sonnet-4", true));
    EXPECT_EQ(raw.status, 200);
    EXPECT_TRUE(raw.has_last_chunk) << escape_bytes(raw.payload, 2000);
    EXPECT_TRUE(raw.payload.starts_with(comment)) << escape_bytes(raw.payload, 400);
    EXPECT_NE(raw.payload.find("chat.completion.chunk"), std::string::npos);
    EXPECT_EQ(raw.payload.find("message_start"), std::string::npos) << "not translated";
    EXPECT_TRUE(raw.payload.ends_with("data: [DONE]\n\n")) << escape_bytes(raw.payload, 2000);
    const Row row = only_row();
    EXPECT_EQ(row.at("end_reason"), "complete") << describe_row(row);
    EXPECT_EQ(row.at("usage_source"), "reported");
}

TEST_F(ProxyKeepAliveTest, FastUpstreamBytesAreUnchanged) {
    ASSERT_NO_FATAL_FAILURE(start("10000"));
    const RawResponse raw =
        stream("/v1/chat/completions", chat_body("gpt-4o-mini", true, R"("x_mock":{"chunks":3})"));
    EXPECT_EQ(raw.status, 200);
    EXPECT_TRUE(raw.has_last_chunk);
    EXPECT_NE(raw.head.find("x-upstream-request-id"), std::string::npos) << raw.head;
    EXPECT_EQ(raw.payload.find(": keep-alive"), std::string::npos);
    EXPECT_TRUE(raw.payload.starts_with("data: {")) << escape_bytes(raw.payload, 200);
    EXPECT_EQ(gateway_.metric("ringway_sse_keepalives_total"), 0.0);
}

TEST_F(ProxyKeepAliveTest, ChannelFailingAfterTheHeadIsRetriedUnderIt) {
    ASSERT_NO_FATAL_FAILURE(start("100"));
    const RawResponse raw =
        stream("/v1/chat/completions",
               chat_body("gpt-4o-mini", true,
                         R"("x_mock":{"first-byte-delay-ms":800,"scenario-id":"ka-retry",)"
                         R"("fail-first":1,"status":503})"));
    EXPECT_EQ(raw.status, 200);
    EXPECT_TRUE(raw.has_last_chunk) << escape_bytes(raw.payload, 2000);
    EXPECT_EQ(raw.payload.find("\"error\""), std::string::npos) << escape_bytes(raw.payload, 2000);
    EXPECT_EQ(raw.payload.find("HTTP/1.1"), std::string::npos) << "one head only";
    EXPECT_GE(count_of(raw.payload, comment), 1u);
    EXPECT_TRUE(raw.payload.ends_with("data: [DONE]\n\n"));
    EXPECT_EQ(mock_requests(mock_.port()), 2);
    const Row row = only_row();
    EXPECT_EQ(as_int(row, "attempts"), 2) << describe_row(row);
    EXPECT_EQ(as_int(row, "status"), 200);
    EXPECT_EQ(row.at("end_reason"), "complete");
    EXPECT_EQ(row.at("usage_source"), "reported");
}

TEST_F(ProxyKeepAliveTest, NoChannelLeftEndsWithTheProvidersErrorEvent) {
    ASSERT_NO_FATAL_FAILURE(start("100"));
    // Both channels answer 503: the last answer becomes the stream's error event.
    const RawResponse raw = stream(
        "/v1/chat/completions",
        chat_body("gpt-4o-mini", true, R"("x_mock":{"first-byte-delay-ms":800,"status":503})"));
    EXPECT_EQ(raw.status, 200);
    EXPECT_FALSE(raw.has_last_chunk) << "an ended-by-error stream must not look complete";
    EXPECT_TRUE(raw.is_framing_ok);
    EXPECT_GE(count_of(raw.payload, comment), 1u);
    const auto events = sse_events(raw.payload.substr(raw.payload.rfind(comment) + comment.size()));
    ASSERT_EQ(events.size(), 1u) << escape_bytes(raw.payload, 2000);
    Json error(sse_data(events[0]));
    ASSERT_TRUE(error.ok()) << events[0];
    EXPECT_FALSE(error.string("/error/message").empty()) << events[0];
    EXPECT_EQ(mock_requests(mock_.port()), 2);
    const Row row = only_row();
    EXPECT_EQ(as_int(row, "status"), 503) << describe_row(row);
    EXPECT_EQ(as_int(row, "attempts"), 2);
    EXPECT_EQ(row.at("end_reason"), "upstream_error");
    EXPECT_EQ(row.at("usage_source"), "unknown");
    EXPECT_EQ(as_int(row, "total_tokens"), 0);
}

TEST_F(ProxyKeepAliveTest, AnthropicClientGetsItsErrorEvent) {
    ASSERT_NO_FATAL_FAILURE(start("100"));
    const std::string body = R"({"model":"claude-sonnet-4","max_tokens":64,"stream":true,)"
                             R"("messages":[{"role":"user","content":"hi"}],)"
                             R"("x_mock":{"first-byte-delay-ms":800,"status":400}})";
    const RawResponse raw = stream("/v1/messages", body);
    EXPECT_EQ(raw.status, 200);
    EXPECT_FALSE(raw.has_last_chunk);
    const std::string tail = raw.payload.substr(raw.payload.rfind(comment) + comment.size());
    EXPECT_TRUE(tail.starts_with("event: error\ndata: ")) << escape_bytes(tail, 600);
    const auto events = sse_events(tail);
    ASSERT_EQ(events.size(), 1u) << escape_bytes(raw.payload, 2000);
    Json error(sse_data(events[0]));
    ASSERT_TRUE(error.ok()) << events[0];
    EXPECT_EQ(error.string("/type"), "error");
    EXPECT_EQ(error.string("/error/type"), "invalid_request_error") << events[0];
    const Row row = only_row();
    EXPECT_EQ(as_int(row, "status"), 400) << describe_row(row);
    EXPECT_EQ(row.at("end_reason"), "upstream_error");
    EXPECT_EQ(as_int(row, "total_tokens"), 0);
}

TEST_F(ProxyKeepAliveTest, TimeoutAfterTheHeadIsTheGatewaysErrorEvent) {
    ASSERT_NO_FATAL_FAILURE(start("500"));
    const RawResponse raw =
        stream("/v1/chat/completions",
               chat_body("gpt-4o-mini", true, R"("x_mock":{"fault":"stall-early"})"));
    EXPECT_EQ(raw.status, 200);
    EXPECT_FALSE(raw.has_last_chunk);
    const auto events = sse_events(raw.payload.substr(raw.payload.rfind(comment) + comment.size()));
    ASSERT_EQ(events.size(), 1u) << escape_bytes(raw.payload, 2000);
    Json error(sse_data(events[0]));
    EXPECT_EQ(error.string("/error/code"), "upstream_timeout") << events[0];
    const Row row = only_row();
    EXPECT_EQ(as_int(row, "status"), 504) << describe_row(row);
    EXPECT_EQ(row.at("end_reason"), "upstream_timeout");
    EXPECT_EQ(as_int(row, "total_tokens"), 0);
}

}  // namespace
}  // namespace rw::test::proxy
