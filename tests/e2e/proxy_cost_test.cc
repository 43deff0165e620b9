// tests/e2e/proxy_cost_test.cc — money against the mock upstream: prices set through the
// admin API, then whole and streamed requests in the OpenAI chat, Responses and Anthropic
// shapes whose usage carries cached, cache-write and reasoning tokens. Each row must carry
// the exact cost of its kinds at their own rates (a cached token at the cached price only)
// and the id of the price it used; an unpriced model is flagged and counted; a new price
// version changes later rows, never earlier ones; /admin/logs, /admin/usage?group_by= and
// the key's spend show the same money as exact decimal strings.
#include <gtest/gtest.h>

#include <ctime>
#include <map>
#include <string>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

// POST /admin/prices; the created version's id (0 with a test failure otherwise).
int64_t create_price(Gateway& gateway, const std::string& body) {
    const Response response = gateway.admin("POST", "/admin/prices", body);
    EXPECT_EQ(response.status, 201) << body << " -> " << response.body;
    return Json(response.body).integer("/id", 0);
}

std::string messages_body(std::string_view model, bool is_stream, std::string_view x_mock) {
    std::string body = R"({"model":")" + std::string(model) +
                       R"(","max_tokens":64,"messages":[{"role":"user","content":"Hi"}])";
    if (is_stream) {
        body += R"(,"stream":true)";
    }
    return body + R"(,"x_mock":)" + std::string(x_mock) + "}";
}

// The anthropic channel serves /v1/messages only; wait until it routes there.
void wait_messages_routable(Gateway& gateway, const std::string& model) {
    Response last;
    EXPECT_TRUE(poll_until(Deadline::after_ms(10000),
                           [&] {
                               last = gateway.call(post_request("/v1/messages",
                                                                messages_body(model, false, "{}"),
                                                                gateway.probe_key().secret));
                               return last.status == 200;
                           }))
        << last.status << " " << last.body;
}

struct Case {
    const char* name;
    std::string path;
    std::string body;
    int64_t expected_cost_nano;
    std::string expected_cost_usd;
};

class ProxyCostTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_));
        // One shard: a key's rows then commit in the order its requests were made.
        ASSERT_NO_FATAL_FAILURE(gateway_.start({{"RINGWAY_SHARDS", "1"}}));
        ChannelSpec openai;
        openai.name = "oai";
        openai.mock_port = mock_.port();
        openai.models = {"gpt-4o-mini", "o4-mini", "free-model"};
        openai_id_ = gateway_.create_channel(openai);
        ChannelSpec anthropic;
        anthropic.name = "anth";
        anthropic.kind = "anthropic";
        anthropic.mock_port = mock_.port();
        anthropic.models = {"claude-sonnet-4-20250514"};
        ASSERT_GT(gateway_.create_channel(anthropic), 0);
        ASSERT_GT(openai_id_, 0);
        gateway_.wait_channels_routable();
        wait_messages_routable(gateway_, probe_model("anth"));
        // In force from 1970, so the requests below are priced at once (a version without
        // effective_from starts at the next whole second).
        mini_price_ = create_price(gateway_, R"({"model":"gpt-4o-mini","input_per_mtok":"0.15",
            "output_per_mtok":"0.60","cached_input_per_mtok":"0.075","effective_from":0})");
        o4_price_ = create_price(gateway_, R"({"model":"o4-mini","input_per_mtok":"1.10",
            "output_per_mtok":"4.40","reasoning_per_mtok":"8.80","per_request":"0.0001",
            "effective_from":0})");
        // A prefix, and a channel-specific version that wins over it on its channel.
        create_price(gateway_, R"({"model":"claude-*","input_per_mtok":"99","output_per_mtok":
            "99","effective_from":0})");
        claude_price_ = create_price(
            gateway_, R"({"model":"claude-sonnet-4*","input_per_mtok":"3","output_per_mtok":"15",
            "cached_input_per_mtok":"0.30","cache_write_per_mtok":"3.75","effective_from":0})");
    }

    MockUpstream mock_;
    Gateway gateway_;
    int64_t openai_id_ = 0;
    int64_t mini_price_ = 0;
    int64_t o4_price_ = 0;
    int64_t claude_price_ = 0;
};

