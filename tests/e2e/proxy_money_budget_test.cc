// tests/e2e/proxy_money_budget_test.cc — money budgets against the mock upstream. A
// request reserves the most it can cost (its body's bytes at the dearest input rate plus
// its max_tokens at the dearest output rate, over every candidate channel's price) in one
// atomic word per key shared by every shard, and settles it to the row's cost on every
// exit. 100 concurrent requests on a budget for exactly 10 let at most 10 reach the mock,
// on one shard and on two; 64 clients hammering one key on two shards never spend past
// it; the reservation gauge is back at 0 after client gone, an upstream cut, an upstream
// error, a timeout and a retry on another channel; a model without a price is refused for
// a budget key (403 model_price_missing); a daily budget rolls over at UTC midnight (a
// test-build clock hook moves the gateway's clock), is seeded from daily_usage at a
// restart, and a top-up raises it for the current period.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

// The price every test sets: $1 per million input tokens (1000 nano-USD a token), $2 per
// million output tokens (2000 a token), from 1970 on.
constexpr int64_t input_nano = 1000;
constexpr int64_t output_nano = 2000;
// The mock's usage for these bodies: prompt-tokens 10, its default 3 completion tokens.
constexpr int64_t real_cost_nano = 10 * input_nano + 3 * output_nano;

// What admission reserves for `body` with max_tokens 64: every body byte at the input
// rate, 64 tokens at the output rate (exact here: whole nano-USD per token).
int64_t bound_nano(const std::string& body) {
    return int64_t(body.size()) * input_nano + 64 * output_nano;
}

std::string budget_body(std::string_view x_mock) {
    return chat_body(
        "gpt-4o-mini", false,
        R"("x_mock":{"prompt-tokens":10)" + std::string(x_mock) + R"(},"max_tokens":64)");
}

class MoneyBudget : public ::testing::Test {
protected:
    void start(EnvList env, int shards = 1, int channels = 1) {
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_));
        env.emplace_back("RINGWAY_SHARDS", std::to_string(shards));
        ASSERT_NO_FATAL_FAILURE(gateway_.start(env));
        ASSERT_NO_FATAL_FAILURE(add_channels(channels));
    }

    void add_channels(int count) {
        for (int i = 0; i < count; i++) {
            ChannelSpec spec;
            spec.name = "main" + std::to_string(i);
            spec.mock_port = mock_.port();
            spec.models = {"gpt-4o-mini", "unpriced-model"};
            spec.priority = 10 - i;
            ASSERT_GT(gateway_.create_channel(spec), 0);
        }
        gateway_.wait_channels_routable();
        const Response price = gateway_.admin(
            "POST", "/admin/prices",
            R"({"model":"gpt-4o-mini","input_per_mtok":"1","output_per_mtok":"2","effective_from":0})");
        ASSERT_EQ(price.status, 201) << price.body;
        ASSERT_NO_FATAL_FAILURE(mock_reset(mock_.port()));
    }

    int64_t scalar(const std::string& sql) {
        Db db(db_path_.empty() ? gateway_.db_path() : db_path_);
        return db.scalar(sql);
    }
    int64_t spend_nano(const Key& key) {
        return scalar("SELECT spend_nano FROM keys WHERE id = " + std::to_string(key.id));
    }
    int64_t rows_cost_nano(const Key& key) {
        return scalar("SELECT COALESCE(SUM(cost_nano), 0) FROM usage_logs WHERE key_id = " +
                      std::to_string(key.id));
    }

    MockUpstream mock_;
    Gateway gateway_;
    std::string db_path_;  // Set by tests that restart on their own database.
};

class MoneyBudgetShards : public MoneyBudget, public ::testing::WithParamInterface<int> {};

