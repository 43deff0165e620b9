// tests/e2e/proxy_stored_responses_test.cc — stored responses on openai channels: a
// /v1/responses answer's id (whole body or the stream's response.created) is learnt with
// its channel and key, and GET/DELETE /v1/responses/{id}, POST …/cancel and GET
// …/input_items reach that channel (of two serving the model), for that key only (another
// key or an unknown id: 404 in OpenAI's shape, nothing sent upstream), relayed byte-exact,
// each leaving one 0-token row; the ids survive a restart (reloaded from the usage rows).
#include <gtest/gtest.h>

#include <string>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

std::string method_request(std::string_view method, std::string_view path,
                           std::string_view api_key) {
    std::string request = std::string(method) + " " + std::string(path) +
                          " HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer " +
                          std::string(api_key) + "\r\n";
    request += method == "POST" ? "Content-Length: 0\r\n\r\n" : "\r\n";
    return request;
}

class ProxyStoredResponsesTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(start_mock(first_mock_));
        ASSERT_NO_FATAL_FAILURE(start_mock(second_mock_));
        ASSERT_NO_FATAL_FAILURE(gateway_.start({{"RINGWAY_SHARDS", "2"}}));
        // Two openai channels serve the model: only the one that created a response has it.
        for (const auto& [name, port] :
             {std::pair<std::string, uint16_t>{"first", first_mock_.port()},
              {"second", second_mock_.port()}}) {
            ChannelSpec spec;
            spec.name = name;
            spec.mock_port = port;
            spec.models = {"gpt-4o-mini"};
            ASSERT_GT(gateway_.create_channel(spec), 0);
        }
        for (const auto& [name, probe] : gateway_.wait_channels_routable()) {
            ASSERT_EQ(probe.status, 200) << name << ": " << probe.body;
        }
        key_ = gateway_.create_key(R"({"name":"app"})");
        other_key_ = gateway_.create_key(R"({"name":"other"})");
        ASSERT_NO_FATAL_FAILURE(mock_reset(first_mock_.port()));
        ASSERT_NO_FATAL_FAILURE(mock_reset(second_mock_.port()));
    }

    // Creates a response; returns its id and sets created_on to the mock that answered.
    std::string create(bool is_stream, uint16_t& created_on) {
        mock_reset(first_mock_.port());
        mock_reset(second_mock_.port());
        const std::string body = std::string(R"({"model":"gpt-4o-mini","input":"remember me")") +
                                 (is_stream ? R"(,"stream":true})" : "}");
        const Response response = gateway_.call(post_request("/v1/responses", body, key_.secret));
        EXPECT_EQ(response.status, 200) << response.body;
        std::string id;
        if (is_stream) {
            const std::vector<std::string> events = sse_events(response.body);
            EXPECT_FALSE(events.empty());
            id = events.empty() ? "" : Json(sse_data(events.front())).string("/response/id");
        } else {
            id = Json(response.body).string("/id");
        }
        created_on =
            mock_requests(first_mock_.port()) > 0 ? first_mock_.port() : second_mock_.port();
        EXPECT_EQ(mock_requests(first_mock_.port()) + mock_requests(second_mock_.port()), 1);
        return id;
    }

    Response call(std::string_view method, const std::string& path, const Key& key) {
        return gateway_.call(method_request(method, path, key.secret));
    }

    // What the mock that holds the response answers directly (the bytes to compare).
    Response direct(uint16_t port, std::string_view method, const std::string& path) {
        const auto response = http_exchange(port, method_request(method, path, upstream_key),
                                            Deadline::after_ms(5000));
        EXPECT_TRUE(response.has_value());
        return response.value_or(Response{});
    }

    MockUpstream first_mock_;
    MockUpstream second_mock_;
    Gateway gateway_;
    Key key_;
    Key other_key_;
};

