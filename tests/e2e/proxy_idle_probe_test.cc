// tests/e2e/proxy_idle_probe_test.cc — a down channel with a probe_model recovers with no
// client traffic: once its backoff has passed, the admin thread takes the half-open trial
// that no live request took and sends a minimal request (max_tokens 1) on the probe model;
// its usage row is recorded under the system key (priced, in daily_usage and keys like any
// row, so the quota/spend invariant holds), and a 2xx brings the channel up. The system key
// (id 0) is not listed by /admin/keys. The operator's probe (POST /admin/channels/{id}/test)
// sends the same request and records its row too. key_id=0 on the admin usage, log and
// latency queries selects the system key's rows alone; no key_id selects every key's.
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

class IdleProbe : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_));
        ASSERT_NO_FATAL_FAILURE(gateway_.start({{"RINGWAY_CHANNEL_BACKOFF_MS", "300"},
                                                {"RINGWAY_CHANNEL_BACKOFF_MAX_MS", "600"},
                                                {"RINGWAY_RETRIES", "0"}}));
        ChannelSpec spec;
        spec.name = "main";
        spec.mock_port = mock_.port();
        spec.models = {"gpt-4o-mini"};
        spec.extra_json = R"("probe_model":"probe-tiny")";
        channel_ = gateway_.create_channel(spec);
        ASSERT_GT(channel_, 0);
        gateway_.wait_channels_routable();
        const Response price = gateway_.admin(
            "POST", "/admin/prices",
            R"({"model":"probe-tiny","input_per_mtok":"1","output_per_mtok":"2","effective_from":0})");
        ASSERT_EQ(price.status, 201) << price.body;
        ASSERT_EQ(scalar("SELECT COUNT(*) FROM keys WHERE system = 1 AND id = 0"), 1);
    }

    void set_mock(const std::string& defaults) {
        const auto response =
            http_exchange(mock_.port(),
                          "POST /__mock/defaults HTTP/1.1\r\nHost: mock\r\nContent-Length: " +
                              std::to_string(defaults.size()) + "\r\n\r\n" + defaults,
                          Deadline::after_ms(5000));
        ASSERT_TRUE(response.has_value() && response->status == 200);
    }
    std::string health_state() {
        return Json(gateway_.admin("GET", "/admin/channels/" + std::to_string(channel_)).body)
            .string("/health/state");
    }
    int64_t scalar(const std::string& sql) { return Db(gateway_.db_path()).scalar(sql); }
    int64_t probe_rows(const std::string& where) {
        return scalar(
            "SELECT COUNT(*) FROM usage_logs WHERE key_id = " + std::to_string(system_key_) +
            " AND model_requested = 'probe-tiny' AND " + where);
    }

    // The key ids of the rows of a list reply from the admin API, sorted, each once.
    std::vector<int64_t> row_keys(const std::string& path) {
        const Response reply = gateway_.admin("GET", path);
        EXPECT_EQ(reply.status, 200) << path << ": " << reply.body;
        Json json(reply.body);
        std::vector<int64_t> keys;
        for (size_t i = 0; i < json.array_size("/data"); i++) {
            keys.push_back(json.integer("/data/" + std::to_string(i) + "/key_id"));
        }
        std::sort(keys.begin(), keys.end());
        keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
        return keys;
    }
    // The requests /admin/latency counts over all its days.
    int64_t latency_requests(const std::string& path) {
        const Response reply = gateway_.admin("GET", path);
        EXPECT_EQ(reply.status, 200) << path << ": " << reply.body;
        Json json(reply.body);
        int64_t requests = 0;
        for (size_t i = 0; i < json.array_size("/data"); i++) {
            requests += json.integer("/data/" + std::to_string(i) + "/requests", 0);
        }
        return requests;
    }

    MockUpstream mock_;
    Gateway gateway_;
    int64_t channel_ = 0;
    const int64_t system_key_ = 0;  // The system key's id (migration 11).
};