// The mock holds every answer 3 s (800 ms was too short for 100 admissions under ASan on
// a loaded machine: settled reservations, cheaper than their bound, let 19 in), so all 100
// admissions happen while the first ten still hold their
// reservations: at most ten fit, the rest are refused with 429.
TEST_P(MoneyBudgetShards, HundredConcurrentRequestsOnABudgetForTenLetTenThrough) {
    ASSERT_NO_FATAL_FAILURE(start({}, GetParam()));
    const std::string body = budget_body(R"(,"first-byte-delay-ms":3000)");
    const int64_t budget = 10 * bound_nano(body);
    const Key key = gateway_.create_key(R"({"name":"ten","budget_usd":")" + usd(budget) + "\"}");
    const BurstTally tally =
        quota_burst({gateway_.port()}, 100, 1, body, key.secret, [](const Response& refused) {
            EXPECT_FALSE(refused.header("retry-after").has_value());  // Lifetime budget.
        });
    EXPECT_EQ(tally.other_count, 0);
    EXPECT_EQ(tally.ok_count + tally.refused_count, 100);
    EXPECT_LE(mock_requests(mock_.port()), 10);
    EXPECT_EQ(mock_requests(mock_.port()), tally.ok_count);
    EXPECT_GE(tally.ok_count, 1);
    const auto rows = wait_usage_rows(gateway_.db_path(), key.id, size_t(tally.ok_count),
                                      Deadline::after_ms(5000));
    EXPECT_EQ(rows.size(), size_t(tally.ok_count));
    EXPECT_TRUE(poll_until(Deadline::after_ms(5000), [&] {
        return spend_nano(key) == real_cost_nano * tally.ok_count;
    })) << spend_nano(key);
    EXPECT_LE(spend_nano(key), budget);
    EXPECT_TRUE(poll_until(Deadline::after_ms(5000), [&] {
        return gateway_.metric("ringway_budget_reserved_nano_usd") == 0;
    }));
    EXPECT_EQ(gateway_.metric("ringway_budget_overshoot_nano_usd_total"), 0);
}

// 64 clients on two shards send back to back until refused: the budget covers a few
// hundred real requests, so reservations and settles race on the key's word all along.
// The spend never ends past the budget and no charge passes its reservation.
TEST_P(MoneyBudgetShards, SixtyFourClientsHammeringOneKeyNeverOvershoot) {
    ASSERT_NO_FATAL_FAILURE(start({}, GetParam()));
    const std::string body = budget_body("");
    const int64_t budget = 300 * real_cost_nano;
    const Key key = gateway_.create_key(R"({"name":"hammer","budget_usd":")" + usd(budget) + "\"}");
    std::atomic<int> ok_count{0};
    std::atomic<int> other_count{0};
    const auto started = std::chrono::steady_clock::now();
    std::vector<std::thread> clients;
    for (int i = 0; i < 64; i++) {
        clients.emplace_back([&] {
            for (int sent = 0; sent < 200; sent++) {  // Bounded: the budget ends it far sooner.
                const auto response = http_exchange(
                    gateway_.port(), post_request("/v1/chat/completions", body, key.secret),
                    Deadline::after_ms(20000));
                if (!response.has_value()) {
                    other_count += 1;
                    return;
                }
                if (response->status != 200) {
                    if (response->status != 429) {
                        other_count += 1;
                    }
                    return;
                }
                ok_count += 1;
            }
        });
    }
    for (std::thread& client : clients) {
        client.join();
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    EXPECT_EQ(other_count.load(), 0);
    EXPECT_GE(ok_count.load(), 1);
    EXPECT_TRUE(poll_until(Deadline::after_ms(10000), [&] {
        return scalar("SELECT COUNT(*) FROM usage_logs WHERE key_id = " + std::to_string(key.id)) ==
               ok_count.load();
    }));
    EXPECT_TRUE(poll_until(Deadline::after_ms(5000), [&] {
        return spend_nano(key) == real_cost_nano * ok_count.load();
    })) << spend_nano(key);
    EXPECT_LE(spend_nano(key), budget);
    EXPECT_EQ(spend_nano(key), rows_cost_nano(key));
    EXPECT_TRUE(poll_until(Deadline::after_ms(5000), [&] {
        return gateway_.metric("ringway_budget_reserved_nano_usd") == 0;
    }));
    EXPECT_EQ(gateway_.metric("ringway_budget_overshoot_nano_usd_total"), 0);
    std::printf(
        "hammer: shards=%d clients=64 served=%d spend_nano=%lld budget_nano=%lld "
        "(%.1f%% of it) in %.2f s\n",
        GetParam(), ok_count.load(), (long long)spend_nano(key), (long long)budget,
        100.0 * double(spend_nano(key)) / double(budget), seconds);
}

INSTANTIATE_TEST_SUITE_P(Shards, MoneyBudgetShards, ::testing::Values(1, 2),
                         [](const auto& param_info) {
                             return std::to_string(param_info.param) + "_shards";
                         });

