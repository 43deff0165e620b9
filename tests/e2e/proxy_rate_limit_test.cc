// tests/e2e/proxy_rate_limit_test.cc — rate limits a client can read (issue "Ledger",
// part 3): requests per minute as a token bucket (no minute boundary lets twice the limit
// through), tokens per minute reserved from the request's bound and settled to its usage,
// per key and per key and model, a refusal by one limit spending no other's budget, and
// the x-ratelimit-* headers on 429 and on 200 (whole and streamed) replacing the
// provider's. The gateway's clock is moved by RINGWAY_TEST_CLOCK_FILE (the test binary's
// hook) so the boundary test need not wait for the wall clock's minute.
#include <gtest/gtest.h>
#include <time.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

int64_t wall_ms() {
    timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return int64_t(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

int64_t header_int(const Response& response, std::string_view name) {
    const auto value = response.header(name);
    return value.has_value() ? std::stoll(*value) : -1;
}

class ProxyRateLimitTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_));
        // The gateway's rate clock starts at second 35 of a minute: a start that takes less
        // than 22 s leaves the boundary test a short wait for second 57.
        clock_offset_ms_ = ((35'000 - wall_ms() % 60'000) + 60'000) % 60'000;
        const std::string clock_file = clock_dir_.path() + "/clock";
        std::ofstream(clock_file, std::ios::trunc) << clock_offset_ms_;
        ASSERT_NO_FATAL_FAILURE(
            gateway_.start({{"RINGWAY_SHARDS", "2"}, {"RINGWAY_TEST_CLOCK_FILE", clock_file}}));
        ChannelSpec spec;
        spec.name = "main";
        spec.mock_port = mock_.port();
        spec.models = {"gpt-4o-mini", "gpt-4o"};
        ASSERT_GT(gateway_.create_channel(spec), 0);
        ASSERT_EQ(gateway_.wait_channels_routable().at("main").status, 200);
        ASSERT_NO_FATAL_FAILURE(mock_reset(mock_.port()));
    }

    // The gateway's rate clock, within a minute (ms).
    int64_t gateway_second_ms() const { return (wall_ms() + clock_offset_ms_) % 60'000; }

    // Sleeps until the gateway's clock is at `second_ms` within its minute (the next time).
    void sleep_until_second(int64_t second_ms) const {
        const int64_t wait_ms = ((second_ms - gateway_second_ms()) + 60'000) % 60'000;
        std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    }

    Response chat(const Key& key, std::string_view model, std::string_view extra = {}) {
        return gateway_.chat(key, chat_body(model, false, extra));
    }

    TempDir clock_dir_;
    MockUpstream mock_;
    Gateway gateway_;
    int64_t clock_offset_ms_ = 0;
};

TEST_F(ProxyRateLimitTest, RequestsPerMinuteHoldAcrossAMinuteBoundary) {
    const Key key = gateway_.create_key(R"({"name":"boundary","rpm":3})");
    // The whole budget just before the minute turns: a fixed window would admit three more
    // right after it; a bucket refills one request per 20 s.
    sleep_until_second(57'000);
    for (int64_t index = 0; index < 3; index++) {
        const Response response = chat(key, "gpt-4o-mini");
        ASSERT_EQ(response.status, 200) << response.body;
        EXPECT_EQ(header_int(response, "x-ratelimit-limit-requests"), 3);
        EXPECT_EQ(header_int(response, "x-ratelimit-remaining-requests"), 2 - index);
        EXPECT_EQ(response.header_count("x-ratelimit-limit-requests"), 1u)
            << "the provider's x-ratelimit-*-requests must give way to the key's own";
        EXPECT_EQ(response.header("x-ratelimit-limit-tokens"), "10000") << "the provider's";
    }
    sleep_until_second(500);
    const Response refused = chat(key, "gpt-4o-mini");
    ASSERT_EQ(refused.status, 429) << refused.body;
    std::string code;
    EXPECT_EQ(check_error_response(refused, &code, false), "");
    EXPECT_EQ(code, "rate_limit_exceeded");
    EXPECT_EQ(header_int(refused, "x-ratelimit-limit-requests"), 3);
    EXPECT_EQ(header_int(refused, "x-ratelimit-remaining-requests"), 0);
    const auto reset = refused.header("x-ratelimit-reset-requests");
    ASSERT_TRUE(reset.has_value());
    EXPECT_TRUE(
        std::regex_match(*reset, std::regex(R"(([0-9]+m)?[0-9]+(\.[0-9]{1,3})?s|[0-9]+ms)")))
        << *reset;
    const int64_t retry_after_ms = header_int(refused, "retry-after-ms");
    EXPECT_GT(retry_after_ms, 0);
    EXPECT_LE(retry_after_ms, 20'000);
    EXPECT_EQ(header_int(refused, "retry-after"), (retry_after_ms + 999) / 1000);
    EXPECT_FALSE(refused.header("x-should-retry").has_value());
    EXPECT_FALSE(refused.connection_has("close"));
    EXPECT_EQ(mock_requests(mock_.port()), 3);
}

TEST_F(ProxyRateLimitTest, TokensPerMinuteReserveTheBoundAndSettleToUsage) {
    const Key key = gateway_.create_key(R"({"name":"tokens","tpm":2000})");
    const std::string extra = R"("max_tokens":300)";
    const uint64_t bound = chat_body("gpt-4o-mini", false, extra).size() + 300;
    const Response first = chat(key, "gpt-4o-mini", extra);
    ASSERT_EQ(first.status, 200) << first.body;
    EXPECT_EQ(header_int(first, "x-ratelimit-limit-tokens"), 2000);
    EXPECT_EQ(first.header_count("x-ratelimit-limit-tokens"), 1u);
    const int64_t first_remaining = header_int(first, "x-ratelimit-remaining-tokens");
    EXPECT_GE(first_remaining, 2000 - int64_t(bound) - 1);
    EXPECT_LE(first_remaining, 2000 - int64_t(bound));
    EXPECT_EQ(first.header("x-ratelimit-limit-requests"), "10000") << "no rpm: the provider's";
    const int64_t used = Json(first.body).integer("/usage/total_tokens");
    ASSERT_GT(used, 0);
    // The first request settled to its usage: what it reserved above that came back.
    const Response second = chat(key, "gpt-4o-mini", extra);
    ASSERT_EQ(second.status, 200) << second.body;
    EXPECT_GE(header_int(second, "x-ratelimit-remaining-tokens"), 2000 - used - int64_t(bound) - 1);
    // Usage above the reservation is taken too: 1500 prompt tokens reported.
    const Response heavy =
        chat(key, "gpt-4o-mini", R"("max_tokens":10,"x_mock":{"prompt-tokens":1500})");
    ASSERT_EQ(heavy.status, 200) << heavy.body;
    // A bound larger than what is left now: 429 with the wait; larger than the tpm: no wait
    // helps (x-should-retry: false).
    const Response refused = chat(key, "gpt-4o-mini", R"("max_tokens":900)");
    ASSERT_EQ(refused.status, 429) << refused.body;
    EXPECT_EQ(Json(refused.body).string("/error/type"), "tokens");
    EXPECT_EQ(header_int(refused, "x-ratelimit-limit-tokens"), 2000);
    EXPECT_GT(header_int(refused, "retry-after-ms"), 0);
    EXPECT_FALSE(refused.header("x-should-retry").has_value());
    const Response too_large = chat(key, "gpt-4o-mini", R"("max_tokens":5000)");
    ASSERT_EQ(too_large.status, 429) << too_large.body;
    EXPECT_EQ(too_large.header("x-should-retry"), "false");
    EXPECT_EQ(header_int(too_large, "x-ratelimit-limit-tokens"), 2000);
    EXPECT_EQ(mock_requests(mock_.port()), 3);
}

TEST_F(ProxyRateLimitTest, PerModelLimitsApplyToTheirModelOnly) {
    const Key key = gateway_.create_key(
        R"({"name":"models","rpm":3,"limits":{"gpt-4o":{"rpm":1,"tpm":100000}}})");
    const Response first = chat(key, "gpt-4o");
    ASSERT_EQ(first.status, 200) << first.body;
    // The binding limit is shown: the model's (0 left) rather than the key's (2 left).
    EXPECT_EQ(header_int(first, "x-ratelimit-limit-requests"), 1);
    EXPECT_EQ(header_int(first, "x-ratelimit-remaining-requests"), 0);
    EXPECT_EQ(header_int(first, "x-ratelimit-limit-tokens"), 100000);
    const Response refused = chat(key, "gpt-4o");
    ASSERT_EQ(refused.status, 429) << refused.body;
    EXPECT_NE(Json(refused.body).string("/error/message").find("model"), std::string::npos);
    EXPECT_EQ(header_int(refused, "x-ratelimit-limit-requests"), 1);
    // The model's refusal spent none of the key's rpm: two more of another model pass.
    for (int index = 0; index < 2; index++) {
        const Response other = chat(key, "gpt-4o-mini");
        ASSERT_EQ(other.status, 200) << other.body;
        EXPECT_EQ(header_int(other, "x-ratelimit-limit-requests"), 3);
        EXPECT_EQ(other.header("x-ratelimit-limit-tokens"), "10000") << "no tpm: the provider's";
    }
    const Response key_refused = chat(key, "gpt-4o-mini");
    ASSERT_EQ(key_refused.status, 429) << key_refused.body;
    EXPECT_EQ(header_int(key_refused, "x-ratelimit-limit-requests"), 3);
    EXPECT_EQ(mock_requests(mock_.port()), 3);
}

TEST_F(ProxyRateLimitTest, ARefusalByOneLimitSpendsNoOtherBudget) {
    const Key key = gateway_.create_key(R"({"name":"one","rpm":2,"max_concurrency":1,"tpm":5000})");
    const std::string body = chat_body("gpt-4o-mini", false);
    // An upload holds the one concurrency slot: requests meanwhile are refused for it.
    Client uploading;
    ASSERT_TRUE(uploading.connect(gateway_.port(), Deadline::after_ms(5000)));
    // Expect: 100-continue makes the hold observable: the gateway sends 100 only once the
    // head's checks passed and the slot is taken (without it, the refusals below raced the
    // gateway reading this head and one in ten runs got 200).
    ASSERT_TRUE(uploading.send(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n"
        "Authorization: Bearer " +
            key.secret + "\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n" +
            "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n",
        Deadline::after_ms(5000)));
    std::string error;
    const std::optional<Response> interim =
        uploading.read_response(Deadline::after_ms(5000), false, &error);
    ASSERT_TRUE(interim.has_value()) << error;
    ASSERT_EQ(interim->status, 100);
    ASSERT_TRUE(uploading.send(body.substr(0, 5), Deadline::after_ms(5000)));
    for (int index = 0; index < 3; index++) {
        const Response refused = gateway_.chat(key, body);
        ASSERT_EQ(refused.status, 429) << refused.body;
        EXPECT_EQ(Json(refused.body).string("/error/code"), "concurrency_limit_exceeded");
    }
    uploading.close();  // Abandoned: its rpm comes back with its slot.
    // A tpm refusal spends no rpm either.
    ASSERT_TRUE(poll_until(Deadline::after_ms(5000), [&] {
        const Response response =
            gateway_.chat(key, chat_body("gpt-4o-mini", false, R"("max_tokens":4990)"));
        return Json(response.body).string("/error/type") == "tokens";  // Not concurrency's.
    }));
    EXPECT_EQ(gateway_.chat(key, body).status, 200);
    EXPECT_EQ(gateway_.chat(key, body).status, 200);
    const Response refused = gateway_.chat(key, body);
    EXPECT_EQ(refused.status, 429) << refused.body;
    EXPECT_EQ(Json(refused.body).string("/error/code"), "rate_limit_exceeded");
    EXPECT_EQ(mock_requests(mock_.port()), 2);
}

TEST_F(ProxyRateLimitTest, HeadersOnWholeAndStreamedAnswers) {
    const Key key = gateway_.create_key(R"({"name":"headers","rpm":100,"tpm":100000})");
    const Response whole = chat(key, "gpt-4o-mini");
    ASSERT_EQ(whole.status, 200) << whole.body;
    const Response streamed = gateway_.chat(key, chat_body("gpt-4o-mini", true));
    ASSERT_EQ(streamed.status, 200) << streamed.body;
    EXPECT_NE(streamed.header("content-type").value_or("").find("text/event-stream"),
              std::string::npos);
    int64_t index = 0;
    for (const Response* response : {&whole, &streamed}) {
        EXPECT_EQ(header_int(*response, "x-ratelimit-limit-requests"), 100);
        EXPECT_EQ(header_int(*response, "x-ratelimit-remaining-requests"), 99 - index);
        EXPECT_EQ(header_int(*response, "x-ratelimit-limit-tokens"), 100000);
        EXPECT_LT(header_int(*response, "x-ratelimit-remaining-tokens"), 100000);
        EXPECT_GT(header_int(*response, "x-ratelimit-remaining-tokens"), 90000);
        for (const char* name : {"x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
                                 "x-ratelimit-reset-requests", "x-ratelimit-limit-tokens",
                                 "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"}) {
            EXPECT_EQ(response->header_count(name), 1u) << name;
        }
        EXPECT_TRUE(std::regex_match(response->header("x-ratelimit-reset-requests").value_or(""),
                                     std::regex(R"([0-9]+(\.[0-9]{1,3})?s|[0-9]+ms)")));
        EXPECT_FALSE(response->header("retry-after-ms").has_value());
        index++;
    }
    // A key without limits gets the provider's headers untouched.
    const Key free_key = gateway_.create_key(R"({"name":"free"})");
    const Response free_answer = chat(free_key, "gpt-4o-mini");
    ASSERT_EQ(free_answer.status, 200);
    EXPECT_EQ(free_answer.header("x-ratelimit-limit-requests"), "10000");
    EXPECT_EQ(free_answer.header("x-ratelimit-remaining-tokens"), "9999");
}

TEST_F(ProxyRateLimitTest, LimitsAreSetShownAndCheckedByTheAdminApi) {
    const Key key = gateway_.create_key(
        R"({"name":"admin","tpm":90000,"limits":{"gpt-4o":{"rpm":60,"tpm":90000},"o1":{"tpm":5}}})");
    Response shown = gateway_.admin("GET", "/admin/keys/" + std::to_string(key.id));
    ASSERT_EQ(shown.status, 200) << shown.body;
    Json json(shown.body);
    EXPECT_EQ(json.integer("/tpm"), 90000);
    EXPECT_EQ(json.integer("/limits/gpt-4o/rpm"), 60);
    EXPECT_EQ(json.integer("/limits/gpt-4o/tpm"), 90000);
    EXPECT_EQ(json.integer("/limits/o1/rpm"), 0);
    EXPECT_EQ(json.integer("/limits/o1/tpm"), 5);
    const Response patched = gateway_.admin("PATCH", "/admin/keys/" + std::to_string(key.id),
                                            R"({"tpm":0,"limits":{"gpt-4o":{"rpm":1}}})");
    ASSERT_EQ(patched.status, 200) << patched.body;
    shown = gateway_.admin("GET", "/admin/keys/" + std::to_string(key.id));
    Json after(shown.body);
    EXPECT_EQ(after.integer("/tpm"), 0);
    EXPECT_EQ(after.integer("/limits/gpt-4o/rpm"), 1);
    EXPECT_FALSE(after.has("/limits/o1"));
    // The new limit is in force at once.
    EXPECT_EQ(chat(key, "gpt-4o").status, 200);
    EXPECT_EQ(chat(key, "gpt-4o").status, 429);
    for (const char* bad :
         {R"({"limits":{"gpt-4o":{"rpm":-1}}})", R"({"limits":{"gpt-4o":5}})",
          R"({"limits":{"gpt-4o":{"rps":1}}})", R"({"limits":[1]})", R"({"tpm":"many"})"}) {
        const Response refused =
            gateway_.admin("PATCH", "/admin/keys/" + std::to_string(key.id), bad);
        EXPECT_EQ(refused.status, 400) << bad << " " << refused.body;
    }
    const Response cleared =
        gateway_.admin("PATCH", "/admin/keys/" + std::to_string(key.id), R"({"limits":null})");
    ASSERT_EQ(cleared.status, 200) << cleared.body;
    EXPECT_EQ(Json(gateway_.admin("GET", "/admin/keys/" + std::to_string(key.id)).body)
                  .has("/limits/gpt-4o"),
              false);
    EXPECT_EQ(chat(key, "gpt-4o").status, 200);
}

}  // namespace
}  // namespace rw::test::proxy
