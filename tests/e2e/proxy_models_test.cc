// tests/e2e/proxy_models_test.cc — models by pattern and alias, against the mock upstream
// (which echoes the model it was sent): an alias falls back to its next model when the first
// model's channel refuses, and the usage row keeps the asked and the sent model; a channel's
// model_map picks the exact key over the longest prefix over "*"; a key restricted by a
// pattern reaches only what it matches (aliases included); GET /v1/models lists concrete
// names (a serve-everything channel's priced names too) and aliases, in OpenAI's shape or
// Anthropic's when the request carries anthropic-version. One shard, so channel health
// (kept per shard) is deterministic.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

class ProxyModelsTest : public ::testing::Test {
protected:
    void start_gateway() {
        // A cap of 0 on Retry-After: a refusing channel's probe does not push it last.
        ASSERT_NO_FATAL_FAILURE(
            gateway_.start({{"RINGWAY_SHARDS", "1"}, {"RINGWAY_CHANNEL_RETRY_AFTER_MAX_MS", "0"}}));
    }
    int64_t create_alias(const std::string& name, const std::string& models_json) {
        const Response response = gateway_.admin(
            "POST", "/admin/aliases", R"({"name":")" + name + R"(","models":)" + models_json + "}");
        EXPECT_EQ(response.status, 201) << response.body;
        return Json(response.body).integer("/id", 0);
    }
    // The ids /v1/models lists for `key`, and the whole answer in `body`.
    std::set<std::string> listed(const Key& key, bool is_anthropic, std::string& body) {
        std::string headers = "Authorization: Bearer " + key.secret + "\r\n";
        if (is_anthropic) {
            headers += "anthropic-version: 2023-06-01\r\n";
        }
        const Response response = gateway_.call(get_request("/v1/models", headers));
        EXPECT_EQ(response.status, 200) << response.body;
        body = response.body;
        simdjson::dom::parser parser;
        simdjson::dom::element root;
        std::set<std::string> ids;
        EXPECT_EQ(parser.parse(body).get(root), simdjson::SUCCESS) << body;
        simdjson::dom::array data;
        if (root["data"].get_array().get(data) != simdjson::SUCCESS) {
            ADD_FAILURE() << "no data array: " << body;
            return ids;
        }
        for (simdjson::dom::element item : data) {
            std::string_view id;
            EXPECT_EQ(item["id"].get_string().get(id), simdjson::SUCCESS) << body;
            ids.emplace(id);
        }
        return ids;
    }

    MockUpstream refusing_;
    MockUpstream healthy_;
    Gateway gateway_;
};

