// tests/unit/storage/queries_test.cc — admin reads: usage per day with bounds, recent
// logs paginated by id, keys listed without hashes, key masking.
#include "storage/queries.h"

#include <gtest/gtest.h>

#include <thread>

#include "storage/keys.h"
#include "storage_test_support.h"

namespace rw {
namespace {

TEST(Queries, ApiKeyMask) {
    EXPECT_EQ(api_key_mask("sk-abcdefghijklmnop"), "sk-\u2026mnop");
    EXPECT_EQ(api_key_mask("short-key"), "\u2026ey");
    EXPECT_EQ(api_key_mask(""), "\u2026");
}

TEST(Queries, UsageAndLogsPaginated) {
    test::TempDir dir;
    const StorageConfig config = test::test_config(dir);
    Writer writer;
    std::string error;
    ASSERT_TRUE(writer.open(config, 1, error)) << error;
    std::thread writer_thread([&writer] { writer.run(); });
    SnapshotStore snapshots;
    ASSERT_TRUE(snapshots.open(config, 1, error)) << error;
    Catalog catalog(writer, snapshots);
    KeySpec spec;
    spec.name = "reporting";
    const Result<CreatedKey> key = catalog.create_key(spec);
    ASSERT_TRUE(key.ok()) << key.error;

    // 30 rows for the key over three days (2023-11-14..16), 10 for key 0.
    for (uint64_t i = 0; i < 40; i++) {
        const int64_t key_id = i < 30 ? key.value.id : 0;
        const int64_t ts_ms = 1700000000000 + int64_t(i % 3) * 86400000;
        ASSERT_TRUE(writer.queue(0).try_reserve());
        writer.queue(0).push(test::make_record(i, key_id, 10, ts_ms));
    }
    writer.notify(0);
    ASSERT_TRUE(test::wait_until([&] { return writer.rows_written() == 40; }));

    Queries queries;
    ASSERT_TRUE(queries.open(config, error)) << error;
    const auto days = queries.usage_per_day(key.value.id, "2023-11-15", "");
    ASSERT_TRUE(days.ok()) << days.error;
    ASSERT_EQ(days.value.size(), 2u);
    EXPECT_EQ(days.value[0].day, "2023-11-15");
    EXPECT_EQ(days.value[0].requests, 10);
    EXPECT_EQ(days.value[0].total_tokens, 100);
    EXPECT_EQ(days.value[1].day, "2023-11-16");
    const auto all_days = queries.usage_per_day(0, "", "2023-11-14");
    ASSERT_TRUE(all_days.ok());
    EXPECT_EQ(all_days.value.size(), 2u);  // Key 0 and the key, on the first day.

    std::vector<int64_t> seen;
    int64_t before_id = 0;
    for (;;) {
        const auto page = queries.recent_logs(key.value.id, 7, before_id);
        ASSERT_TRUE(page.ok()) << page.error;
        if (page.value.empty()) {
            break;
        }
        for (const UsageLogRow& row : page.value) {
            EXPECT_EQ(row.key_id, key.value.id);
            if (!seen.empty()) {
                EXPECT_LT(row.id, seen.back());  // Newest first.
            }
            seen.push_back(row.id);
        }
        before_id = page.value.back().id;
    }
    EXPECT_EQ(seen.size(), 30u);
    const auto newest = queries.recent_logs(0, 1, 0);
    ASSERT_TRUE(newest.ok());
    EXPECT_EQ(newest.value[0].request_id, "req-39");
    EXPECT_EQ(newest.value[0].end_reason, "complete");

    const auto keys = queries.list_keys();
    ASSERT_TRUE(keys.ok()) << keys.error;
    ASSERT_EQ(keys.value.size(), 1u);
    EXPECT_EQ(keys.value[0].quota_used_tokens, 300);
    EXPECT_EQ(keys.value[0].key_prefix, key.value.key_prefix);
    EXPECT_EQ(keys.value[0].status, "active");
    EXPECT_FALSE(keys.value[0].has_quota_limit);
    EXPECT_FALSE(queries.get_key(12345).ok());
    writer.request_stop();
    writer_thread.join();
}

}  // namespace
}  // namespace rw
