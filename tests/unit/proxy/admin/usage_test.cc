// tests/unit/proxy/admin/usage_test.cc — /admin/usage and /admin/logs over rows the
// writer committed: daily totals per key with day or Unix-second bounds, logs newest
// first paged by the next_before cursor, and the parameter errors.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "storage/writer.h"
#include "tests/unit/proxy/admin/admin_test_support.h"
#include "tests/unit/storage/storage_test_support.h"

namespace rw {
namespace {

using test::AdminServerTest;
using test::HttpReply;
using test::Json;

TEST_F(AdminServerTest, UsageAndLogsPaginate) {
    const HttpReply created = call("POST", "/admin/keys", R"({"name":"metered"})");
    ASSERT_EQ(created.status, 201);
    const int64_t key_id = Json(created.body).integer("/id");
    // 25 rows for the key over 2023-11-14..16 (9, 8, 8), 5 rows for another key.
    for (uint64_t i = 0; i < 30; i++) {
        const int64_t owner = i < 25 ? key_id : key_id + 100;
        const int64_t ts_ms = 1700000000000 + int64_t(i % 3) * 86400000;
        ASSERT_TRUE(writer_.queue(0).try_reserve());
        writer_.queue(0).push(test::make_record(i, owner, 10, ts_ms));
    }
    writer_.notify(0);
    ASSERT_TRUE(test::wait_until([&] { return writer_.rows_written() == 30; }));

    const std::string key_param = "key_id=" + std::to_string(key_id);
    const HttpReply usage = call("GET", "/admin/usage?" + key_param + "&since=2023-11-15");
    ASSERT_EQ(usage.status, 200) << usage.body;
    Json days(usage.body);
    ASSERT_EQ(days.array_size("/data"), 2u);
    EXPECT_EQ(days.string("/data/0/day"), "2023-11-15");
    EXPECT_EQ(days.integer("/data/0/requests"), 8);
    EXPECT_EQ(days.integer("/data/0/total_tokens"), 80);
    EXPECT_EQ(days.integer("/data/0/key_id"), key_id);
    EXPECT_EQ(days.string("/data/1/day"), "2023-11-16");
    // Unix seconds work for bounds too: until 2023-11-14 12:00 UTC is that day.
    Json first_day(call("GET", "/admin/usage?" + key_param + "&until=1699963200").body);
    ASSERT_EQ(first_day.array_size("/data"), 1u);
    EXPECT_EQ(first_day.integer("/data/0/requests"), 9);
    EXPECT_EQ(call("GET", "/admin/usage?since=yesterday").status, 400);
    EXPECT_EQ(call("GET", "/admin/usage?key=1").status, 400);

    std::vector<int64_t> seen;
    std::string cursor;
    for (int page = 0; page < 10; page++) {
        const HttpReply logs = call("GET", "/admin/logs?" + key_param + "&limit=10" + cursor);
        ASSERT_EQ(logs.status, 200) << logs.body;
        Json json(logs.body);
        const size_t count = json.array_size("/data");
        for (size_t i = 0; i < count; i++) {
            const std::string row = "/data/" + std::to_string(i);
            EXPECT_EQ(json.integer(row + "/key_id"), key_id);
            const int64_t id = json.integer(row + "/id");
            if (!seen.empty()) {
                EXPECT_LT(id, seen.back());  // Newest first, no repeats.
            }
            seen.push_back(id);
        }
        if (json.is_null("/next_before")) {
            EXPECT_EQ(count, 5u);  // 10 + 10 + 5.
            break;
        }
        EXPECT_EQ(json.integer("/next_before"), seen.back());
        cursor = "&before=" + std::to_string(seen.back());
    }
    EXPECT_EQ(seen.size(), 25u);
    Json newest(call("GET", "/admin/logs?limit=1").body);
    EXPECT_EQ(newest.string("/data/0/request_id"), "req-29");
    EXPECT_EQ(newest.string("/data/0/end_reason"), "complete");
    EXPECT_EQ(newest.integer("/data/0/total_tokens"), 10);
    EXPECT_EQ(call("GET", "/admin/logs?limit=0").status, 400);
    EXPECT_EQ(call("GET", "/admin/logs?limit=5000").status, 400);
    EXPECT_EQ(call("GET", "/admin/logs?before=-1").status, 400);
    EXPECT_EQ(call("POST", "/admin/logs", "{}").status, 405);
}

TEST_F(AdminServerTest, UsageGroupedWithKindsAndExactCost) {
    // make_record: every third row unpriced; cost = sequence * 1000003 + tokens otherwise.
    int64_t cost_nano = 0;
    for (uint64_t i = 0; i < 6; i++) {
        UsageRecord record = test::make_record(i, 1 + int64_t(i % 2), 40, 1700000000000);
        record_set_text(record.model_sent, i < 3 ? "m-a" : "m-b");
        cost_nano += record.cost_nano;
        ASSERT_TRUE(writer_.queue(0).try_reserve());
        writer_.queue(0).push(record);
    }
    writer_.notify(0);
    ASSERT_TRUE(test::wait_until([&] { return writer_.rows_written() == 6; }));
    EXPECT_EQ(cost_nano, 1000003 * (1 + 2 + 4 + 5) + 40 * 4);

    Json day(call("GET", "/admin/usage").body);
    ASSERT_EQ(day.array_size("/data"), 2u);                    // Keys 1 and 2 on 2023-11-14.
    EXPECT_EQ(day.string("/data/0/cost_usd"), "0.006000098");  // Rows 2, 4 (0 unpriced).
    EXPECT_EQ(day.string("/data/1/cost_usd"), "0.006000098");  // Rows 1, 5 (3 unpriced).
    EXPECT_EQ(day.integer("/data/0/unpriced_requests"), 1);
    EXPECT_EQ(day.integer("/data/0/cached_input_tokens"), 3 * 5);

    const HttpReply by_model = call("GET", "/admin/usage?group_by=model,day");
    ASSERT_EQ(by_model.status, 200) << by_model.body;
    Json models(by_model.body);
    ASSERT_EQ(models.array_size("/data"), 2u);
    EXPECT_EQ(models.string("/data/0/model"), "m-a");
    EXPECT_EQ(models.string("/data/0/day"), "2023-11-14");
    EXPECT_EQ(models.string("/data/0/cost_usd"), "0.003000089");  // Rows 1, 2.
    EXPECT_EQ(models.integer("/data/0/reasoning_tokens"), 3 * 6);
    EXPECT_EQ(models.string("/data/1/cost_usd"), "0.009000107");  // Rows 4, 5.
    EXPECT_EQ(call("GET", "/admin/usage?group_by=colour").status, 400);
    EXPECT_EQ(call("GET", "/admin/usage?group_by=key,key").status, 400);
    EXPECT_EQ(call("GET", "/admin/usage?group_by=").status, 400);

    Json logs(call("GET", "/admin/logs?limit=6").body);
    EXPECT_EQ(logs.string("/data/0/cost_usd"), "0.005000055");  // Row 5, newest.
    EXPECT_EQ(logs.integer("/data/0/price_id"), 5);
    EXPECT_EQ(logs.string("/data/2/cost_usd"), "0");  // Row 3: unpriced.
    EXPECT_TRUE(logs.is_null("/data/2/price_id"));
}

}  // namespace
}  // namespace rw
