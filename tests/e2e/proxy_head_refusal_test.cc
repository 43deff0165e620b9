// tests/e2e/proxy_head_refusal_test.cc — strangers are refused before their body (issue 8,
// Clients). The checks that need no body (credentials, key, quota, rpm, concurrency) run
// once the head is parsed: a refusal is answered at once, a small body is read and dropped
// with the connection kept, a large (or 100-continue, or chunked) one closes after the
// answer, and no refused body is ever stored. Policy refusals of a well-framed request
// keep the connection; rpm and concurrency are counted once and released on every path.
#include <gtest/gtest.h>
#include <time.h>

#include <string>
#include <vector>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

constexpr std::string_view unknown_key = "sk-rw-not-a-key-of-this-gateway-0123456789abcdef";

// "POST /v1/chat/completions" head announcing content_length bytes, without the body.
std::string chat_head(std::string_view api_key, uint64_t content_length,
                      std::string_view extra_headers = {}) {
    std::string head = "POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n";
    if (!api_key.empty()) {
        head += "Authorization: Bearer " + std::string(api_key) + "\r\n";
    }
    return head +
           "Content-Type: application/json\r\nContent-Length: " + std::to_string(content_length) +
           "\r\n" + std::string(extra_headers) + "\r\n";
}

class ProxyHeadRefusalTest : public ::testing::Test {
protected:
    void SetUp() override { start({}); }

    void start(EnvList env) {
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_));
        // A long body timeout: an answer that waited for the body would show as a 408
        // long after the deadlines below.
        env.emplace_back("RINGWAY_SHARDS", "1");
        env.emplace_back("RINGWAY_BODY_TIMEOUT_MS", "20000");
        ASSERT_NO_FATAL_FAILURE(gateway_.start(env));
        ChannelSpec spec;
        spec.name = "main";
        spec.mock_port = mock_.port();
        spec.models = {"gpt-4o-mini", "gpt-4o"};
        ASSERT_GT(gateway_.create_channel(spec), 0);
        ASSERT_EQ(gateway_.wait_channels_routable().at("main").status, 200);
        ASSERT_NO_FATAL_FAILURE(mock_reset(mock_.port()));
    }

    Client connect() {
        Client client;
        std::string error;
        EXPECT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000), &error)) << error;
        return client;
    }

    // Reads one response within timeout_ms and checks it is the gateway's refusal.
    Response expect_refused(Client& client, int status, std::string_view code, bool is_close,
                            int64_t timeout_ms = 3000) {
        std::string error;
        const auto response = client.read_response(Deadline::after_ms(timeout_ms), false, &error);
        EXPECT_TRUE(response.has_value()) << error;
        if (!response.has_value()) {
            return {};
        }
        EXPECT_EQ(response->status, status) << response->body;
        std::string actual_code;
        EXPECT_EQ(check_error_response(*response, &actual_code, is_close), "");
        EXPECT_EQ(actual_code, code) << response->body;
        return *response;
    }

    // A valid chat request on `client`, answered 200.
    void expect_chat_ok(Client& client, const Key& key) {
        ASSERT_TRUE(client.send(
            post_request("/v1/chat/completions", chat_body("gpt-4o-mini", false), key.secret),
            Deadline::after_ms(5000)));
        std::string error;
        const auto response = client.read_response(Deadline::after_ms(10000), false, &error);
        ASSERT_TRUE(response.has_value()) << error;
        EXPECT_EQ(response->status, 200) << response->body;
    }

    MockUpstream mock_;
    Gateway gateway_;
};

TEST_F(ProxyHeadRefusalTest, NoKeyIsRefusedBeforeTheBodyArrives) {
    // The probe of issue 8: Content-Length 100000, ten bytes, then nothing. The answer is
    // 401 at once (not a 408 after the body timeout) and the large body closes.
    Client client = connect();
    const Clock::time_point start = Clock::now();
    ASSERT_TRUE(client.send(chat_head("", 100000) + "0123456789", Deadline::after_ms(5000)));
    expect_refused(client, 401, "missing_api_key", true);
    EXPECT_LT(elapsed_ms(start), 3000);
    EXPECT_TRUE(client.wait_closed(Deadline::after_ms(5000)));
    // A wrong key is refused the same way, and so is an unknown path.
    Client wrong = connect();
    ASSERT_TRUE(wrong.send(chat_head(unknown_key, 100000), Deadline::after_ms(5000)));
    const Response refused = expect_refused(wrong, 401, "invalid_api_key", true);
    EXPECT_EQ(refused.body.find(unknown_key), std::string::npos);
    Client lost = connect();
    ASSERT_TRUE(lost.send("POST /v1/nowhere HTTP/1.1\r\nHost: g\r\nContent-Length: 900000\r\n\r\n",
                          Deadline::after_ms(5000)));
    expect_refused(lost, 404, "unknown_url", true);
    EXPECT_EQ(mock_requests(mock_.port()), 0);
    EXPECT_GE(gateway_.metric("ringway_head_refusals_total"), 3);
}

