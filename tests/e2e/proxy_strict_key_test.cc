// tests/e2e/proxy_strict_key_test.cc — strict keys against the mock upstream. A strict
// key's request that sets no output limit gets the largest one its remaining budget (and
// token quota) affords after its body's bound, capped by RINGWAY_DEFAULT_OUTPUT_RESERVE,
// written into the body the upstream sees under the endpoint's name (max_tokens,
// max_completion_tokens for OpenAI reasoning models, max_output_tokens on responses); a
// budget that affords fewer than RINGWAY_STRICT_OUTPUT_MIN tokens is 429
// insufficient_quota before any upstream. With a mock that stops at the limit (as
// providers do), requests without a limit never take a strict key past its budget or
// quota; a key that is not strict sends its bodies unchanged.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

// $1 per million input tokens (1000 nano-USD a token), $2 per million output (2000).
constexpr int64_t input_nano = 1000;
constexpr int64_t output_nano = 2000;

// A chat body without an output limit; the mock writes `chunks` tokens unless the body's
// limit stops it first.
std::string no_limit_body(std::string_view model, int chunks) {
    return chat_body(model, false,
                     R"("x_mock":{"prompt-tokens":10,"obey-max-tokens":1,"chunks":)" +
                         std::to_string(chunks) + "}");
}

class StrictKey : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_));
        ASSERT_NO_FATAL_FAILURE(gateway_.start({{"RINGWAY_DEFAULT_OUTPUT_RESERVE", "500"}}));
        ChannelSpec spec;
        spec.name = "main";
        spec.mock_port = mock_.port();
        spec.models = {"gpt-4o-mini", "o3-mini"};
        ASSERT_GT(gateway_.create_channel(spec), 0);
        gateway_.wait_channels_routable();
        for (const char* model : {"gpt-4o-mini", "o3-mini"}) {
            const Response price = gateway_.admin(
                "POST", "/admin/prices",
                std::string(R"({"model":")") + model +
                    R"(","input_per_mtok":"1","output_per_mtok":"2","effective_from":0})");
            ASSERT_EQ(price.status, 201) << price.body;
        }
        ASSERT_NO_FATAL_FAILURE(mock_reset(mock_.port()));
    }

    std::string last_body() {
        return Json(mock_stats_text(mock_.port())).string("/last_request/body");
    }
    int64_t scalar(const std::string& sql) { return Db(gateway_.db_path()).scalar(sql); }

    MockUpstream mock_;
    Gateway gateway_;
};

TEST_F(StrictKey, TheAffordableLimitIsInjectedInTheEndpointsField) {
    const std::string body = no_limit_body("gpt-4o-mini", 3);
    // Affords the body's bound and exactly 100 output tokens.
    const int64_t budget = int64_t(body.size()) * input_nano + 100 * output_nano;
    const Key key = gateway_.create_key(R"({"name":"strict","strict":true,"budget_usd":")" +
                                        usd(budget) + "\"}");
    const Response shown = gateway_.admin("GET", "/admin/keys/" + std::to_string(key.id));
    EXPECT_EQ(Json(shown.body).boolean("/strict"), std::optional<bool>(true)) << shown.body;
    const Response answer = gateway_.chat(key, body);
    ASSERT_EQ(answer.status, 200) << answer.body;
    EXPECT_EQ(member_value(last_body(), "max_tokens"), 100) << last_body();

    // A key with room for more is capped by RINGWAY_DEFAULT_OUTPUT_RESERVE (500); an OpenAI
    // reasoning model gets max_completion_tokens, responses max_output_tokens.
    const Key rich = gateway_.create_key(R"({"name":"rich","strict":true,"budget_usd":"10"})");
    ASSERT_EQ(gateway_.chat(rich, no_limit_body("gpt-4o-mini", 3)).status, 200);
    EXPECT_EQ(member_value(last_body(), "max_tokens"), 500) << last_body();
    ASSERT_EQ(gateway_.chat(rich, no_limit_body("o3-mini", 3)).status, 200);
    EXPECT_EQ(member_value(last_body(), "max_completion_tokens"), 500) << last_body();
    EXPECT_EQ(member_value(last_body(), "max_tokens"), -1) << last_body();
    const Response responses = gateway_.call(
        post_request("/v1/responses", R"({"model":"gpt-4o-mini","input":"hi"})", rich.secret));
    ASSERT_EQ(responses.status, 200) << responses.body;
    EXPECT_EQ(member_value(last_body(), "max_output_tokens"), 500) << last_body();
    // A request with its own limit is sent as written.
    const std::string limited =
        chat_body("gpt-4o-mini", false, R"("x_mock":{"prompt-tokens":10},"max_tokens":7)");
    ASSERT_EQ(gateway_.chat(rich, limited).status, 200);
    EXPECT_EQ(last_body(), limited);

    // Not strict: the same request reaches the mock unchanged.
    const Key plain = gateway_.create_key(R"({"name":"plain","budget_usd":"10"})");
    const std::string plain_body = no_limit_body("gpt-4o-mini", 3);
    ASSERT_EQ(gateway_.chat(plain, plain_body).status, 200);
    EXPECT_EQ(last_body(), plain_body);
    // PATCH turns it off again.
    const Response patched =
        gateway_.admin("PATCH", "/admin/keys/" + std::to_string(rich.id), R"({"strict":false})");
    EXPECT_EQ(Json(patched.body).boolean("/strict"), std::optional<bool>(false)) << patched.body;
    ASSERT_EQ(gateway_.chat(rich, plain_body).status, 200);
    EXPECT_EQ(last_body(), plain_body);
}

