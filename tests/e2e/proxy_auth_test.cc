// tests/e2e/proxy_auth_test.cc — every refusal the gateway makes before an upstream is
// contacted: missing, unknown, conflicting and revoked keys (revocation takes effect on the
// very next request), models a key may not use or no channel serves, the per-minute rate,
// the concurrency limit and the token quota (exhausted by real usage). A refusal is an
// OpenAI-style error that keeps the connection (the request was well framed), never
// echoes the key, reaches no upstream and writes no usage row; what was admitted is
// billed, and keys.quota_used matches the rows.
#include <gtest/gtest.h>
#include <time.h>

#include <string>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

class ProxyAuthTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_));
        ASSERT_NO_FATAL_FAILURE(gateway_.start({{"RINGWAY_SHARDS", "2"}}));
        ChannelSpec spec;
        spec.name = "main";
        spec.mock_port = mock_.port();
        spec.models = {"gpt-4o-mini", "gpt-4o"};
        ASSERT_GT(gateway_.create_channel(spec), 0);
        ASSERT_EQ(gateway_.wait_channels_routable().at("main").status, 200);
        ASSERT_NO_FATAL_FAILURE(mock_reset(mock_.port()));
    }

    // Sends `request`, expects the gateway's own error with `status` and `code`.
    void expect_refusal(const std::string& request, int status, std::string_view code,
                        std::string_view secret_not_echoed = {}) {
        const Response response = gateway_.call(request);
        EXPECT_EQ(response.status, status) << response.body;
        std::string actual_code;
        EXPECT_EQ(check_error_response(response, &actual_code, false), "");
        EXPECT_EQ(actual_code, code) << response.body;
        if (!secret_not_echoed.empty()) {
            EXPECT_EQ(response.body.find(secret_not_echoed), std::string::npos) << response.body;
        }
    }

    int64_t usage_rows_total() {
        Db db(gateway_.db_path());
        return db.scalar("SELECT COUNT(*) FROM usage_logs WHERE key_id != " +
                         std::to_string(gateway_.probe_key().id));
    }

    MockUpstream mock_;
    Gateway gateway_;
};

TEST_F(ProxyAuthTest, MissingUnknownAndConflictingKeysAreRefused) {
    const Key key = gateway_.create_key(R"({"name":"app"})");
    const std::string body = chat_body("gpt-4o-mini", false);
    expect_refusal(post_request("/v1/chat/completions", body, ""), 401, "missing_api_key");
    const std::string unknown = "sk-rw-this-key-does-not-exist-0123456789abcdef";
    expect_refusal(post_request("/v1/chat/completions", body, unknown), 401, "invalid_api_key",
                   unknown);
    // A Bearer scheme with an empty value is as good as no key.
    expect_refusal(post_request("/v1/chat/completions", body, "", "Authorization: Bearer \r\n"),
                   401, "missing_api_key");
    // Both headers, different keys: refused rather than guessed.
    expect_refusal(
        post_request("/v1/chat/completions", body, key.secret, "x-api-key: " + unknown + "\r\n"),
        401, "invalid_api_key", unknown);
    EXPECT_EQ(mock_requests(mock_.port()), 0);

    // The same key in both headers, or x-api-key alone, is accepted.
    const Response both = gateway_.call(post_request("/v1/chat/completions", body, key.secret,
                                                     "x-api-key: " + key.secret + "\r\n"));
    EXPECT_EQ(both.status, 200) << both.body;
    const Response header_only = gateway_.call(
        post_request("/v1/chat/completions", body, "", "x-api-key: " + key.secret + "\r\n"));
    EXPECT_EQ(header_only.status, 200) << header_only.body;
    EXPECT_EQ(mock_requests(mock_.port()), 2);
    EXPECT_EQ(wait_usage_rows(gateway_.db_path(), key.id, 2, Deadline::after_ms(5000)).size(), 2u);

    const std::string metrics = gateway_.metrics();
    EXPECT_GE(metric_sum(metrics, "ringway_auth_failures_total"), 4);
    EXPECT_EQ(metrics.find(unknown), std::string::npos);
    EXPECT_EQ(gateway_.ringway().stderr_text().find(unknown), std::string::npos)
        << "a key that failed authentication reached the log";
    EXPECT_EQ(gateway_.ringway().stderr_text().find(key.secret), std::string::npos);
}