TEST_F(ProxyCostTest, RowsCarryTheExactCostOfEveryTokenKind) {
    const std::string cached_chat = R"("x_mock":{"prompt-tokens":2006,"cached-tokens":1920,)"
                                    R"("chunks":5})";
    const std::string reasoning =
        R"("x_mock":{"prompt-tokens":1000,"reasoning-tokens":400,"chunks":4})";
    const std::string claude =
        R"({"prompt-tokens":12,"cache-write-tokens":100,"cached-tokens":2000,"chunks":6})";
    // gpt-4o-mini: 86 uncached * 0.15 + 1920 cached * 0.075 + 5 * 0.60 (USD per Mtok)
    //   = (12900 + 144000 + 3000) nano = 159900.
    // o4-mini: 1000 * 1.10 + 4 visible * 4.40 + 400 reasoning * 8.80, + 0.0001 per request
    //   = 1100000 + 17600 + 3520000 + 100000 = 4737600.
    // claude: 12 * 3 + 100 writes * 3.75 + 2000 reads * 0.30 + 6 * 15
    //   = 36000 + 375000 + 600000 + 90000 = 1101000.
    const Case cases[] = {
        {"chat whole", "/v1/chat/completions", chat_body("gpt-4o-mini", false, cached_chat), 159900,
         "0.0001599"},
        {"chat stream", "/v1/chat/completions", chat_body("gpt-4o-mini", true, cached_chat), 159900,
         "0.0001599"},
        {"responses whole", "/v1/responses",
         R"({"model":"o4-mini","input":"hi",)" + reasoning + "}", 4737600, "0.0047376"},
        {"responses stream", "/v1/responses",
         R"({"model":"o4-mini","input":"hi","stream":true,)" + reasoning + "}", 4737600,
         "0.0047376"},
        {"messages whole", "/v1/messages", messages_body("claude-sonnet-4-20250514", false, claude),
         1101000, "0.001101"},
        {"messages stream", "/v1/messages", messages_body("claude-sonnet-4-20250514", true, claude),
         1101000, "0.001101"},
    };
    // One key per case, so each row is found by its key.
    const int64_t price_ids[] = {mini_price_, mini_price_,   o4_price_,
                                 o4_price_,   claude_price_, claude_price_};
    int64_t spent_nano = 0;
    std::string key_ids;
    for (size_t i = 0; i < std::size(cases); i++) {
        SCOPED_TRACE(cases[i].name);
        const Key key = gateway_.create_key(R"({"name":"priced"})");
        key_ids += (key_ids.empty() ? "" : ",") + std::to_string(key.id);
        const Response response =
            gateway_.call(post_request(cases[i].path, cases[i].body, key.secret));
        ASSERT_EQ(response.status, 200) << response.body;
        spent_nano += cases[i].expected_cost_nano;
        const auto rows = wait_usage_rows(gateway_.db_path(), key.id, 1, Deadline::after_ms(10000));
        ASSERT_EQ(rows.size(), 1u);
        const Row& row = rows[0];
        EXPECT_EQ(row.at("usage_source"), "reported") << describe_row(row);
        EXPECT_EQ(as_int(row, "cost_nano"), cases[i].expected_cost_nano) << describe_row(row);
        EXPECT_EQ(as_int(row, "price_id"), price_ids[i]) << describe_row(row);
        // The kinds as stored: parts of prompt and completion.
        if (cases[i].path == "/v1/chat/completions") {
            EXPECT_EQ(as_int(row, "prompt_tokens"), 2006);
            EXPECT_EQ(as_int(row, "cached_input_tokens"), 1920);
        } else if (cases[i].path == "/v1/responses") {
            EXPECT_EQ(as_int(row, "completion_tokens"), 404);
            EXPECT_EQ(as_int(row, "reasoning_tokens"), 400);
        } else {
            EXPECT_EQ(as_int(row, "prompt_tokens"), 2112);
            EXPECT_EQ(as_int(row, "cache_write_tokens"), 100);
            EXPECT_EQ(as_int(row, "cached_input_tokens"), 2000);
        }
        // The admin API shows the same money, exactly, as a decimal string; the key's
        // spend is its rows' cost.
        Json logs(gateway_.admin("GET", "/admin/logs?key_id=" + std::to_string(key.id)).body);
        EXPECT_EQ(logs.string("/data/0/cost_usd"), cases[i].expected_cost_usd) << logs.text();
        EXPECT_EQ(logs.integer("/data/0/price_id"), price_ids[i]);
        Json key_info(gateway_.admin("GET", "/admin/keys/" + std::to_string(key.id)).body);
        EXPECT_EQ(key_info.string("/spend_usd"), cases[i].expected_cost_usd);
    }
    // 2 * (159900 + 4737600 + 1101000) nano over all of them, by model and by day.
    EXPECT_EQ(spent_nano, 11'997'000);
    Json by_model(gateway_.admin("GET", "/admin/usage?group_by=model").body);
    ASSERT_TRUE(by_model.ok()) << by_model.text();
    std::map<std::string, std::pair<std::string, int64_t>> models;  // cost_usd, kind sum
    for (int i = 0; by_model.has("/data/" + std::to_string(i)); i++) {
        const std::string at = "/data/" + std::to_string(i);
        models[by_model.string(at + "/model")] = {by_model.string(at + "/cost_usd"),
                                                  by_model.integer(at + "/cached_input_tokens") +
                                                      by_model.integer(at + "/cache_write_tokens") +
                                                      by_model.integer(at + "/reasoning_tokens")};
    }
    EXPECT_EQ(models["claude-sonnet-4-20250514"], std::pair(std::string("0.002202"), int64_t{4200}))
        << by_model.text();
    EXPECT_EQ(models["gpt-4o-mini"], std::pair(std::string("0.0003198"), int64_t{3840}));
    EXPECT_EQ(models["o4-mini"], std::pair(std::string("0.0094752"), int64_t{800}));
    EXPECT_EQ(models[probe_model("oai")].first, "0");  // Probes: unpriced.
    // The daily aggregates the writer keeps hold the same money as the rows.
    ASSERT_NO_FATAL_FAILURE(gateway_.stop());
    Db db(gateway_.db_path());
    ASSERT_TRUE(db.ok()) << db.error();
    EXPECT_EQ(db.scalar("SELECT SUM(cost_nano) FROM daily_usage WHERE key_id IN (" + key_ids + ")"),
              11'997'000);
    EXPECT_EQ(db.scalar("SELECT SUM(spend_nano) FROM keys WHERE id IN (" + key_ids + ")"),
              11'997'000);
}