TEST_F(ProxyStoredResponsesTest, RetrieveInputItemsCancelAndDeleteReachTheCreatingChannel) {
    for (const bool is_stream : {false, true}) {
        SCOPED_TRACE(is_stream ? "streamed" : "whole");
        uint16_t port = 0;
        const std::string id = create(is_stream, port);
        ASSERT_TRUE(id.starts_with("resp_mock")) << id;
        const uint16_t other_port =
            port == first_mock_.port() ? second_mock_.port() : first_mock_.port();
        ASSERT_NO_FATAL_FAILURE(mock_reset(first_mock_.port()));
        ASSERT_NO_FATAL_FAILURE(mock_reset(second_mock_.port()));
        const std::string path = "/v1/responses/" + id;
        for (int round = 0; round < 3; round++) {  // Never the other channel, whatever the draw.
            const Response retrieved = call("GET", path, key_);
            ASSERT_EQ(retrieved.status, 200) << retrieved.body;
            EXPECT_EQ(retrieved.body, direct(port, "GET", path).body);
            EXPECT_EQ(Json(retrieved.body).string("/id"), id);
        }
        const Response items = call("GET", path + "/input_items?limit=10&order=asc", key_);
        ASSERT_EQ(items.status, 200) << items.body;
        EXPECT_EQ(items.body, direct(port, "GET", path + "/input_items").body);
        EXPECT_EQ(Json(items.body).string("/data/0/content/0/text"), "remember me");
        EXPECT_EQ(Json(mock_stats_text(port)).string("/last_request/path"), path + "/input_items");
        const Response cancelled = call("POST", path + "/cancel", key_);
        ASSERT_EQ(cancelled.status, 200) << cancelled.body;
        EXPECT_EQ(Json(cancelled.body).string("/status"), "cancelled");
        EXPECT_EQ(mock_requests(other_port), 0);
        const int64_t upstream_requests = mock_requests(port);
        EXPECT_EQ(upstream_requests, 3 + 3 + 1 + 1 + 1);  // Ours and the direct ones.
        const Response deleted = call("DELETE", path, key_);
        ASSERT_EQ(deleted.status, 200) << deleted.body;
        EXPECT_NE(deleted.body.find("\"deleted\":true"), std::string::npos) << deleted.body;
        // Forgotten once deleted: answered by the gateway, not sent upstream.
        const Response gone = call("GET", path, key_);
        EXPECT_EQ(gone.status, 404) << gone.body;
        EXPECT_EQ(mock_requests(port), upstream_requests + 1);
    }
    // Two creations and, for each, 3 retrieves, input_items, cancel and delete: one row per
    // upstream request, the stored-response ones free.
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 14, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 14u);
    int creations = 0;
    for (const Row& row : rows) {
        if (row.at("endpoint") == "/v1/responses") {
            creations += 1;
            EXPECT_EQ(row.at("usage_source"), "reported") << describe_row(row);
            continue;
        }
        EXPECT_TRUE(row.at("endpoint") == "GET /v1/responses/{id}" ||
                    row.at("endpoint") == "GET /v1/responses/{id}/input_items" ||
                    row.at("endpoint") == "/v1/responses/{id}/cancel" ||
                    row.at("endpoint") == "DELETE /v1/responses/{id}")
            << describe_row(row);
        EXPECT_EQ(row.at("total_tokens"), "0") << describe_row(row);
        EXPECT_EQ(row.at("model_requested"), "gpt-4o-mini") << describe_row(row);
        EXPECT_EQ(row.at("status"), "200") << describe_row(row);
    }
    EXPECT_EQ(creations, 2);
}

TEST_F(ProxyStoredResponsesTest, AnotherKeyOrAnUnknownIdIsNotFoundAndNothingGoesUpstream) {
    uint16_t port = 0;
    const std::string id = create(false, port);
    ASSERT_NO_FATAL_FAILURE(mock_reset(port));
    for (const auto& [method, path, key] : {std::tuple<std::string, std::string, const Key*>{
                                                "GET", "/v1/responses/" + id, &other_key_},
                                            {"DELETE", "/v1/responses/" + id, &other_key_},
                                            {"GET", "/v1/responses/resp_unknown", &key_},
                                            {"POST", "/v1/responses/resp_unknown/cancel", &key_}}) {
        const Response refused = call(method, path, *key);
        EXPECT_EQ(refused.status, 404) << method << " " << path << ": " << refused.body;
        Json error(refused.body);
        EXPECT_EQ(error.string("/error/type"), "invalid_request_error") << refused.body;
        EXPECT_NE(error.string("/error/message").find("not found"), std::string::npos)
            << refused.body;
    }
    EXPECT_EQ(call("PUT", "/v1/responses/" + id, key_).status, 405);
    EXPECT_EQ(mock_requests(first_mock_.port()) + mock_requests(second_mock_.port()), 0);
    // The creating key still reaches it.
    EXPECT_EQ(call("GET", "/v1/responses/" + id, key_).status, 200);
    const auto rows =
        wait_usage_rows(gateway_.db_path(), other_key_.id, 0, Deadline::after_ms(500));
    EXPECT_TRUE(rows.empty());
}