TEST_F(ProxyModelsTest, AliasFallsBackToItsNextModelWhenTheFirstModelsChannelFails) {
    ASSERT_NO_FATAL_FAILURE(start_mock(refusing_, {"status=503"}));
    ASSERT_NO_FATAL_FAILURE(start_mock(healthy_));
    ASSERT_NO_FATAL_FAILURE(start_gateway());
    ChannelSpec primary;
    primary.name = "primary";
    primary.mock_port = refusing_.port();
    primary.models = {"model-a"};
    const int64_t primary_id = gateway_.create_channel(primary);
    ChannelSpec backup;
    backup.name = "backup";
    backup.mock_port = healthy_.port();
    backup.models = {"model-b"};
    const int64_t backup_id = gateway_.create_channel(backup);
    (void)gateway_.wait_channels_routable();
    ASSERT_GT(create_alias("fast", R"(["model-a","model-b"])"), 0);
    ASSERT_NO_FATAL_FAILURE(mock_reset(refusing_.port()));
    ASSERT_NO_FATAL_FAILURE(mock_reset(healthy_.port()));
    const Key key = gateway_.create_key(R"({"name":"app"})");

    const Response response = gateway_.chat(key, chat_body("fast", false));
    ASSERT_EQ(response.status, 200) << response.body;
    EXPECT_EQ(Json(response.body).string("/model"), "model-b");  // The mock echoes it.
    EXPECT_EQ(mock_requests(refusing_.port()), 1);
    EXPECT_EQ(mock_requests(healthy_.port()), 1);
    const auto rows = wait_usage_rows(gateway_.db_path(), key.id, 1, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].at("model_requested"), "fast") << describe_row(rows[0]);
    EXPECT_EQ(rows[0].at("model_sent"), "model-b");
    EXPECT_EQ(as_int(rows[0], "attempts"), 2);
    EXPECT_EQ(as_int(rows[0], "channel_id"), backup_id);
    EXPECT_NE(as_int(rows[0], "channel_id"), primary_id);

    // A key that may use model-b only never reaches model-a's channel through the alias.
    const Key only_b = gateway_.create_key(R"({"name":"only-b","models":["model-b"]})");
    ASSERT_NO_FATAL_FAILURE(mock_reset(refusing_.port()));
    const Response direct = gateway_.chat(only_b, chat_body("fast", false));
    ASSERT_EQ(direct.status, 200) << direct.body;
    EXPECT_EQ(mock_requests(refusing_.port()), 0);
    const auto only_b_rows =
        wait_usage_rows(gateway_.db_path(), only_b.id, 1, Deadline::after_ms(5000));
    ASSERT_EQ(only_b_rows.size(), 1u);
    EXPECT_EQ(as_int(only_b_rows[0], "attempts"), 1) << describe_row(only_b_rows[0]);

    // An alias none of whose models the key may use is refused as the model would be.
    const Key other = gateway_.create_key(R"({"name":"other","models":["model-c"]})");
    const Response refused = gateway_.chat(other, chat_body("fast", false));
    EXPECT_EQ(refused.status, 403) << refused.body;
    EXPECT_NE(refused.body.find("model_not_allowed"), std::string::npos) << refused.body;

    // Changing the alias takes effect at once (the snapshot is reloaded before the reply).
    const int64_t alias_id =
        Json(gateway_.admin("GET", "/admin/aliases").body).integer("/data/0/id");
    const Response patched = gateway_.admin("PATCH", "/admin/aliases/" + std::to_string(alias_id),
                                            R"({"models":["model-b"]})");
    ASSERT_EQ(patched.status, 200) << patched.body;
    ASSERT_NO_FATAL_FAILURE(mock_reset(refusing_.port()));
    EXPECT_EQ(gateway_.chat(key, chat_body("fast", false)).status, 200);
    EXPECT_EQ(mock_requests(refusing_.port()), 0);
    const Response deleted = gateway_.admin("DELETE", "/admin/aliases/" + std::to_string(alias_id));
    ASSERT_EQ(deleted.status, 200) << deleted.body;
    const Response gone = gateway_.chat(key, chat_body("fast", false));
    EXPECT_EQ(gone.status, 404) << gone.body;
}

TEST_F(ProxyModelsTest, AliasAdminRefusesWhatCannotRoute) {
    ASSERT_NO_FATAL_FAILURE(start_gateway());
    ASSERT_GT(create_alias("fast", R"(["model-a","model-b"])"), 0);
    EXPECT_EQ(gateway_.admin("POST", "/admin/aliases", R"({"name":"fast","models":["x"]})").status,
              409);
    for (const char* body :
         {R"({"name":"p","models":["gpt-*"]})", R"({"name":"p*","models":["x"]})",
          R"({"name":"p","models":[]})", R"({"name":"p","models":["p"]})",
          R"({"name":"p","models":["x","x"]})", R"({"name":"p"})", R"({"models":["x"]})",
          R"({"name":"p","models":["x"],"extra":1})"}) {
        const Response response = gateway_.admin("POST", "/admin/aliases", body);
        EXPECT_EQ(response.status, 400) << body << " -> " << response.body;
    }
    EXPECT_EQ(gateway_.admin("GET", "/admin/aliases/999").status, 404);
    EXPECT_EQ(gateway_.admin("DELETE", "/admin/aliases/999").status, 404);
    const Response list = gateway_.admin("GET", "/admin/aliases");
    ASSERT_EQ(list.status, 200) << list.body;
    Json json(list.body);
    EXPECT_EQ(json.array_size("/data"), 1u);
    EXPECT_EQ(json.string("/data/0/name"), "fast");
    EXPECT_EQ(json.string("/data/0/models/1"), "model-b");
    // Channel and key model lists take patterns with '*' only at the end.
    EXPECT_EQ(gateway_.admin("POST", "/admin/keys", R"({"name":"k","models":["g*pt"]})").status,
              400);
}

