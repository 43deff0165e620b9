// tests/e2e/proxy_chat_test.cc — the gateway's happy paths against the mock upstream:
// chat (whole and streamed), legacy completions, the Responses API stream, embeddings and
// the models list. Each test checks the three things STYLE §9 names: the client's bytes
// (a streamed answer must be the upstream's bytes exactly: the same request replayed to
// the mock directly gives the same payload, ids and timestamps aside), the usage row the
// writer committed, and the metrics; plus what the upstream received (the channel's key,
// never the client's credentials or x-mock-* headers; include_usage injected; the model
// renamed by the channel's model_map). The usage chunk ringway injected never reaches a
// client that did not ask for it, whatever the framing.
#include <gtest/gtest.h>

#include <string>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

class ProxyChatTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_));
        ASSERT_NO_FATAL_FAILURE(gateway_.start({{"RINGWAY_SHARDS", "2"}}));
        ChannelSpec spec;
        spec.name = "main";
        spec.mock_port = mock_.port();
        spec.models = {"gpt-4o-mini", "text-embedding-3-small"};
        spec.model_map_json = R"({"alias-model":"mock-renamed"})";
        channel_id_ = gateway_.create_channel(spec);
        ASSERT_GT(channel_id_, 0);
        const auto probes = gateway_.wait_channels_routable();
        ASSERT_EQ(probes.at("main").status, 200) << probes.at("main").body;
        key_ = gateway_.create_key(R"({"name":"app","quota_tokens":100000000})");
        ASSERT_FALSE(key_.secret.empty());
        ASSERT_NO_FATAL_FAILURE(mock_reset(mock_.port()));
    }

    // The upstream's answer to exactly the request the gateway last sent, asked directly.
    Response replay_last_request_to_mock() {
        Json stats(mock_stats_text(mock_.port()));
        const std::string path = stats.string("/last_request/path");
        const std::string body = stats.string("/last_request/body");
        const std::string request = "POST " + path +
                                    " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                    "Content-Type: application/json\r\nContent-Length: " +
                                    std::to_string(body.size()) + "\r\n\r\n" + body;
        auto response = http_exchange(mock_.port(), request, Deadline::after_ms(10000));
        EXPECT_TRUE(response.has_value());
        return response.value_or(Response{});
    }

    // Checks what the mock received last: the channel's key only, no client headers that
    // must stay at the gateway, a Content-Length matching the body.
    void expect_upstream_isolation(Json& stats) {
        EXPECT_EQ(stats.string("/last_request/headers/authorization"),
                  "Bearer " + std::string(upstream_key));
        EXPECT_EQ(stats.string("/last_request/headers/host"),
                  "127.0.0.1:" + std::to_string(mock_.port()));
        for (const std::string& name : stats.keys("/last_request/headers")) {
            EXPECT_NE(name, "cookie");
            EXPECT_NE(name, "x-api-key");
            EXPECT_FALSE(name.starts_with("x-mock-")) << "forwarded: " << name;
        }
        EXPECT_EQ(stats.text().find(key_.secret), std::string::npos)
            << "the client's key reached the upstream";
        EXPECT_EQ(stats.integer("/last_request/content_length"),
                  stats.integer("/last_request/body_bytes"));
    }

    MockUpstream mock_;
    Gateway gateway_;
    int64_t channel_id_ = 0;
    Key key_;
};