// Every exit path settles the money reservation: the gauge returns to 0 and the key's
// spend equals its rows' cost.
TEST_F(MoneyBudget, ReservationsAreSettledOnEveryExitPath) {
    ASSERT_NO_FATAL_FAILURE(start({{"RINGWAY_UPSTREAM_FIRST_BYTE_TIMEOUT_MS", "1500"}}, 1, 2));
    const Key key = gateway_.create_key(R"({"name":"paths","budget_usd":"100"})");
    const auto settled = [&] {
        return poll_until(Deadline::after_ms(10000), [&] {
            return gateway_.metric("ringway_requests_in_flight") == 0 &&
                   gateway_.metric("ringway_budget_reserved_nano_usd") == 0;
        });
    };
    // Client gone before the first byte.
    {
        Client client;
        ASSERT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000)));
        ASSERT_TRUE(
            client.send(post_request("/v1/chat/completions",
                                     budget_body(R"(,"first-byte-delay-ms":5000)"), key.secret),
                        Deadline::after_ms(5000)));
        ASSERT_TRUE(poll_until(Deadline::after_ms(5000), [&] {
            return gateway_.metric("ringway_budget_reserved_nano_usd") > 0;
        }));
        client.shutdown_write();
        EXPECT_TRUE(client.wait_closed(Deadline::after_ms(5000)));
        EXPECT_TRUE(settled()) << "client gone";
    }
    // An upstream cut in the middle of a stream.
    {
        Client client;
        ASSERT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000)));
        ASSERT_TRUE(client.send(
            post_request(
                "/v1/chat/completions",
                chat_body("gpt-4o-mini", true, R"("x_mock":{"fault":"reset"},"max_tokens":64)"),
                key.secret),
            Deadline::after_ms(5000)));
        EXPECT_TRUE(client.wait_closed(Deadline::after_ms(10000)));
        EXPECT_NE(client.unread().find("upstream connection lost"), std::string::npos)
            << client.unread();
        EXPECT_TRUE(settled()) << "upstream cut";
    }
    // The upstream's own error, relayed (no other channel is left for a 400).
    {
        const Response error = gateway_.chat(key, budget_body(R"(,"status":400)"));
        EXPECT_EQ(error.status, 400) << error.body;
        EXPECT_TRUE(settled()) << "upstream error";
    }
    // A timeout before the first byte.
    {
        const Response timeout = gateway_.chat(key, budget_body(R"(,"first-byte-delay-ms":4000)"));
        EXPECT_EQ(timeout.status, 504) << timeout.body;
        EXPECT_TRUE(settled()) << "timeout";
    }
    // A 500 on the first channel, retried on the second.
    {
        const Response retried = gateway_.chat(key, budget_body(R"(,"status":500,"fail-first":1)"));
        EXPECT_EQ(retried.status, 200) << retried.body;
        EXPECT_TRUE(settled()) << "retry";
    }
    EXPECT_TRUE(poll_until(Deadline::after_ms(5000),
                           [&] {
                               return scalar("SELECT COUNT(*) FROM usage_logs WHERE key_id = " +
                                             std::to_string(key.id)) == 5 &&
                                      spend_nano(key) == rows_cost_nano(key);
                           }))
        << spend_nano(key) << " vs " << rows_cost_nano(key);
    EXPECT_GT(spend_nano(key), 0);
}

// A model without a price: recorded as unpriced for a key without a budget, refused with
// 403 model_price_missing for a key with one (no upstream reached).
TEST_F(MoneyBudget, AnUnpricedModelIsRefusedForABudgetKey) {
    ASSERT_NO_FATAL_FAILURE(start({}));
    const Key budget_key = gateway_.create_key(R"({"name":"budget","budget_usd":"1"})");
    const Key free_key = gateway_.create_key(R"({"name":"free"})");
    const std::string body = chat_body("unpriced-model", false, R"("max_tokens":8)");
    const Response refused = gateway_.chat(budget_key, body);
    EXPECT_EQ(refused.status, 403) << refused.body;
    EXPECT_NE(refused.body.find("model_price_missing"), std::string::npos) << refused.body;
    EXPECT_NE(refused.body.find("unpriced-model"), std::string::npos) << refused.body;
    EXPECT_EQ(mock_requests(mock_.port()), 0);
    const Response served = gateway_.chat(free_key, body);
    EXPECT_EQ(served.status, 200) << served.body;
    EXPECT_TRUE(poll_until(Deadline::after_ms(5000), [&] {
        return scalar("SELECT COUNT(*) FROM usage_logs WHERE price_id IS NULL AND key_id = " +
                      std::to_string(free_key.id)) == 1;
    }));
    // The key's fields, as GET shows them; a bad period is refused.
    const Response shown = gateway_.admin("GET", "/admin/keys/" + std::to_string(budget_key.id));
    EXPECT_NE(shown.body.find(R"("budget_usd":"1")"), std::string::npos) << shown.body;
    EXPECT_NE(shown.body.find(R"("period":"none")"), std::string::npos) << shown.body;
    const Response bad = gateway_.admin("PATCH", "/admin/keys/" + std::to_string(budget_key.id),
                                        R"({"period":"yearly"})");
    EXPECT_EQ(bad.status, 400) << bad.body;
}