TEST_F(ProxyModelsTest, ModelMapPrefersExactThenLongestPrefixThenStar) {
    ASSERT_NO_FATAL_FAILURE(start_mock(healthy_));
    ASSERT_NO_FATAL_FAILURE(start_gateway());
    ChannelSpec channel;
    channel.name = "patterns";
    channel.mock_port = healthy_.port();
    channel.models = {"gpt-*"};
    channel.model_map_json =
        R"({"*":"catch-all","gpt-4*":"mapped-gpt4","gpt-4o":"exact-gpt4o","gpt-4o-*":"mapped-gpt4o"})";
    (void)gateway_.create_channel(channel);
    (void)gateway_.wait_channels_routable();
    const Key key = gateway_.create_key(R"({"name":"app"})");
    const std::pair<const char*, const char*> cases[] = {
        {"gpt-4o", "exact-gpt4o"},           // Exact key.
        {"gpt-4o-mini", "mapped-gpt4o"},     // Longest prefix.
        {"gpt-4-turbo", "mapped-gpt4"},      // Shorter prefix.
        {"gpt-3.5-turbo", "gpt-3.5-turbo"},  // `models` "gpt-*" beats the map's "*".
        {"claude-x", "catch-all"},           // Only "*" matches.
    };
    for (const auto& [asked, sent] : cases) {
        const Response response = gateway_.chat(key, chat_body(asked, false));
        ASSERT_EQ(response.status, 200) << asked << ": " << response.body;
        EXPECT_EQ(Json(response.body).string("/model"), sent) << asked;
    }
    const auto rows = wait_usage_rows(gateway_.db_path(), key.id, 5, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 5u);
    for (size_t i = 0; i < 5; i++) {
        EXPECT_EQ(rows[i].at("model_requested"), cases[i].first);
        EXPECT_EQ(rows[i].at("model_sent"), cases[i].second);
    }
}

TEST_F(ProxyModelsTest, KeyRestrictedByPatternReachesOnlyWhatItMatches) {
    ASSERT_NO_FATAL_FAILURE(start_mock(healthy_));
    ASSERT_NO_FATAL_FAILURE(start_gateway());
    ChannelSpec channel;
    channel.name = "wide";
    channel.mock_port = healthy_.port();
    channel.models = {"gpt-4o", "gpt-4o-mini", "gpt-3.5-turbo"};
    (void)gateway_.create_channel(channel);
    (void)gateway_.wait_channels_routable();
    ASSERT_GT(create_alias("cheap", R"(["gpt-3.5-turbo","gpt-4o-mini"])"), 0);
    const Key key = gateway_.create_key(R"({"name":"gpt4","models":["gpt-4o*"]})");
    EXPECT_EQ(gateway_.chat(key, chat_body("gpt-4o", false)).status, 200);
    EXPECT_EQ(gateway_.chat(key, chat_body("gpt-4o-mini", false)).status, 200);
    const Response refused = gateway_.chat(key, chat_body("gpt-3.5-turbo", false));
    EXPECT_EQ(refused.status, 403) << refused.body;
    // The alias routes to the one model the key may use.
    const Response alias = gateway_.chat(key, chat_body("cheap", false));
    ASSERT_EQ(alias.status, 200) << alias.body;
    EXPECT_EQ(Json(alias.body).string("/model"), "gpt-4o-mini");
    std::string body;
    const std::set<std::string> ids = listed(key, false, body);
    EXPECT_EQ(ids, (std::set<std::string>{"gpt-4o", "gpt-4o-mini", "cheap"})) << body;
}