TEST_F(ProxyChatTest, NonStreamingChatIsRelayedAndBilledAsReported) {
    const std::string before = gateway_.metrics();
    const std::string body = chat_body("gpt-4o-mini", false, R"("x_mock":{"chunks":4})");
    // x-mock-status would make the mock fail: it must not be forwarded. Nor the cookie.
    const Response response = gateway_.call(
        post_request("/v1/chat/completions", body, key_.secret,
                     "Cookie: session=client-secret-cookie\r\nx-mock-status: 500\r\n"));
    ASSERT_EQ(response.status, 200) << response.body;
    EXPECT_EQ(response.header("content-type").value_or(""), "application/json");
    Json answer(response.body);
    ASSERT_TRUE(answer.ok()) << response.body;
    EXPECT_EQ(answer.string("/object"), "chat.completion");
    EXPECT_EQ(answer.string("/choices/0/message/content"), "aaaabbbbccccdddd");
    const int64_t prompt = answer.integer("/usage/prompt_tokens");
    const int64_t completion = answer.integer("/usage/completion_tokens");
    EXPECT_EQ(prompt, int64_t((body.size() + 3) / 4));  // Body unchanged: no rewrite needed.
    EXPECT_EQ(completion, 4);
    EXPECT_EQ(answer.integer("/usage/total_tokens"), prompt + completion);

    Json stats(mock_stats_text(mock_.port()));
    EXPECT_EQ(stats.integer("/requests_total"), 1);
    EXPECT_EQ(stats.string("/last_request/body"), body);
    EXPECT_EQ(stats.string("/last_request/path"), "/v1/chat/completions");
    expect_upstream_isolation(stats);

    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 1u);
    const Row& row = rows[0];
    EXPECT_EQ(as_int(row, "channel_id"), channel_id_);
    EXPECT_EQ(row.at("model_requested"), "gpt-4o-mini");
    EXPECT_EQ(row.at("model_sent"), "gpt-4o-mini");
    EXPECT_EQ(row.at("endpoint"), "/v1/chat/completions");
    EXPECT_EQ(as_int(row, "status"), 200);
    EXPECT_EQ(as_int(row, "prompt_tokens"), prompt);
    EXPECT_EQ(as_int(row, "completion_tokens"), completion);
    EXPECT_EQ(as_int(row, "total_tokens"), prompt + completion);
    EXPECT_EQ(row.at("usage_source"), "reported");
    EXPECT_EQ(row.at("end_reason"), "complete");
    EXPECT_EQ(as_int(row, "attempts"), 1);
    EXPECT_EQ(as_int(row, "bytes_in"), int64_t(body.size()));
    EXPECT_GE(as_int(row, "bytes_out"), int64_t(response.body.size()));

    const std::string after = gateway_.metrics();
    EXPECT_EQ(metric_sum(after, "ringway_usage_records_total") -
                  metric_sum(before, "ringway_usage_records_total"),
              1);
    EXPECT_EQ(metric_sum(after, "ringway_tokens_prompt_total") -
                  metric_sum(before, "ringway_tokens_prompt_total"),
              double(prompt));
    EXPECT_EQ(metric_sum(after, "ringway_tokens_completion_total") -
                  metric_sum(before, "ringway_tokens_completion_total"),
              double(completion));
    EXPECT_EQ(metric_sum(after, "ringway_upstream_requests_total") -
                  metric_sum(before, "ringway_upstream_requests_total"),
              1);

    Db db(gateway_.db_path());
    EXPECT_EQ(db.scalar("SELECT quota_used FROM keys WHERE id = " + std::to_string(key_.id)),
              prompt + completion);
}

// The usage-only event (choices []) cut out of a payload, as ringway does for clients that
// did not ask for usage: from its "data: " to the next event's (the [DONE] that follows it),
// whatever the line ends. "" when the payload has no such event.
std::string without_usage_event(const std::string& payload, std::string* usage_data = nullptr) {
    const size_t usage_at = payload.find("\"choices\":[]");
    if (usage_at == std::string::npos) {
        return {};
    }
    const size_t start = payload.rfind("data: ", usage_at);
    const size_t next = payload.find("data: ", usage_at);
    if (start == std::string::npos || next == std::string::npos) {
        return {};
    }
    if (usage_data != nullptr) {
        *usage_data = payload.substr(start + 6, payload.find_first_of("\r\n", start) - start - 6);
    }
    return payload.substr(0, start) + payload.substr(next);
}