TEST_F(ProxyStoredResponsesTest, AResponseNotStoredIsNotLearnt) {
    const Response created = gateway_.call(post_request(
        "/v1/responses", R"({"model":"gpt-4o-mini","input":"hi","store":false})", key_.secret));
    ASSERT_EQ(created.status, 200) << created.body;
    const std::string id = Json(created.body).string("/id");
    ASSERT_FALSE(id.empty());
    EXPECT_EQ(call("GET", "/v1/responses/" + id, key_).status, 404);
    EXPECT_EQ(mock_requests(first_mock_.port()) + mock_requests(second_mock_.port()), 1);
}

// previous_response_id names a response only its channel holds: every continuation goes
// there (of two channels drawn at random otherwise), and is itself learnt.
TEST_F(ProxyStoredResponsesTest, AContinuationGoesToTheChannelHoldingThePreviousResponse) {
    uint16_t port = 0;
    std::string previous = create(false, port);
    ASSERT_FALSE(previous.empty());
    const uint16_t other_port =
        port == first_mock_.port() ? second_mock_.port() : first_mock_.port();
    for (int turn = 0; turn < 6; turn++) {
        const Response next = gateway_.call(
            post_request("/v1/responses",
                         R"({"model":"gpt-4o-mini","input":"and then?","previous_response_id":")" +
                             previous + R"("})",
                         key_.secret));
        ASSERT_EQ(next.status, 200) << next.body;
        previous = Json(next.body).string("/id");
    }
    EXPECT_EQ(mock_requests(port), 7);
    EXPECT_EQ(mock_requests(other_port), 0);
    // Another key's id is no pin: that request is routed as any other.
    for (int turn = 0; turn < 6; turn++) {
        EXPECT_EQ(gateway_
                      .call(post_request(
                          "/v1/responses",
                          R"({"model":"gpt-4o-mini","input":"x","previous_response_id":")" +
                              previous + R"("})",
                          other_key_.secret))
                      .status,
                  200);
    }
    EXPECT_EQ(mock_requests(port) + mock_requests(other_port), 13);
}

TEST_F(ProxyStoredResponsesTest, TheIdsSurviveARestart) {
    uint16_t port = 0;
    const std::string id = create(false, port);
    const std::string db = gateway_.db_path();
    ASSERT_NO_FATAL_FAILURE(gateway_.stop());
    Gateway restarted;
    ASSERT_NO_FATAL_FAILURE(restarted.start({{"RINGWAY_SHARDS", "2"}, {"RINGWAY_DB", db}}));
    ASSERT_NO_FATAL_FAILURE(mock_reset(port));
    Response retrieved;
    // The channel's address is resolved shortly after the start (503 until then).
    EXPECT_TRUE(poll_until(Deadline::after_ms(10000), [&] {
        retrieved = restarted.call(method_request("GET", "/v1/responses/" + id, key_.secret));
        return retrieved.status != 503;
    }));
    ASSERT_EQ(retrieved.status, 200) << retrieved.body;
    EXPECT_EQ(Json(retrieved.body).string("/id"), id);
    EXPECT_EQ(mock_requests(port), 1);
    // Still this key's only.
    EXPECT_EQ(
        restarted.call(method_request("GET", "/v1/responses/" + id, other_key_.secret)).status,
        404);
}

}  // namespace
}  // namespace rw::test::proxy