TEST_F(ProxyAuthTest, RevocationTakesEffectOnTheNextRequest) {
    const Key key = gateway_.create_key(R"({"name":"soon-revoked"})");
    const std::string body = chat_body("gpt-4o-mini", false);
    ASSERT_EQ(gateway_.chat(key, body).status, 200);
    // Keep a connection open across the revocation: it must not keep the key alive either.
    Client client;
    ASSERT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000)));
    ASSERT_TRUE(client.send(post_request("/v1/chat/completions", body, key.secret),
                            Deadline::after_ms(5000)));
    const auto first = client.read_response(Deadline::after_ms(10000));
    ASSERT_TRUE(first.has_value());
    ASSERT_EQ(first->status, 200);

    const Response revoked = gateway_.admin("DELETE", "/admin/keys/" + std::to_string(key.id));
    ASSERT_EQ(revoked.status, 200) << revoked.body;
    expect_refusal(post_request("/v1/chat/completions", body, key.secret), 401, "invalid_api_key",
                   key.secret);
    ASSERT_TRUE(client.send(post_request("/v1/chat/completions", body, key.secret),
                            Deadline::after_ms(5000)));
    const auto after = client.read_response(Deadline::after_ms(10000));
    ASSERT_TRUE(after.has_value());
    EXPECT_EQ(after->status, 401) << after->body;
    EXPECT_EQ(gateway_.call(get_with_key("/v1/models", key.secret)).status, 401);
    EXPECT_EQ(mock_requests(mock_.port()), 2);
}

TEST_F(ProxyAuthTest, ModelRefusals) {
    const Key narrow = gateway_.create_key(R"({"name":"narrow","models":["gpt-4o-mini"]})");
    expect_refusal(post_request("/v1/chat/completions", chat_body("gpt-4o", false), narrow.secret),
                   403, "model_not_allowed");
    const Key wide = gateway_.create_key(R"({"name":"wide"})");
    expect_refusal(
        post_request("/v1/chat/completions", chat_body("no-such-model", false), wide.secret), 404,
        "model_not_found");
    // A body without a usable model is the client's mistake.
    const Response no_model =
        gateway_.call(post_request("/v1/chat/completions", R"({"messages":[]})", wide.secret));
    EXPECT_EQ(no_model.status, 400) << no_model.body;
    const Response bad_json = gateway_.call(
        post_request("/v1/chat/completions", R"({"model":"gpt-4o-mini",)", wide.secret));
    EXPECT_EQ(bad_json.status, 400) << bad_json.body;
    EXPECT_EQ(gateway_.chat(narrow, chat_body("gpt-4o-mini", false)).status, 200);
    EXPECT_EQ(mock_requests(mock_.port()), 1);
    EXPECT_EQ(wait_usage_rows(gateway_.db_path(), narrow.id, 1, Deadline::after_ms(5000)).size(),
              1u);
    EXPECT_EQ(usage_rows_total(), 1);
}

TEST_F(ProxyAuthTest, RequestsPerMinuteAreLimited) {
    const Key key = gateway_.create_key(R"({"name":"slow","rpm":3})");
    const std::string body = chat_body("gpt-4o-mini", false);
    // The window is a calendar minute: if it turns over mid-test the count restarts, so
    // the sequence runs again (at most once more) in the new minute.
    for (int round = 0; round < 2; round++) {
        const time_t minute_before = time(nullptr) / 60;
        int admitted = 0;
        Response refused;
        for (int i = 0; i < 4; i++) {
            const Response response = gateway_.chat(key, body);
            if (response.status == 200) {
                admitted += 1;
            }
            if (response.status == 429) {
                refused = response;
            }
        }
        if (time(nullptr) / 60 != minute_before) {
            continue;
        }
        if (round == 0) {
            EXPECT_EQ(admitted, 3);
        }
        EXPECT_EQ(refused.status, 429);
        std::string code;
        EXPECT_EQ(check_error_response(refused, &code, false), "");
        EXPECT_EQ(code, "rate_limit_exceeded");
        break;
    }
    // Another key is not affected.
    const Key other = gateway_.create_key(R"({"name":"other"})");
    EXPECT_EQ(gateway_.chat(other, body).status, 200);
    EXPECT_GE(gateway_.metric("ringway_limited_total"), 1);
}

TEST_F(ProxyAuthTest, ConcurrencyLimitHoldsWhileAStreamRunsAndIsReleasedAfter) {
    const Key key = gateway_.create_key(R"({"name":"one-at-a-time","max_concurrency":1})");
    Client slow;
    ASSERT_TRUE(slow.connect(gateway_.port(), Deadline::after_ms(5000)));
    ASSERT_TRUE(slow.send(post_request("/v1/chat/completions",
                                       chat_body("gpt-4o-mini", true,
                                                 R"("x_mock":{"chunks":4,"event-delay-ms":300})"),
                                       key.secret),
                          Deadline::after_ms(5000)));
    ASSERT_TRUE(slow.wait_readable(Deadline::after_ms(5000)));  // The stream has started.
    expect_refusal(
        post_request("/v1/chat/completions", chat_body("gpt-4o-mini", false), key.secret), 429,
        "concurrency_limit_exceeded");
    const auto streamed = slow.read_response(Deadline::after_ms(10000));
    ASSERT_TRUE(streamed.has_value());
    EXPECT_EQ(streamed->status, 200);
    // The slot is released when the request ends: poll, the release races our read.
    bool is_admitted = poll_until(Deadline::after_ms(3000), [&] {
        return gateway_.chat(key, chat_body("gpt-4o-mini", false)).status == 200;
    });
    EXPECT_TRUE(is_admitted);
}