// A daily budget over a moved clock (RINGWAY_TEST_CLOCK_FILE, milliseconds, honoured by
// the test binary only): spent, then refused with Retry-After = the seconds to the next UTC
// midnight; the clock crosses midnight and the same key is served again; a restart in that day
// seeds its use from daily_usage (still refused); a top-up raises the day's budget.
TEST_F(MoneyBudget, ADailyBudgetRollsOverAtMidnightAndSurvivesARestart) {
    TempDir dir;
    db_path_ = dir.path() + "/budget.db";
    const std::string clock_file = dir.path() + "/clock";
    const int64_t now_s = int64_t(std::time(nullptr));
    // The gateway's clock reads noon, ten days from now (UTC).
    const int64_t fake_noon = (now_s / 86400 + 10) * 86400 + 43200;
    const auto set_clock = [&](int64_t fake_s) {
        std::ofstream(clock_file, std::ios::trunc) << (fake_s - int64_t(std::time(nullptr))) * 1000;
    };
    set_clock(fake_noon);
    const EnvList env = {{"RINGWAY_DB", db_path_}, {"RINGWAY_TEST_CLOCK_FILE", clock_file}};
    ASSERT_NO_FATAL_FAILURE(start(env));
    const std::string body = budget_body("");
    // Room for one request's bound, not for a second one after the first's real cost.
    const int64_t budget = bound_nano(body) + 1000;
    const Key key = gateway_.create_key(R"({"name":"daily","period":"daily","budget_usd":")" +
                                        usd(budget) + "\"}");
    EXPECT_EQ(gateway_.chat(key, body).status, 200);
    const Response spent = gateway_.chat(key, body);
    EXPECT_EQ(spent.status, 429) << spent.body;
    EXPECT_NE(spent.body.find("insufficient_quota"), std::string::npos) << spent.body;
    const int64_t retry_after = std::stoll(spent.header("retry-after").value_or("0"));
    EXPECT_LE(retry_after, 43200);
    EXPECT_GE(retry_after, 43200 - 120);  // The seconds the test itself took.
    // Past midnight: a new, empty day.
    set_clock(fake_noon + 86400);
    EXPECT_EQ(gateway_.chat(key, body).status, 200);
    EXPECT_EQ(gateway_.chat(key, body).status, 429);
    EXPECT_TRUE(poll_until(Deadline::after_ms(5000), [&] {
        return scalar("SELECT COUNT(*) FROM daily_usage WHERE key_id = " +
                      std::to_string(key.id)) == 2;
    }));
    const Response shown = gateway_.admin("GET", "/admin/keys/" + std::to_string(key.id));
    // The day's committed use: one request (16000 nano-USD, 13 tokens).
    EXPECT_NE(shown.body.find(R"("used_tokens":13,"spend_usd":"0.000016")"), std::string::npos)
        << shown.body;
    // A restart in the same day: the day's use comes back from daily_usage.
    ASSERT_NO_FATAL_FAILURE(gateway_.stop());
    Gateway restarted;
    ASSERT_NO_FATAL_FAILURE(restarted.start(env));
    Response again;
    EXPECT_TRUE(poll_until(Deadline::after_ms(10000), [&] {
        again = restarted.chat(key, body);
        return again.status != 503;  // Until the channel's address is resolved again.
    }));
    EXPECT_EQ(again.status, 429) << again.body;
    // A top-up raises today's budget, audited.
    const Response topup =
        restarted.admin("POST", "/admin/keys/" + std::to_string(key.id) + "/topup",
                        R"({"amount_usd":"0.001","reason":"test","actor":"t"})");
    EXPECT_EQ(topup.status, 201) << topup.body;
    EXPECT_NE(topup.body.find(R"("topups_usd":"0.001")"), std::string::npos) << topup.body;
    EXPECT_EQ(restarted.chat(key, body).status, 200);
    EXPECT_EQ(scalar("SELECT COUNT(*) FROM key_topups WHERE actor = 't' AND reason = 'test'"
                     " AND amount_nano = 1000000 AND key_id = " +
                     std::to_string(key.id)),
              1);
    // The next day the top-up is gone and the plain budget holds again.
    set_clock(fake_noon + 2 * 86400);
    EXPECT_EQ(restarted.chat(key, body).status, 200);
    EXPECT_EQ(restarted.chat(key, body).status, 429);
    ASSERT_NO_FATAL_FAILURE(restarted.stop());
}

}  // namespace
}  // namespace rw::test::proxy