TEST_F(ProxyCostTest, UnpricedAndErrorRowsAndPriceVersions) {
    const Key key = gateway_.create_key(R"({"name":"mixed"})");
    // A model without any price: recorded, flagged (price_id NULL), counted in the metric.
    ASSERT_EQ(gateway_.chat(key, chat_body("free-model", false, R"("x_mock":{"chunks":2})")).status,
              200);
    // An upstream error without usage is billed nothing: no tokens, no per-request fee.
    ASSERT_EQ(gateway_
                  .call(post_request("/v1/responses",
                                     R"({"model":"o4-mini","input":"x","x_mock":{"status":503}})",
                                     key.secret))
                  .status,
              503);
    auto rows = wait_usage_rows(gateway_.db_path(), key.id, 2, Deadline::after_ms(10000));
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].at("price_id"), "NULL");
    EXPECT_EQ(as_int(rows[0], "cost_nano"), 0);
    EXPECT_EQ(as_int(rows[1], "price_id"), o4_price_);
    EXPECT_EQ(as_int(rows[1], "cost_nano"), 0) << describe_row(rows[1]);

    // A new version of the gpt-4o-mini price, in force from now: the row before it keeps
    // its cost and price, the row after it is charged the new rates.
    const std::string x_mock = R"("x_mock":{"prompt-tokens":1000,"chunks":10})";
    ASSERT_EQ(gateway_.chat(key, chat_body("gpt-4o-mini", false, x_mock)).status, 200);
    const std::string now_s = std::to_string(std::time(nullptr));
    const Response patched =
        gateway_.admin("PATCH", "/admin/prices/" + std::to_string(mini_price_),
                       R"({"output_per_mtok":"1.2","effective_from":)" + now_s + "}");
    ASSERT_EQ(patched.status, 201) << patched.body;
    const int64_t new_price = Json(patched.body).integer("/id");
    EXPECT_NE(new_price, mini_price_);
    EXPECT_EQ(Json(patched.body).string("/input_per_mtok"), "0.15");  // Carried over.
    EXPECT_EQ(Json(patched.body).string("/output_per_mtok"), "1.2");
    ASSERT_EQ(gateway_.chat(key, chat_body("gpt-4o-mini", false, x_mock)).status, 200);
    rows = wait_usage_rows(gateway_.db_path(), key.id, 4, Deadline::after_ms(10000));
    ASSERT_EQ(rows.size(), 4u);
    EXPECT_EQ(as_int(rows[2], "price_id"), mini_price_);
    EXPECT_EQ(as_int(rows[2], "cost_nano"), 1000 * 150 + 10 * 600);
    EXPECT_EQ(as_int(rows[3], "price_id"), new_price);
    EXPECT_EQ(as_int(rows[3], "cost_nano"), 1000 * 150 + 10 * 1200);

    // Deleting the new version: later rows fall back to the version before it.
    ASSERT_EQ(gateway_.admin("DELETE", "/admin/prices/" + std::to_string(new_price)).status, 200);
    ASSERT_EQ(gateway_.chat(key, chat_body("gpt-4o-mini", false, x_mock)).status, 200);
    rows = wait_usage_rows(gateway_.db_path(), key.id, 5, Deadline::after_ms(10000));
    ASSERT_EQ(rows.size(), 5u);
    EXPECT_EQ(as_int(rows[4], "price_id"), mini_price_);
    EXPECT_EQ(as_int(rows[3], "price_id"), new_price);  // History stays.

    // In the database: one unpriced row, one deleted price version kept.
    ASSERT_NO_FATAL_FAILURE(gateway_.stop());
    Db db(gateway_.db_path());
    ASSERT_TRUE(db.ok()) << db.error();
    EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM usage_logs WHERE key_id = " + std::to_string(key.id) +
                        " AND price_id IS NULL"),
              1);
    EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM prices WHERE deleted_at IS NOT NULL"), 1);
}