// One streamed chat per mock framing: the client's de-chunked payload must be exactly
// what the mock sends for the request the gateway forwarded, less the usage chunk the
// gateway asked for on the client's behalf, whatever the upstream's write and chunk
// boundaries and line ends.
class ProxyStreamRelayTest : public ProxyChatTest,
                             public ::testing::WithParamInterface<std::string> {};

TEST_P(ProxyStreamRelayTest, StreamedChatIsTheUpstreamsBytesExactly) {
    std::string x_mock = R"("x_mock":{"chunks":6)";
    if (!GetParam().empty()) {
        x_mock += "," + GetParam();
    }
    x_mock += "}";
    const std::string body = chat_body("gpt-4o-mini", true, x_mock);
    Client client;
    ASSERT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000)));
    ASSERT_TRUE(client.send(post_request("/v1/chat/completions", body, key_.secret),
                            Deadline::after_ms(5000)));
    std::string error;
    const auto response = client.read_response(Deadline::after_ms(10000), false, &error);
    ASSERT_TRUE(response.has_value()) << error << escape_bytes(client.unread());
    EXPECT_EQ(response->status, 200);
    EXPECT_TRUE(response->is_chunked);
    EXPECT_TRUE(response->header("content-type").value_or("").starts_with("text/event-stream"));
    EXPECT_EQ(response->header("cache-control").value_or(""), "no-cache");

    Json stats(mock_stats_text(mock_.port()));
    ASSERT_EQ(stats.integer("/requests_total"), 1);
    // The client did not ask for usage; the gateway asked on its behalf.
    EXPECT_EQ(stats.boolean("/last_request/body_json/stream_options/include_usage"), true)
        << stats.string("/last_request/body");
    EXPECT_EQ(stats.boolean("/last_request/body_json/stream"), true);
    EXPECT_EQ(stats.string("/last_request/body_json/model"), "gpt-4o-mini");
    EXPECT_EQ(stats.string("/last_request/body_json/messages/0/content"),
              "Say hello to the gateway.");
    expect_upstream_isolation(stats);

    const Response direct = replay_last_request_to_mock();
    ASSERT_EQ(direct.status, 200);
    std::string usage_data;
    const std::string expected = without_usage_event(direct.body, &usage_data);
    ASSERT_FALSE(expected.empty()) << "the mock sent no usage chunk: " << escape_bytes(direct.body);
    EXPECT_EQ(normalize_mock_ids(response->body), normalize_mock_ids(expected))
        << "gateway: " << escape_bytes(response->body, 4000)
        << "\nmock:    " << escape_bytes(direct.body, 4000);
    EXPECT_EQ(response->body.find("\"usage\":{"), std::string::npos);

    // The usage chunk the client did not see is what the row records.
    Json usage(usage_data);
    ASSERT_TRUE(usage.has("/usage/total_tokens")) << usage_data;
    EXPECT_EQ(usage.integer("/usage/completion_tokens"), 6);
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].at("usage_source"), "reported") << describe_row(rows[0]);
    EXPECT_EQ(rows[0].at("end_reason"), "complete");
    EXPECT_EQ(as_int(rows[0], "prompt_tokens"), usage.integer("/usage/prompt_tokens"));
    EXPECT_EQ(as_int(rows[0], "completion_tokens"), 6);
    EXPECT_EQ(as_int(rows[0], "total_tokens"), usage.integer("/usage/total_tokens"));
    EXPECT_EQ(as_int(rows[0], "status"), 200);
    EXPECT_GE(as_int(rows[0], "bytes_out"), int64_t(response->body.size()));
    EXPECT_GT(as_int(rows[0], "ttfb_us"), 0);
}

std::string framing_name(const ::testing::TestParamInfo<std::string>& param_info) {
    static const char* const framing_names[] = {
        "Default", "Split7", "HttpChunk5", "SplitEveryByte",
        "Large",   "Huge",   "CrSplit3",   "CrlfSplitEveryByte"};
    return framing_names[param_info.index];
}