TEST_F(ProxyHeadRefusalTest, ExpectContinueIsRefusedWithoutAContinue) {
    const Key key = gateway_.create_key(R"({"name":"app"})");
    const std::string body = chat_body("gpt-4o-mini", false);
    for (const std::string_view secret : {std::string_view(), unknown_key}) {
        SCOPED_TRACE(secret.empty() ? "no key" : "wrong key");
        Client client = connect();
        ASSERT_TRUE(client.send(chat_head(secret, body.size(), "Expect: 100-continue\r\n"),
                                Deadline::after_ms(5000)));
        // The first response is the refusal, never 100 Continue; the client never sends
        // its body, so the connection cannot be reused and closes.
        expect_refused(client, 401, secret.empty() ? "missing_api_key" : "invalid_api_key", true);
        EXPECT_TRUE(client.wait_closed(Deadline::after_ms(5000)));
        EXPECT_EQ(client.unread().find("100 Continue"), std::string::npos) << client.unread();
    }
    // A valid key gets its 100 Continue, then the answer.
    Client client = connect();
    ASSERT_TRUE(client.send(chat_head(key.secret, body.size(), "Expect: 100-continue\r\n"),
                            Deadline::after_ms(5000)));
    std::string error;
    const auto interim = client.read_response(Deadline::after_ms(5000), false, &error);
    ASSERT_TRUE(interim.has_value()) << error;
    ASSERT_EQ(interim->status, 100);
    ASSERT_TRUE(client.send(body, Deadline::after_ms(5000)));
    const auto final_response = client.read_response(Deadline::after_ms(10000), false, &error);
    ASSERT_TRUE(final_response.has_value()) << error;
    EXPECT_EQ(final_response->status, 200) << final_response->body;
    EXPECT_EQ(mock_requests(mock_.port()), 1);
}

TEST_F(ProxyHeadRefusalTest, ARefusedSmallBodyKeepsTheConnection) {
    const Key key = gateway_.create_key(R"({"name":"app"})");
    const std::string body = chat_body("gpt-4o-mini", false);
    Client client = connect();
    // Head and body together, a valid request pipelined behind: the refused body is read
    // and dropped, and the next request is answered on the same connection.
    ASSERT_TRUE(client.send(post_request("/v1/chat/completions", body, "") +
                                post_request("/v1/chat/completions", body, key.secret),
                            Deadline::after_ms(5000)));
    expect_refused(client, 401, "missing_api_key", false);
    std::string error;
    const auto second = client.read_response(Deadline::after_ms(10000), false, &error);
    ASSERT_TRUE(second.has_value()) << error;
    EXPECT_EQ(second->status, 200) << second->body;
    // The head first, the answer read, and only then the body: still the same connection.
    ASSERT_TRUE(client.send(chat_head(unknown_key, body.size()), Deadline::after_ms(5000)));
    expect_refused(client, 401, "invalid_api_key", false);
    ASSERT_TRUE(client.send(body, Deadline::after_ms(5000)));
    ASSERT_NO_FATAL_FAILURE(expect_chat_ok(client, key));
    // Refusals after the body (403, 404, 400) keep the connection too.
    const Key narrow = gateway_.create_key(R"({"name":"narrow","models":["gpt-4o-mini"]})");
    ASSERT_TRUE(
        client.send(post_request("/v1/chat/completions", chat_body("gpt-4o", false), narrow.secret),
                    Deadline::after_ms(5000)));
    expect_refused(client, 403, "model_not_allowed", false);
    ASSERT_TRUE(client.send(
        post_request("/v1/chat/completions", chat_body("no-such-model", false), key.secret),
        Deadline::after_ms(5000)));
    expect_refused(client, 404, "model_not_found", false);
    ASSERT_TRUE(client.send(post_request("/v1/chat/completions", "{\"model\":", key.secret),
                            Deadline::after_ms(5000)));
    const auto bad_json = client.read_response(Deadline::after_ms(5000), false, &error);
    ASSERT_TRUE(bad_json.has_value()) << error;
    EXPECT_EQ(bad_json->status, 400);
    EXPECT_FALSE(bad_json->connection_has("close"));
    ASSERT_NO_FATAL_FAILURE(expect_chat_ok(client, key));
    EXPECT_EQ(mock_requests(mock_.port()), 3);
}