TEST_F(ProxyModelsTest, ModelsListsConcreteNamesAndAliasesInBothShapes) {
    ASSERT_NO_FATAL_FAILURE(start_mock(healthy_));
    ASSERT_NO_FATAL_FAILURE(start_gateway());
    ChannelSpec listing;
    listing.name = "listing";
    listing.mock_port = healthy_.port();
    listing.models = {"m-one", "fam-*"};
    listing.model_map_json = R"({"short":"m-one"})";
    (void)gateway_.create_channel(listing);
    // A channel that serves every model: it lists the names priced exactly.
    const std::string everything =
        R"({"name":"everything","kind":"openai","base_url":"http://127.0.0.1:)" +
        std::to_string(healthy_.port()) + R"(","api_key":")" + std::string(upstream_key) +
        R"(","allow_private_network":true})";
    ASSERT_EQ(gateway_.admin("POST", "/admin/channels", everything).status, 201);
    for (const char* model : {"priced-x", "fam-special", "fam-*"}) {
        const Response price =
            gateway_.admin("POST", "/admin/prices",
                           std::string(R"({"model":")") + model +
                               R"(","input_per_mtok":"1","output_per_mtok":"2"})");
        ASSERT_EQ(price.status, 201) << price.body;
    }
    ASSERT_GT(create_alias("fast", R"(["m-one","priced-x"])"), 0);
    (void)gateway_.wait_channels_routable();
    const Key key = gateway_.create_key(R"({"name":"app"})");

    std::string body;
    const std::set<std::string> ids = listed(key, false, body);
    const std::set<std::string> expected = {"probe-listing", "m-one",    "short",
                                            "fam-special",   "priced-x", "fast"};
    EXPECT_EQ(ids, expected) << body;
    Json openai(body);
    EXPECT_EQ(openai.string("/object"), "list");
    EXPECT_EQ(openai.string("/data/0/object"), "model");
    EXPECT_EQ(openai.integer("/data/0/created"), 0);
    EXPECT_EQ(openai.string("/data/0/owned_by"), "listing");
    EXPECT_FALSE(openai.has("/has_more"));

    const std::set<std::string> anthropic_ids = listed(key, true, body);
    EXPECT_EQ(anthropic_ids, expected) << body;
    Json anthropic(body);
    const size_t count = anthropic.array_size("/data");
    ASSERT_EQ(count, expected.size());
    EXPECT_EQ(anthropic.string("/data/0/type"), "model");
    EXPECT_EQ(anthropic.string("/data/0/display_name"), anthropic.string("/data/0/id"));
    EXPECT_EQ(anthropic.string("/data/0/created_at"), "1970-01-01T00:00:00Z");
    EXPECT_EQ(anthropic.boolean("/has_more"), std::optional<bool>(false));
    EXPECT_EQ(anthropic.string("/first_id"), anthropic.string("/data/0/id"));
    EXPECT_EQ(anthropic.string("/last_id"),
              anthropic.string("/data/" + std::to_string(count - 1) + "/id"));
    EXPECT_FALSE(anthropic.has("/object"));

    // Anthropic's error shape too for a refused listing.
    const Response refused = gateway_.call(
        get_request("/v1/models", "x-api-key: sk-rw-nope\r\nanthropic-version: 2023-06-01\r\n"));
    EXPECT_EQ(refused.status, 401);
    EXPECT_EQ(Json(refused.body).string("/type"), "error") << refused.body;
}

}  // namespace
}  // namespace rw::test::proxy