// Large: events longer than a recv buffer (held, then cut or sent); Huge: events longer
// than stream_hold_bytes_max (relayed uncut as they come).
INSTANTIATE_TEST_SUITE_P(Framings, ProxyStreamRelayTest,
                         ::testing::Values(std::string(), R"("split-bytes":7)",
                                           R"("http-chunk-bytes":5)",
                                           R"("split-bytes":1,"split-delay-ms":0)",
                                           R"("chunk-text-bytes":20000)",
                                           R"("chunk-text-bytes":100000)",
                                           R"("eol":"cr","split-bytes":3,"split-delay-ms":0)",
                                           R"("eol":"crlf","split-bytes":1,"split-delay-ms":0)"),
                         framing_name);

TEST_F(ProxyChatTest, IncludeUsageFalseIsHonouredTowardTheClientAndStillMetered) {
    const std::string body = chat_body("gpt-4o-mini", true,
                                       R"("stream_options":{"include_usage":false},)"
                                       R"("x_mock":{"chunks":3})");
    const Response response =
        gateway_.call(post_request("/v1/chat/completions", body, key_.secret));
    ASSERT_EQ(response.status, 200) << response.body;
    Json stats(mock_stats_text(mock_.port()));
    EXPECT_EQ(stats.boolean("/last_request/body_json/stream_options/include_usage"), true)
        << stats.string("/last_request/body");
    EXPECT_EQ(response.body.find("\"usage\":{"), std::string::npos) << response.body;
    EXPECT_EQ(response.body.find("\"choices\":[]"), std::string::npos) << response.body;
    const std::vector<std::string> events = sse_events(response.body);
    ASSERT_EQ(events.size(), 1u + 3u + 1u + 1u) << response.body;  // Role, deltas, stop, DONE.
    EXPECT_EQ(events.back(), "data: [DONE]");
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].at("usage_source"), "reported") << describe_row(rows[0]);
    EXPECT_EQ(as_int(rows[0], "completion_tokens"), 3);
}

// A provider that puts usage on its finish_reason chunk (choices not empty): nothing is cut,
// the client gets every chunk the provider sent.
TEST_F(ProxyChatTest, UsageOnAChunkWithChoicesIsNotCut) {
    const std::string body =
        chat_body("gpt-4o-mini", true, R"("x_mock":{"chunks":2,"usage":"finish"})");
    const Response response =
        gateway_.call(post_request("/v1/chat/completions", body, key_.secret));
    ASSERT_EQ(response.status, 200) << response.body;
    const Response direct = replay_last_request_to_mock();
    EXPECT_EQ(normalize_mock_ids(response.body), normalize_mock_ids(direct.body));
    EXPECT_NE(response.body.find("\"usage\":{"), std::string::npos);
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].at("usage_source"), "reported") << describe_row(rows[0]);
}

TEST_F(ProxyChatTest, ClientAskingForUsageGetsOneUsageChunk) {
    const std::string body =
        chat_body("gpt-4o-mini", true, R"("stream_options":{"include_usage":true})");
    const Response response =
        gateway_.call(post_request("/v1/chat/completions", body, key_.secret));
    ASSERT_EQ(response.status, 200);
    Json stats(mock_stats_text(mock_.port()));
    // Already asked for: forwarded unchanged.
    EXPECT_EQ(stats.string("/last_request/body"), body);
    size_t usage_chunks = 0;
    for (const std::string& event : sse_events(response.body)) {
        usage_chunks += event.find("\"usage\":{") != std::string::npos ? 1 : 0;
    }
    EXPECT_EQ(usage_chunks, 1u) << escape_bytes(response.body, 3000);
}