TEST_F(ProxyHeadRefusalTest, ALargeBodyRefusalCloses) {
    // Over RINGWAY_DISCARD_BODY_MAX_BYTES (64 KiB): answered with Connection: close and
    // closed, whatever the client keeps sending.
    Client client = connect();
    ASSERT_TRUE(client.send(chat_head("", 64 * 1024 + 1), Deadline::after_ms(5000)));
    expect_refused(client, 401, "missing_api_key", true);
    (void)client.send(std::string(32 * 1024, 'x'), Deadline::after_ms(2000));
    EXPECT_TRUE(client.wait_closed(Deadline::after_ms(5000)));
    // A chunked body has no known end: closed too.
    Client chunked = connect();
    ASSERT_TRUE(chunked.send(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n0\r\n\r\n",
        Deadline::after_ms(5000)));
    expect_refused(chunked, 401, "missing_api_key", true);
    EXPECT_TRUE(chunked.wait_closed(Deadline::after_ms(5000)));
    // Exactly at the limit: read, dropped, kept.
    const Key key = gateway_.create_key(R"({"name":"app"})");
    Client at_limit = connect();
    ASSERT_TRUE(at_limit.send(chat_head("", 64 * 1024) + std::string(64 * 1024, 'x'),
                              Deadline::after_ms(5000)));
    expect_refused(at_limit, 401, "missing_api_key", false);
    ASSERT_NO_FATAL_FAILURE(expect_chat_ok(at_limit, key));
}

TEST_F(ProxyHeadRefusalTest, TwentyStrangersUploadingDoNotGrowMemory) {
    // Issue 8: twenty clients without a key sending 12 MB each made the gateway hold
    // ~190 MB. Refused at their heads, none of their bodies is stored: the shard's pool
    // stays within a few MiB (each body reserved whole at its head would need 12 MiB).
    constexpr uint64_t body_bytes = 12ull << 20;
    constexpr uint64_t pool_bound_bytes = 8ull << 20;
    const double pool_before = metric_sum(gateway_.metrics(), "ringway_arena_pool_bytes");
    std::vector<Client> clients;
    const std::string chunk(256 * 1024, 'x');
    for (int index = 0; index < 20; index++) {
        clients.push_back(connect());
        ASSERT_TRUE(clients.back().send(chat_head("", body_bytes), Deadline::after_ms(5000)));
    }
    // Each sends up to 2 MiB of its body; the gateway answers and closes, so sends fail.
    for (int round = 0; round < 8; round++) {
        for (Client& client : clients) {
            (void)client.send(chunk, Deadline::after_ms(200));
        }
        const std::string text = gateway_.metrics();
        const double in_use = metric_sum(text, "ringway_arena_pool_bytes", {{"state", "in_use"}});
        const double total = metric_sum(text, "ringway_arena_pool_bytes");
        EXPECT_LT(in_use, pool_bound_bytes) << "round " << round;
        EXPECT_LT(total, pool_before + pool_bound_bytes) << "round " << round;
    }
    int refused_count = 0;
    for (Client& client : clients) {
        std::string error;
        const auto response = client.read_response(Deadline::after_ms(5000), false, &error);
        if (response.has_value() && response->status == 401) {
            refused_count += 1;
        }
        EXPECT_TRUE(client.wait_closed(Deadline::after_ms(5000)));
    }
    EXPECT_EQ(refused_count, 20);
    EXPECT_GE(gateway_.metric("ringway_head_refusals_total"), 20);
    EXPECT_EQ(metric_sum(gateway_.metrics(), "ringway_timeouts_total", {{"phase", "body"}}), 0);
}