// Requests with no limit, each wanting 300 tokens, on a budget worth about 2.5 of them:
// the limits shrink as the budget goes, the key is refused once it affords nothing, and
// the usage log's cost never passes the budget.
TEST_F(StrictKey, RequestsWithoutALimitNeverSpendPastTheBudget) {
    const std::string body = no_limit_body("gpt-4o-mini", 300);
    const int64_t budget = 5 * int64_t(body.size()) * input_nano + 750 * output_nano;
    const Key key = gateway_.create_key(R"({"name":"strict","strict":true,"budget_usd":")" +
                                        usd(budget) + "\"}");
    int served = 0;
    int64_t smallest = INT64_MAX;
    Response refused;
    for (int i = 0; i < 20; i++) {
        const Response answer = gateway_.chat(key, body);
        if (answer.status != 200) {
            refused = answer;
            break;
        }
        served += 1;
        smallest = std::min(smallest, member_value(last_body(), "max_tokens"));
    }
    EXPECT_GE(served, 3);
    EXPECT_LT(smallest, 300);  // The last one was cut to what was left.
    EXPECT_EQ(refused.status, 429) << refused.body;
    EXPECT_NE(refused.body.find("insufficient_quota"), std::string::npos) << refused.body;
    const std::string id = std::to_string(key.id);
    ASSERT_TRUE(poll_until(Deadline::after_ms(5000), [&] {
        return scalar("SELECT COUNT(*) FROM usage_logs WHERE key_id = " + id) == served;
    }));
    const int64_t spent = scalar("SELECT SUM(cost_nano) FROM usage_logs WHERE key_id = " + id);
    EXPECT_LE(spent, budget);
    EXPECT_GT(spent, budget / 2);
    const int64_t before = mock_requests(mock_.port());
    EXPECT_EQ(gateway_.chat(key, body).status, 429);
    EXPECT_EQ(mock_requests(mock_.port()), before);  // Refused before any upstream.
}

// The same over a lifetime token quota (no money): quota_used never passes the quota.
TEST_F(StrictKey, RequestsWithoutALimitNeverSpendPastTheTokenQuota) {
    const std::string body = no_limit_body("gpt-4o-mini", 300);
    const int64_t quota = 3 * int64_t(body.size()) + 700;
    const Key key = gateway_.create_key(R"({"name":"tokens","strict":true,"quota_tokens":)" +
                                        std::to_string(quota) + "}");
    int served = 0;
    for (int i = 0; i < 20 && gateway_.chat(key, body).status == 200; i++) {
        served += 1;
    }
    EXPECT_GE(served, 2);
    const std::string id = std::to_string(key.id);
    ASSERT_TRUE(poll_until(Deadline::after_ms(5000), [&] {
        return scalar("SELECT COUNT(*) FROM usage_logs WHERE key_id = " + id) == served;
    }));
    EXPECT_LE(scalar("SELECT quota_used FROM keys WHERE id = " + id), quota);
}

// A budget that does not cover the body's own bound plus one output token: 429 at once.
TEST_F(StrictKey, ABudgetThatAffordsNoOutputIsRefusedBeforeTheUpstream) {
    const std::string body = no_limit_body("gpt-4o-mini", 3);
    const int64_t budget = int64_t(body.size()) * input_nano + output_nano - 1;
    const Key key =
        gateway_.create_key(R"({"name":"poor","strict":true,"budget_usd":")" + usd(budget) + "\"}");
    const Response refused = gateway_.chat(key, body);
    EXPECT_EQ(refused.status, 429) << refused.body;
    EXPECT_NE(refused.body.find("insufficient_quota"), std::string::npos) << refused.body;
    EXPECT_EQ(mock_requests(mock_.port()), 0);
}

}  // namespace
}  // namespace rw::test::proxy