TEST_F(ProxyChatTest, ModelMapRenamesTheUpstreamModel) {
    const std::string body = chat_body("alias-model", true, R"("x_mock":{"chunks":2})");
    const Response response =
        gateway_.call(post_request("/v1/chat/completions", body, key_.secret));
    ASSERT_EQ(response.status, 200) << response.body;
    Json stats(mock_stats_text(mock_.port()));
    EXPECT_EQ(stats.string("/last_request/body_json/model"), "mock-renamed");
    EXPECT_EQ(stats.boolean("/last_request/body_json/stream_options/include_usage"), true);
    EXPECT_EQ(stats.integer("/last_request/body_json/x_mock/chunks"), 2);
    EXPECT_EQ(stats.integer("/last_request/content_length"),
              stats.integer("/last_request/body_bytes"));
    // The mock echoes the model it was sent; the gateway relays the stream unchanged.
    EXPECT_NE(response.body.find("\"model\":\"mock-renamed\""), std::string::npos);
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].at("model_requested"), "alias-model");
    EXPECT_EQ(rows[0].at("model_sent"), "mock-renamed");
    EXPECT_EQ(rows[0].at("usage_source"), "reported");
}

TEST_F(ProxyChatTest, LegacyCompletionsAreRelayed) {
    const std::string body =
        R"({"model":"gpt-4o-mini","prompt":"Once upon","x_mock":{"chunks":2}})";
    const Response response = gateway_.call(post_request("/v1/completions", body, key_.secret));
    ASSERT_EQ(response.status, 200) << response.body;
    Json answer(response.body);
    EXPECT_EQ(answer.string("/object"), "text_completion");
    EXPECT_EQ(answer.string("/choices/0/text"), "aaaabbbb");
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].at("endpoint"), "/v1/completions");
    EXPECT_EQ(as_int(rows[0], "total_tokens"), answer.integer("/usage/total_tokens"));
    EXPECT_EQ(Json(mock_stats_text(mock_.port())).string("/last_request/path"), "/v1/completions");
}

TEST_F(ProxyChatTest, ResponsesApiStreamIsRelayedExactly) {
    const std::string body =
        R"({"model":"gpt-4o-mini","input":"Write one line.","stream":true,"x_mock":{"chunks":3,"split-bytes":11}})";
    const Response response = gateway_.call(post_request("/v1/responses", body, key_.secret));
    ASSERT_EQ(response.status, 200) << response.body;
    EXPECT_TRUE(response.is_chunked);
    Json stats(mock_stats_text(mock_.port()));
    EXPECT_EQ(stats.string("/last_request/path"), "/v1/responses");
    EXPECT_EQ(stats.string("/last_request/body"), body);  // Nothing to rewrite.
    expect_upstream_isolation(stats);
    const Response direct = replay_last_request_to_mock();
    EXPECT_EQ(normalize_mock_ids(response.body), normalize_mock_ids(direct.body));

    const std::vector<std::string> events = sse_events(response.body);
    ASSERT_EQ(events.size(), 11u) << escape_bytes(response.body, 3000);  // 8 + 3 deltas.
    EXPECT_TRUE(events.front().starts_with("event: response.created\n"));
    EXPECT_TRUE(events.back().starts_with("event: response.completed\n"));
    Json completed(sse_data(events.back()));
    const int64_t input = completed.integer("/response/usage/input_tokens");
    const int64_t output = completed.integer("/response/usage/output_tokens");
    EXPECT_EQ(output, 3);
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].at("endpoint"), "/v1/responses");
    EXPECT_EQ(rows[0].at("usage_source"), "reported") << describe_row(rows[0]);
    EXPECT_EQ(as_int(rows[0], "prompt_tokens"), input);
    EXPECT_EQ(as_int(rows[0], "completion_tokens"), output);
    EXPECT_EQ(as_int(rows[0], "total_tokens"), input + output);
}

