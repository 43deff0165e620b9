// tests/unit/storage/retention_test.cc — pruning by the writer on real files: aged
// usage_logs rows go (oldest first, in bounded steps), recent ones stay, daily_usage and the
// quota invariant are untouched, and incremental_vacuum gives the pages back; over
// RINGWAY_DB_MAX_BYTES the oldest rows go even when recent.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "storage/migrations.h"
#include "storage/writer.h"
#include "storage_test_support.h"

namespace rw {
namespace {

int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Fills the database the way the writer would have: rows of key 1 dated `age_days` ago
// (one per ms), their daily_usage rows and quota_used — one statement each.
void seed(const StorageConfig& config, int64_t rows, int64_t age_days, int64_t first_id) {
    Db db;
    std::string error;
    ASSERT_TRUE(db.open(config, DbMode::read_write, error)) << error;
    ASSERT_TRUE(migrate(db, error)) << error;
    const int64_t ts = wall_ms() - age_days * 86400000;
    const std::string sql =
        "BEGIN;"
        "INSERT OR IGNORE INTO keys (id, name, key_hash, key_prefix, created_at)"
        " VALUES (1, 'k', zeroblob(32), 'sk-rw-x', 0);"
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < " +
        std::to_string(rows) +
        ") INSERT INTO usage_logs (id, ts_ms, key_id, channel_id, model_requested, model_sent,"
        " endpoint, status, prompt_tokens, completion_tokens, total_tokens, usage_source,"
        " end_reason, attempts, latency_us, ttfb_us, bytes_in, bytes_out, request_id)"
        " SELECT " +
        std::to_string(first_id) + " + i, " + std::to_string(ts) +
        " + i, 1, 7, 'm', 'm', '/v1/chat/completions', 200, 1, 2, 3, 'reported', 'complete',"
        " 1, 1000, 100, 300, 900, 'seed-' || i FROM n;"
        "INSERT INTO daily_usage (key_id, day, model, channel_id, requests, prompt_tokens,"
        " completion_tokens, total_tokens) SELECT 1, date(ts_ms / 1000, 'unixepoch'), 'm', 7,"
        " count(*), sum(prompt_tokens), sum(completion_tokens), sum(total_tokens)"
        " FROM usage_logs WHERE id >= " +
        std::to_string(first_id) +
        " GROUP BY 2 ON CONFLICT (key_id, day, model, channel_id) DO UPDATE SET"
        " requests = requests + excluded.requests, total_tokens = total_tokens +"
        " excluded.total_tokens, prompt_tokens = prompt_tokens + excluded.prompt_tokens,"
        " completion_tokens = completion_tokens + excluded.completion_tokens;"
        "UPDATE keys SET quota_used = quota_used + 3 * " +
        std::to_string(rows) +
        " WHERE id = 1;"
        "COMMIT;";
    ASSERT_TRUE(db.exec(sql.c_str())) << db.last_error();
}

struct Counts {
    int64_t rows;
    int64_t pages;
    int64_t daily_requests;
};

Counts counts(const StorageConfig& config) {
    Db db;
    std::string error;
    EXPECT_TRUE(db.open(config, DbMode::read_only, error)) << error;
    EXPECT_TRUE(check_quota_invariant(db).holds);
    return Counts{db.query_int64("SELECT count(*) FROM usage_logs").value,
                  db.query_int64("PRAGMA page_count").value,
                  db.query_int64("SELECT sum(requests) FROM daily_usage").value};
}

TEST(Retention, AgedRowsArePrunedAndTheirPagesGivenBack) {
    test::TempDir dir;
    StorageConfig config = test::test_config(dir);
    config.retention_days = 90;
    seed(config, 40000, 200, 1);   // Aged.
    seed(config, 500, 1, 100000);  // Recent.
    const Counts before = counts(config);
    ASSERT_EQ(before.rows, 40500);
    Writer writer;
    std::string error;
    ASSERT_TRUE(writer.open(config, 1, error)) << error;
    std::thread writer_thread([&writer] { writer.run(); });
    ASSERT_TRUE(test::wait_until([&] { return writer.retention_stats().pruned_rows == 40000; }));
    // Freed pages are given back (auto_vacuum=INCREMENTAL from the first migration).
    ASSERT_TRUE(test::wait_until([&] { return counts(config).pages < before.pages / 4; }));
    const RetentionStats stats = writer.retention_stats();
    EXPECT_GT(stats.steps, 4u) << "pruned in one big step instead of small ones";
    EXPECT_GT(stats.vacuumed_pages, 0u);
    writer.request_stop();
    writer_thread.join();
    const Counts after = counts(config);
    EXPECT_EQ(after.rows, 500);
    EXPECT_EQ(after.daily_requests, 40500);  // Aggregates kept; the invariant still holds.
}

TEST(Retention, OverTheSizeCapTheOldestRowsGoEarly) {
    test::TempDir dir;
    StorageConfig config = test::test_config(dir);
    config.retention_days = 90;
    seed(config, 30000, 1, 1);  // Recent, but more than the cap allows.
    config.db_max_bytes = 2 * 1024 * 1024;
    Writer writer;
    std::string error;
    ASSERT_TRUE(writer.open(config, 1, error)) << error;
    std::thread writer_thread([&writer] { writer.run(); });
    ASSERT_TRUE(test::wait_until([&] { return writer.retention_stats().pruned_rows > 0; }));
    ASSERT_TRUE(test::wait_until([&] { return !writer.retention_stats().is_over_cap; }));
    writer.request_stop();
    writer_thread.join();
    Db db;
    ASSERT_TRUE(db.open(config, DbMode::read_only, error)) << error;
    const int64_t rows = db.query_int64("SELECT count(*) FROM usage_logs").value;
    EXPECT_GT(rows, 0) << "the cap pruned every row";
    EXPECT_LT(rows, 30000);
    // Oldest first: what is left is the newest rows.
    EXPECT_EQ(db.query_int64("SELECT max(id) FROM usage_logs").value, 30000);
    EXPECT_EQ(db.query_int64("SELECT min(id) FROM usage_logs").value, 30000 - rows + 1);
    EXPECT_TRUE(check_quota_invariant(db).holds);
}

// A cap the database cannot get under by pruning (1 byte: the other tables alone exceed
// it) prunes down to the newest retention_cap_keep_rows, never to an empty log.
TEST(Retention, ACapBelowTheFixedTablesKeepsTheNewestRows) {
    test::TempDir dir;
    StorageConfig config = test::test_config(dir);
    config.retention_days = 90;
    seed(config, 30000, 1, 1);
    config.db_max_bytes = 1;
    Writer writer;
    std::string error;
    ASSERT_TRUE(writer.open(config, 1, error)) << error;
    std::thread writer_thread([&writer] { writer.run(); });
    ASSERT_TRUE(test::wait_until(
        [&] { return writer.retention_stats().pruned_rows == 30000 - retention_cap_keep_rows; },
        std::chrono::seconds(60)));
    std::this_thread::sleep_for(std::chrono::milliseconds(2 * retention_check_ms));
    EXPECT_TRUE(writer.retention_stats().is_over_cap);
    EXPECT_EQ(writer.retention_stats().pruned_rows, 30000 - retention_cap_keep_rows);
    writer.request_stop();
    writer_thread.join();
    Db db;
    ASSERT_TRUE(db.open(config, DbMode::read_only, error)) << error;
    EXPECT_EQ(db.query_int64("SELECT count(*) FROM usage_logs").value,
              int64_t(retention_cap_keep_rows));
    EXPECT_EQ(db.query_int64("SELECT max(id) FROM usage_logs").value, 30000);
    EXPECT_TRUE(check_quota_invariant(db).holds);
}

}  // namespace
}  // namespace rw