TEST_F(ProxyCostTest, UnpricedMetricCountsEveryUnpricedRow) {
    const Key key = gateway_.create_key(R"({"name":"metric"})");
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(gateway_.chat(key, chat_body("free-model", false)).status, 200);
    }
    ASSERT_EQ(gateway_.chat(key, chat_body("gpt-4o-mini", false)).status, 200);
    (void)wait_usage_rows(gateway_.db_path(), key.id, 4, Deadline::after_ms(10000));
    const double unpriced = gateway_.metric("ringway_unpriced_requests_total");
    ASSERT_NO_FATAL_FAILURE(gateway_.stop());
    Db db(gateway_.db_path());
    EXPECT_EQ(double(db.scalar("SELECT COUNT(*) FROM usage_logs WHERE price_id IS NULL")),
              unpriced);
    EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM usage_logs WHERE key_id = " + std::to_string(key.id) +
                        " AND price_id IS NULL"),
              3);
    // The key's spend is the sum of its rows' cost (the startup invariant's money half).
    EXPECT_EQ(db.scalar("SELECT spend_nano FROM keys WHERE id = " + std::to_string(key.id)),
              db.scalar("SELECT SUM(cost_nano) FROM usage_logs WHERE key_id = " +
                        std::to_string(key.id)));
}

}  // namespace
}  // namespace rw::test::proxy