TEST_F(IdleProbe, ADownChannelComesBackThroughAProbeWithNoClientTraffic) {
    const Key key = gateway_.create_key(R"({"name":"app"})");
    ASSERT_NO_FATAL_FAILURE(set_mock("status=401"));  // The provider refuses the key: down.
    EXPECT_NE(gateway_.chat(key, chat_body("gpt-4o-mini", false)).status, 200);
    ASSERT_TRUE(poll_until(Deadline::after_ms(5000), [&] { return health_state() == "down"; }));
    // Still broken: the idle trials fail (and are recorded, billed nothing), it stays down.
    ASSERT_TRUE(
        poll_until(Deadline::after_ms(10000), [&] { return probe_rows("status = 401") > 0; }));
    EXPECT_EQ(health_state(), "down");
    ASSERT_NO_FATAL_FAILURE(set_mock(""));  // Fixed; no client sends anything from here on.
    ASSERT_NO_FATAL_FAILURE(mock_reset(mock_.port()));
    ASSERT_TRUE(poll_until(Deadline::after_ms(15000), [&] { return health_state() == "up"; }));
    Json stats(mock_stats_text(mock_.port()));
    EXPECT_EQ(stats.string("/last_request/path"), "/v1/chat/completions");
    const std::string body = stats.string("/last_request/body");
    EXPECT_NE(body.find(R"("model":"probe-tiny")"), std::string::npos) << body;
    EXPECT_NE(body.find(R"("max_tokens":1)"), std::string::npos) << body;
    // The probe's row: the system key's, reported usage, priced.
    ASSERT_TRUE(
        poll_until(Deadline::after_ms(5000), [&] { return probe_rows("status = 200") == 1; }));
    EXPECT_EQ(probe_rows("status = 200 AND usage_source = 'reported' AND cost_nano > 0"), 1);
    EXPECT_EQ(probe_rows("status = 401 AND cost_nano = 0 AND total_tokens = 0"),
              probe_rows("status = 401"));
    // Its spend is the system key's, as the invariant wants it.
    EXPECT_EQ(scalar("SELECT spend_nano FROM keys WHERE id = " + std::to_string(system_key_)),
              scalar("SELECT SUM(cost_nano) FROM daily_usage WHERE key_id = " +
                     std::to_string(system_key_)));
    EXPECT_GT(scalar("SELECT quota_used FROM keys WHERE id = " + std::to_string(system_key_)), 0);
    // /admin/usage shows it (key 0); /admin/keys does not list the system key.
    const Response usage = gateway_.admin("GET", "/admin/usage?since=0&group_by=key,model");
    EXPECT_NE(usage.body.find(R"("key_id":0,"model":"probe-tiny")"), std::string::npos)
        << usage.body;
    const Response keys = gateway_.admin("GET", "/admin/keys");
    EXPECT_EQ(keys.body.find("system:probe"), std::string::npos) << keys.body;
}

TEST_F(IdleProbe, TheOperatorsProbeSendsTheProbeModelAndRecordsIt) {
    const Response probe =
        gateway_.admin("POST", "/admin/channels/" + std::to_string(channel_) + "/test");
    ASSERT_EQ(probe.status, 200) << probe.body;
    Json json(probe.body);
    EXPECT_EQ(json.string("/result"), "ok") << probe.body;
    EXPECT_EQ(json.boolean("/recorded"), std::optional<bool>(true)) << probe.body;
    ASSERT_TRUE(
        poll_until(Deadline::after_ms(5000), [&] { return probe_rows("status = 200") == 1; }));
}

// The gateway's own probe key (wait_channels_routable) has rows too: "every key" is all
// the keys with rows, as the database says.
TEST_F(IdleProbe, KeyIdZeroSelectsTheSystemKeysRowsAlone) {
    const Key key = gateway_.create_key(R"({"name":"app"})");
    ASSERT_EQ(gateway_.chat(key, chat_body("gpt-4o-mini", false)).status, 200);
    const Response probe =
        gateway_.admin("POST", "/admin/channels/" + std::to_string(channel_) + "/test");
    ASSERT_EQ(probe.status, 200) << probe.body;
    const std::string of_both = " WHERE key_id IN (0, " + std::to_string(key.id) + ")";
    ASSERT_TRUE(poll_until(Deadline::after_ms(5000), [&] {
        return scalar("SELECT COUNT(*) FROM usage_logs" + of_both) == 2 &&
               scalar("SELECT SUM(requests) FROM daily_usage" + of_both) == 2;
    }));
    const auto keys_with_rows = size_t(scalar("SELECT COUNT(DISTINCT key_id) FROM usage_logs"));
    ASSERT_GE(keys_with_rows, 2U);
    const std::vector<int64_t> system_key = {system_key_};
    const std::vector<int64_t> app_key = {key.id};
    const std::string key_id = "key_id=" + std::to_string(key.id);
    for (const std::string path :
         {"/admin/logs?limit=1000", "/admin/usage?since=0", "/admin/usage?since=0&group_by=key"}) {
        const std::vector<int64_t> every_key = row_keys(path);
        EXPECT_EQ(every_key.size(), keys_with_rows) << path;
        for (const int64_t id : {system_key_, key.id}) {
            EXPECT_NE(std::find(every_key.begin(), every_key.end(), id), every_key.end()) << path;
        }
        EXPECT_EQ(row_keys(path + "&key_id=0"), system_key) << path;
        EXPECT_EQ(row_keys(path + "&" + key_id), app_key) << path;
    }
    EXPECT_EQ(latency_requests("/admin/latency?since=0"),
              scalar("SELECT COUNT(*) FROM usage_logs"));
    EXPECT_EQ(latency_requests("/admin/latency?since=0&key_id=0"), 1);
    EXPECT_EQ(latency_requests("/admin/latency?since=0&" + key_id), 1);
    // Grouped by model alone: the system key's probe model only.
    const Response usage = gateway_.admin("GET", "/admin/usage?key_id=0&group_by=model");
    Json json(usage.body);
    ASSERT_EQ(json.array_size("/data"), 1U) << usage.body;
    EXPECT_EQ(json.string("/data/0/model"), "probe-tiny") << usage.body;
}

}  // namespace
}  // namespace rw::test::proxy
