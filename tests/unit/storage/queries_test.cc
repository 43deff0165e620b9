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
    EXPECT_EQ(days.value[0].totals.requests, 10);
    EXPECT_EQ(days.value[0].totals.total_tokens, 100);
    EXPECT_EQ(days.value[1].day, "2023-11-16");
    const auto all_days = queries.usage_per_day(key_id_all, "", "2023-11-14");
    ASSERT_TRUE(all_days.ok());
    EXPECT_EQ(all_days.value.size(), 2u);  // Key 0 and the key, on the first day.
    // Key 0 is the system key, a key like the others: its rows alone.
    const auto system_days = queries.usage_per_day(0, "", "");
    ASSERT_TRUE(system_days.ok()) << system_days.error;
    ASSERT_EQ(system_days.value.size(), 3u);
    int64_t system_requests = 0;
    for (const DailyUsageRow& row : system_days.value) {
        EXPECT_EQ(row.key_id, 0);
        system_requests += row.totals.requests;
    }
    EXPECT_EQ(system_requests, 10);
    const auto system_logs = queries.recent_logs(LogFilter{0, 0, ""}, 100, 0);
    ASSERT_TRUE(system_logs.ok()) << system_logs.error;
    EXPECT_EQ(system_logs.value.size(), 10u);
    for (const UsageLogRow& row : system_logs.value) {
        EXPECT_EQ(row.key_id, 0);
    }
    EXPECT_EQ(queries.recent_logs(LogFilter{}, 100, 0).value.size(), 40u);

    std::vector<int64_t> seen;
    int64_t before_id = 0;
    for (;;) {
        const auto page = queries.recent_logs(LogFilter{key.value.id, 0, ""}, 7, before_id);
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
    const auto newest = queries.recent_logs(LogFilter{}, 1, 0);
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

// ringway's own id (not indexed: read from the newest row back) and the client's and the
// provider's ids (indexed) all find their rows; a row found by two of them comes once.
TEST(Queries, LogsByRequestIdFindsEachKindOfId) {
    test::TempDir dir;
    const StorageConfig config = test::test_config(dir);
    Writer writer;
    std::string error;
    ASSERT_TRUE(writer.open(config, 1, error)) << error;
    std::thread writer_thread([&writer] { writer.run(); });
    constexpr uint64_t rows_total = 300;
    auto own_id = [](uint64_t i) {
        return "rw-" + std::to_string(i % 2) + "-18bcfe568" + std::to_string(i % 10) + "-" +
               std::to_string(i);
    };
    for (uint64_t i = 0; i < rows_total; i++) {
        UsageRecord record = test::make_record(i, 0, 10);
        record_set_text(record.request_id, own_id(i));
        if (i == 10 || i == 250) {  // Two requests sent with the same client id.
            record_set_text(record.client_request_id, "client-abc");
        }
        if (i == 20) {
            record_set_text(record.upstream_request_id, "req_upstream_1");
        }
        if (i == 30) {  // A client id that is another row's ringway id, and its own.
            record_set_text(record.client_request_id, own_id(200));
        }
        if (i == 40) {
            record_set_text(record.client_request_id, own_id(40));
        }
        ASSERT_TRUE(writer.queue(0).try_reserve());
        writer.queue(0).push(record);
    }
    writer.notify(0);
    ASSERT_TRUE(test::wait_until([&] { return writer.rows_written() == rows_total; }));

    Queries queries;
    ASSERT_TRUE(queries.open(config, error)) << error;
    auto found = [&](const std::string& id) {
        std::vector<std::string> request_ids;
        const auto rows = queries.logs_by_request_id(id);
        EXPECT_TRUE(rows.ok()) << rows.error;
        for (const UsageLogRow& row : rows.value) {
            request_ids.push_back(row.request_id);
        }
        return request_ids;
    };
    using Ids = std::vector<std::string>;
    EXPECT_EQ(found(own_id(0)), Ids{own_id(0)});  // The oldest: the read goes back to it.
    EXPECT_EQ(found(own_id(123)), Ids{own_id(123)});
    EXPECT_EQ(found("client-abc"), (Ids{own_id(250), own_id(10)}));
    EXPECT_EQ(found("req_upstream_1"), Ids{own_id(20)});
    EXPECT_EQ(found(own_id(200)), (Ids{own_id(200), own_id(30)}));
    EXPECT_EQ(found(own_id(40)), Ids{own_id(40)});
    EXPECT_TRUE(found(own_id(rows_total)).empty());
    EXPECT_TRUE(found("rw-0-18bcfe5680").empty());
    writer.request_stop();
    writer_thread.join();
}

TEST(Queries, UsageGroupedByKeyModelChannelDay) {
    test::TempDir dir;
    const StorageConfig config = test::test_config(dir);
    Writer writer;
    std::string error;
    ASSERT_TRUE(writer.open(config, 1, error)) << error;
    std::thread writer_thread([&writer] { writer.run(); });
    // 12 rows: keys 1 and 2, models a and b, channels 7 and 8, two days.
    int64_t cost_by_model[2] = {0, 0};
    for (uint64_t i = 0; i < 12; i++) {
        UsageRecord record = test::make_record(i, int64_t(1 + i % 2), 20,
                                               1700000000000 + int64_t(i % 3 == 0) * 86400000);
        record_set_text(record.model_sent, i < 4 ? "a" : "b");
        record.channel_id = i < 8 ? 7 : 8;
        cost_by_model[i < 4 ? 0 : 1] += record.cost_nano;
        ASSERT_TRUE(writer.queue(0).try_reserve());
        writer.queue(0).push(record);
    }
    writer.notify(0);
    ASSERT_TRUE(test::wait_until([&] { return writer.rows_written() == 12; }));
    Queries queries;
    ASSERT_TRUE(queries.open(config, error)) << error;

    UsageGrouping by_model;
    by_model.by_model = true;
    const auto models = queries.usage_grouped(by_model, key_id_all, "", "");
    ASSERT_TRUE(models.ok()) << models.error;
    ASSERT_EQ(models.value.size(), 2u);
    EXPECT_EQ(models.value[0].model, "a");
    EXPECT_EQ(models.value[0].totals.requests, 4);
    EXPECT_EQ(models.value[0].totals.cost_nano, cost_by_model[0]);
    EXPECT_EQ(models.value[1].totals.cost_nano, cost_by_model[1]);
    EXPECT_EQ(models.value[0].totals.cached_input_tokens, 4 * (10 / 4));
    EXPECT_EQ(models.value[0].totals.unpriced_requests, 2);  // Sequences 0 and 3.

    UsageGrouping by_channel_day;
    by_channel_day.by_channel = true;
    by_channel_day.by_day = true;
    const auto channel_days = queries.usage_grouped(by_channel_day, key_id_all, "2023-11-15", "");
    ASSERT_TRUE(channel_days.ok()) << channel_days.error;
    ASSERT_EQ(channel_days.value.size(), 2u);  // Only 2023-11-15: channels 7 and 8.
    EXPECT_EQ(channel_days.value[0].day, "2023-11-15");
    EXPECT_EQ(channel_days.value[0].channel_id, 7);
    EXPECT_EQ(channel_days.value[0].totals.requests, 3);  // i = 0, 3, 6.
    EXPECT_EQ(channel_days.value[1].channel_id, 8);
    EXPECT_EQ(channel_days.value[1].totals.requests, 1);  // i = 9.

    // key and day alone come from the daily aggregates and agree with the rows.
    UsageGrouping by_key;
    by_key.by_key = true;
    const auto keys = queries.usage_grouped(by_key, key_id_all, "", "");
    ASSERT_TRUE(keys.ok()) << keys.error;
    ASSERT_EQ(keys.value.size(), 2u);
    UsageGrouping by_key_model = by_key;
    by_key_model.by_model = true;
    const auto key_models = queries.usage_grouped(by_key_model, 2, "", "");
    ASSERT_TRUE(key_models.ok()) << key_models.error;
    int64_t key2_cost = 0;
    for (const UsageGroupRow& row : key_models.value) {
        EXPECT_EQ(row.key_id, 2);
        key2_cost += row.totals.cost_nano;
    }
    EXPECT_EQ(keys.value[1].key_id, 2);
    EXPECT_EQ(keys.value[1].totals.cost_nano, key2_cost);
    writer.request_stop();
    writer_thread.join();
}

TEST(Queries, PricesWrittenListedDeletedAndInTheSnapshot) {
    test::TempDir dir;
    const StorageConfig config = test::test_config(dir);
    Writer writer;
    std::string error;
    ASSERT_TRUE(writer.open(config, 1, error)) << error;
    std::thread writer_thread([&writer] { writer.run(); });
    SnapshotStore snapshots;
    ASSERT_TRUE(snapshots.open(config, 1, error)) << error;
    Catalog catalog(writer, snapshots);
    PriceSpec spec;
    spec.model = "gpt-4o*";
    spec.input_per_mtok = 2'500'000'000;
    spec.output_per_mtok = 10'000'000'000;
    spec.has_cached_input = true;
    spec.cached_input_per_mtok = 1'250'000'000;
    spec.effective_from_s = 100;
    const Result<int64_t> first = catalog.create_price(spec);
    ASSERT_TRUE(first.ok()) << first.error;
    spec.model = "gpt-4o-mini";
    spec.has_cached_input = false;
    spec.input_per_mtok = 150'000'000;
    const Result<int64_t> second = catalog.create_price(spec);
    ASSERT_TRUE(second.ok()) << second.error;
    spec.model = "bad*model";
    EXPECT_FALSE(catalog.create_price(spec).ok());

    // The snapshot prices without SQL: the exact name over the prefix, a kind without its
    // own rate at its parent's.
    const Snapshot* snapshot = snapshots.publisher().current();
    const PriceEntry* mini = snapshot->prices().find("gpt-4o-mini", 1, 200'000);
    ASSERT_NE(mini, nullptr);
    EXPECT_EQ(mini->id, second.value);
    EXPECT_EQ(mini->rates.cached_input_per_mtok, 150'000'000);
    const PriceEntry* four_o = snapshot->prices().find("gpt-4o-2024-08-06", 1, 200'000);
    ASSERT_NE(four_o, nullptr);
    EXPECT_EQ(four_o->rates.cached_input_per_mtok, 1'250'000'000);
    EXPECT_EQ(snapshot->prices().find("gpt-4o-mini", 1, 99'999), nullptr);  // Before 100 s.

    Queries queries;
    ASSERT_TRUE(queries.open(config, error)) << error;
    ASSERT_TRUE(catalog.delete_price(first.value, error)) << error;
    EXPECT_FALSE(catalog.delete_price(first.value, error));  // Already deleted.
    EXPECT_EQ(error, "no price with id " + std::to_string(first.value));
    EXPECT_EQ(snapshots.publisher().current()->prices().find("gpt-4o-2024-08-06", 1, 200'000),
              nullptr);
    const auto live = queries.list_prices(false);
    ASSERT_TRUE(live.ok()) << live.error;
    ASSERT_EQ(live.value.size(), 1u);
    EXPECT_EQ(live.value[0].model, "gpt-4o-mini");
    EXPECT_FALSE(live.value[0].has_cached_input);
    const auto all = queries.list_prices(true);
    ASSERT_TRUE(all.ok());
    ASSERT_EQ(all.value.size(), 2u);
    EXPECT_NE(all.value[0].deleted_at_s, 0);  // Kept for the rows it priced.
    EXPECT_EQ(all.value[0].cached_input_per_mtok, 1'250'000'000);
    EXPECT_TRUE(queries.get_price(first.value).ok());
    EXPECT_FALSE(queries.get_price(999).ok());
    writer.request_stop();
    writer_thread.join();
}

}  // namespace
}  // namespace rw