TEST_F(ProxyAuthTest, QuotaIsExhaustedByUsageAndMatchesTheRows) {
    // Each request costs exactly 10 prompt + 3 completion tokens (the mock's controls) and
    // reserves its bound at admission: its body's bytes plus its max_tokens. The streamed
    // body is longer ("stream":true), so it asks for fewer output tokens: both bound to b.
    const std::string body =
        chat_body("gpt-4o-mini", false, R"("x_mock":{"prompt-tokens":10},"max_tokens":100)");
    const int64_t bound = int64_t(body.size()) + 100;
    auto stream_body_with = [](int64_t max_tokens) {
        return chat_body(
            "gpt-4o-mini", true,
            R"("x_mock":{"prompt-tokens":10},"max_tokens":)" + std::to_string(max_tokens));
    };
    int64_t max_tokens_stream = 100;
    while (max_tokens_stream > 0 &&
           int64_t(stream_body_with(max_tokens_stream).size()) + max_tokens_stream != bound) {
        max_tokens_stream -= 1;
    }
    const std::string stream_body = stream_body_with(max_tokens_stream);
    ASSERT_EQ(int64_t(stream_body.size()) + max_tokens_stream, bound);
    // Room for exactly three requests one after the other (13 + 13 + a third bound), not
    // for a fourth: the quota can never be overshot.
    const int64_t quota = 26 + bound;
    const Key key =
        gateway_.create_key(R"({"name":"metered","quota_tokens":)" + std::to_string(quota) + "}");
    EXPECT_EQ(gateway_.chat(key, body).status, 200);         // used 13
    EXPECT_EQ(gateway_.chat(key, stream_body).status, 200);  // used 26
    EXPECT_EQ(gateway_.chat(key, body).status, 200);         // used 39: 26 + bound fitted
    // 39 + bound > quota: refused before any upstream, stream or not.
    expect_refusal(post_request("/v1/chat/completions", body, key.secret), 429,
                   "insufficient_quota");
    expect_refusal(post_request("/v1/chat/completions", stream_body, key.secret), 429,
                   "insufficient_quota");
    EXPECT_EQ(mock_requests(mock_.port()), 3);

    const auto rows = wait_usage_rows(gateway_.db_path(), key.id, 3, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 3u);
    for (const Row& row : rows) {
        EXPECT_EQ(as_int(row, "total_tokens"), 13) << describe_row(row);
        EXPECT_EQ(row.at("usage_source"), "reported");
    }
    Db db(gateway_.db_path());
    const std::string id = std::to_string(key.id);
    EXPECT_TRUE(poll_until(Deadline::after_ms(5000), [&] {
        return db.scalar("SELECT quota_used FROM keys WHERE id = " + id) == 39;
    })) << db.scalar("SELECT quota_used FROM keys WHERE id = " + id);
    EXPECT_LE(39, quota);
    EXPECT_EQ(db.scalar("SELECT SUM(total_tokens) FROM usage_logs WHERE key_id = " + id), 39);
    EXPECT_EQ(db.scalar("SELECT SUM(total_tokens) FROM daily_usage WHERE key_id = " + id), 39);
    EXPECT_EQ(db.scalar("SELECT SUM(requests) FROM daily_usage WHERE key_id = " + id), 3);
    EXPECT_EQ(gateway_.metric("ringway_quota_reserved_tokens"), 0);

    // A refused key's quota state is visible through the admin API too.
    const Response keys = gateway_.admin("GET", "/admin/keys");
    EXPECT_NE(keys.body.find("\"quota_used_tokens\":39"), std::string::npos) << keys.body;
}

TEST_F(ProxyAuthTest, AnOutputLimitThatIsNotAnIntegerIsRefused) {
    const Key key = gateway_.create_key(R"({"name":"app","quota_tokens":1000000})");
    for (const std::string limit : {R"("max_tokens":1.5)", R"("max_tokens":-1)",
                                    R"("max_completion_tokens":"many")", R"("n":0)"}) {
        expect_refusal(post_request("/v1/chat/completions", chat_body("gpt-4o-mini", false, limit),
                                    key.secret),
                       400, "invalid_type");
    }
    EXPECT_EQ(mock_requests(mock_.port()), 0);
}

}  // namespace
}  // namespace rw::test::proxy