TEST_F(ProxyHeadRefusalTest, RequestsPerMinuteAreCountedOnce) {
    // rpm 2: two requests pass (counted at the head only, not again with the body), the
    // third is refused at its head, before its body, with the connection kept.
    const Key key = gateway_.create_key(R"({"name":"rpm","rpm":2})");
    for (int round = 0; round < 2; round++) {  // Once more if the minute turned over.
        const time_t minute_before = time(nullptr) / 60;
        Client client = connect();
        int admitted = 0;
        for (int index = 0; index < 2; index++) {
            ASSERT_TRUE(client.send(
                post_request("/v1/chat/completions", chat_body("gpt-4o-mini", false), key.secret),
                Deadline::after_ms(5000)));
            std::string error;
            const auto response = client.read_response(Deadline::after_ms(10000), false, &error);
            ASSERT_TRUE(response.has_value()) << error;
            admitted += response->status == 200 ? 1 : 0;
        }
        ASSERT_TRUE(client.send(chat_head(key.secret, 20), Deadline::after_ms(5000)));
        std::string error;
        const auto third = client.read_response(Deadline::after_ms(3000), false, &error);
        if (time(nullptr) / 60 != minute_before) {
            continue;
        }
        EXPECT_EQ(admitted, round == 0 ? 2 : admitted);
        ASSERT_TRUE(third.has_value()) << error << " (the refusal must not wait for the body)";
        EXPECT_EQ(third->status, 429) << third->body;
        EXPECT_FALSE(third->connection_has("close"));
        break;
    }
}

TEST_F(ProxyHeadRefusalTest, ConcurrencyIsHeldFromTheHeadAndReleasedOnEveryPath) {
    const Key key = gateway_.create_key(R"({"name":"one","max_concurrency":1})");
    const std::string body = chat_body("gpt-4o-mini", false);
    // Sequential requests: each releases its slot (counted once, not twice).
    Client client = connect();
    for (int index = 0; index < 3; index++) {
        ASSERT_NO_FATAL_FAILURE(expect_chat_ok(client, key));
    }
    // A client uploading holds the slot: another request is refused at its head.
    Client uploading = connect();
    ASSERT_TRUE(uploading.send(chat_head(key.secret, body.size()) + body.substr(0, 5),
                               Deadline::after_ms(5000)));
    EXPECT_FALSE(uploading.wait_readable(Deadline::after_ms(100)));
    Client other = connect();
    ASSERT_TRUE(other.send(chat_head(key.secret, body.size()), Deadline::after_ms(5000)));
    expect_refused(other, 429, "concurrency_limit_exceeded", false);
    // The uploader leaves before its body is complete: the slot comes back.
    uploading.close();
    EXPECT_TRUE(poll_until(Deadline::after_ms(5000), [&] {
        return gateway_.chat(key, body).status == 200;
    })) << "the slot of an abandoned upload was not released";
    // A body refused after it arrived (bad JSON) releases it too.
    const Response bad = gateway_.call(post_request("/v1/chat/completions", "{", key.secret));
    EXPECT_EQ(bad.status, 400) << bad.body;
    EXPECT_EQ(gateway_.chat(key, body).status, 200);
    EXPECT_EQ(mock_requests(mock_.port()), 5);
}

// A client that never sends its body: the body deadline answers 408 and releases the slot.
TEST(ProxyHeadRefusalTimeout, AStalledBodyReleasesItsSlotAtTheDeadline) {
    MockUpstream mock;
    ASSERT_NO_FATAL_FAILURE(start_mock(mock));
    Gateway gateway;
    ASSERT_NO_FATAL_FAILURE(
        gateway.start({{"RINGWAY_SHARDS", "1"}, {"RINGWAY_BODY_TIMEOUT_MS", "400"}}));
    ChannelSpec spec;
    spec.name = "main";
    spec.mock_port = mock.port();
    spec.models = {"gpt-4o-mini"};
    ASSERT_GT(gateway.create_channel(spec), 0);
    ASSERT_EQ(gateway.wait_channels_routable().at("main").status, 200);
    const Key key = gateway.create_key(R"({"name":"one","max_concurrency":1})");
    const std::string body = chat_body("gpt-4o-mini", false);
    Client stalled;
    ASSERT_TRUE(stalled.connect(gateway.port(), Deadline::after_ms(5000)));
    ASSERT_TRUE(stalled.send(chat_head(key.secret, body.size()), Deadline::after_ms(5000)));
    std::string error;
    const auto timed_out = stalled.read_response(Deadline::after_ms(5000), false, &error);
    ASSERT_TRUE(timed_out.has_value()) << error;
    EXPECT_EQ(timed_out->status, 408) << timed_out->body;
    EXPECT_EQ(gateway.chat(key, body).status, 200) << "the stalled request kept its slot";
}

}  // namespace
}  // namespace rw::test::proxy