TEST_F(ProxyChatTest, EmbeddingsAreRelayedAndBilled) {
    const std::string body =
        R"({"model":"text-embedding-3-small","input":["first text","second text"],"x_mock":{"embedding-dims":16}})";
    const Response response = gateway_.call(post_request("/v1/embeddings", body, key_.secret));
    ASSERT_EQ(response.status, 200) << response.body;
    Json answer(response.body);
    EXPECT_EQ(answer.string("/object"), "list");
    EXPECT_EQ(answer.array_size("/data/0/embedding"), 16u);
    const int64_t prompt = answer.integer("/usage/prompt_tokens");
    EXPECT_EQ(prompt, int64_t((body.size() + 3) / 4));
    EXPECT_EQ(answer.integer("/usage/total_tokens"), prompt);
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].at("endpoint"), "/v1/embeddings");
    EXPECT_EQ(rows[0].at("usage_source"), "reported");
    EXPECT_EQ(as_int(rows[0], "prompt_tokens"), prompt);
    EXPECT_EQ(as_int(rows[0], "completion_tokens"), 0);
    EXPECT_EQ(as_int(rows[0], "total_tokens"), prompt);
}

TEST_F(ProxyChatTest, ModelsListIsServedByTheGatewayPerKey) {
    const Response all = gateway_.call(get_with_key("/v1/models", key_.secret));
    ASSERT_EQ(all.status, 200) << all.body;
    Json list(all.body);
    EXPECT_EQ(list.string("/object"), "list");
    std::vector<std::string> ids;
    for (size_t i = 0; i < list.array_size("/data"); i++) {
        ids.push_back(list.string("/data/" + std::to_string(i) + "/id"));
        EXPECT_EQ(list.string("/data/" + std::to_string(i) + "/object"), "model");
    }
    EXPECT_NE(std::find(ids.begin(), ids.end(), "gpt-4o-mini"), ids.end()) << all.body;
    EXPECT_NE(std::find(ids.begin(), ids.end(), "text-embedding-3-small"), ids.end()) << all.body;

    const Key narrow = gateway_.create_key(R"({"name":"narrow","models":["gpt-4o-mini"]})");
    const Response some = gateway_.call(get_with_key("/v1/models", narrow.secret));
    ASSERT_EQ(some.status, 200) << some.body;
    Json narrow_list(some.body);
    ASSERT_EQ(narrow_list.array_size("/data"), 1u) << some.body;
    EXPECT_EQ(narrow_list.string("/data/0/id"), "gpt-4o-mini");

    const Response anonymous = gateway_.call(get_with_key("/v1/models", ""));
    EXPECT_EQ(anonymous.status, 401);
    EXPECT_EQ(mock_requests(mock_.port()), 0) << "the models list went upstream";
    // Listing models is a finished request like any other: the gauge comes back to zero.
    EXPECT_EQ(gateway_.metric("ringway_requests_in_flight"), 0);
}

TEST_F(ProxyChatTest, KeepAliveClientReusesPooledUpstreamConnection) {
    const std::string before = gateway_.metrics();
    Client client;
    ASSERT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000)));
    const std::string bodies[] = {chat_body("gpt-4o-mini", false), chat_body("gpt-4o-mini", true),
                                  chat_body("gpt-4o-mini", false)};
    for (const std::string& body : bodies) {
        ASSERT_TRUE(client.send(post_request("/v1/chat/completions", body, key_.secret),
                                Deadline::after_ms(5000)));
        std::string error;
        const auto response = client.read_response(Deadline::after_ms(10000), false, &error);
        ASSERT_TRUE(response.has_value()) << error;
        EXPECT_EQ(response->status, 200);
        EXPECT_FALSE(response->connection_has("close"));
    }
    const std::string after = gateway_.metrics();
    // One client connection lives on one shard: at most one new upstream connection.
    EXPECT_LE(metric_sum(after, "ringway_upstream_connects_total") -
                  metric_sum(before, "ringway_upstream_connects_total"),
              1);
    EXPECT_GE(metric_sum(after, "ringway_upstream_reused_total") -
                  metric_sum(before, "ringway_upstream_reused_total"),
              2);
    EXPECT_EQ(mock_requests(mock_.port()), 3);
    EXPECT_EQ(wait_usage_rows(gateway_.db_path(), key_.id, 3, Deadline::after_ms(5000)).size(), 3u);
}

}  // namespace
}  // namespace rw::test::proxy
