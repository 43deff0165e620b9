// tests/unit/storage/migrations_test.cc — fresh DB gets the schema, re-open is a no-op,
// a newer schema is refused, and the quota invariant check finds offending keys.
#include "storage/migrations.h"

#include <gtest/gtest.h>

#include "storage_test_support.h"

namespace rw {
namespace {

int64_t table_count(Db& db) {
    return db
        .query_int64(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN"
            " ('keys', 'channels', 'usage_logs', 'daily_usage')")
        .value;
}

TEST(Migrations, FreshDatabaseGetsSchema) {
    test::TempDir dir;
    Db db;
    std::string error;
    ASSERT_TRUE(db.open(test::test_config(dir), DbMode::read_write, error)) << error;
    EXPECT_EQ(schema_version(db).value, 0);
    ASSERT_TRUE(migrate(db, error)) << error;
    EXPECT_EQ(schema_version(db).value, int64_t(schema_version_latest()));
    EXPECT_EQ(table_count(db), 4);
    EXPECT_EQ(db.query_int64("PRAGMA auto_vacuum").value, 2);  // Incremental from the start.
    EXPECT_EQ(db.query_int64("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND"
                             " name IN ('usage_logs_client_request_id', 'daily_usage_day')")
                  .value,
              2);
    // Migration 13 dropped it: a fifth of the writer's cost per row, for a rare admin lookup.
    EXPECT_EQ(db.query_int64("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND"
                             " name = 'usage_logs_request_id'")
                  .value,
              0);
    // Migration 7 dropped it: no query seeks it and it dominated the writer's cost per row.
    EXPECT_EQ(db.query_int64("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND"
                             " name = 'usage_logs_key_ts'")
                  .value,
              0);
    EXPECT_FALSE(db.in_transaction());
}

TEST(Migrations, ReopenIsIdempotent) {
    test::TempDir dir;
    std::string error;
    {
        Db db;
        ASSERT_TRUE(db.open(test::test_config(dir), DbMode::read_write, error)) << error;
        ASSERT_TRUE(migrate(db, error)) << error;
        ASSERT_TRUE(
            db.exec("INSERT INTO keys (name, key_hash, key_prefix, created_at)"
                    " VALUES ('k', zeroblob(32), 'sk-rw-abcd', 1)"));
    }
    Db db;
    ASSERT_TRUE(db.open(test::test_config(dir), DbMode::read_write, error)) << error;
    ASSERT_TRUE(migrate(db, error)) << error;
    ASSERT_TRUE(migrate(db, error)) << error;
    EXPECT_EQ(schema_version(db).value, int64_t(schema_version_latest()));
    // Data kept (the system key, migration 11, aside).
    EXPECT_EQ(db.query_int64("SELECT count(*) FROM keys WHERE system = 0").value, 1);
}

TEST(Migrations, NewerDatabaseRefused) {
    test::TempDir dir;
    std::string error;
    Db db;
    ASSERT_TRUE(db.open(test::test_config(dir), DbMode::read_write, error)) << error;
    ASSERT_TRUE(migrate(db, error)) << error;
    const uint32_t newer = schema_version_latest() + 1;
    ASSERT_TRUE(db.exec(("PRAGMA user_version=" + std::to_string(newer)).c_str()));
    EXPECT_FALSE(migrate(db, error));
    EXPECT_NE(error.find("newer than this ringway"), std::string::npos) << error;
    EXPECT_EQ(schema_version(db).value, int64_t(newer));  // Untouched.
}

TEST(Migrations, FailedMigrationLeavesNothing) {
    test::TempDir dir;
    std::string error;
    Db db;
    ASSERT_TRUE(db.open(test::test_config(dir), DbMode::read_write, error)) << error;
    // A table in the way makes migration 1 fail half-way: nothing may remain.
    ASSERT_TRUE(db.exec("CREATE TABLE usage_logs (x)"));
    EXPECT_FALSE(migrate(db, error));
    EXPECT_NE(error.find("schema migration 1 failed"), std::string::npos) << error;
    EXPECT_EQ(schema_version(db).value, 0);
    EXPECT_EQ(db.query_int64("SELECT count(*) FROM sqlite_schema WHERE name = 'keys'").value, 0);
    EXPECT_FALSE(db.in_transaction());
}

// A version-1 database (daily_usage keyed by key and day, auto_vacuum off) gets daily_usage
// rebuilt from usage_logs per key x day x model x channel, and auto_vacuum=INCREMENTAL.
TEST(Migrations, VersionOneGetsPerModelChannelAggregatesAndIncrementalVacuum) {
    test::TempDir dir;
    std::string error;
    Db db;
    ASSERT_TRUE(db.open(test::test_config(dir), DbMode::read_write, error)) << error;
    // Databases of version 1 were created without auto_vacuum.
    ASSERT_TRUE(db.exec("PRAGMA auto_vacuum=NONE; VACUUM;"));
    ASSERT_TRUE(db.exec(
        // Only what the later migrations touch: keys and channels gain columns (and the
        // system key, migration 11, is a row of keys).
        "CREATE TABLE keys (id INTEGER PRIMARY KEY, name TEXT, key_hash BLOB, key_prefix TEXT,"
        " status TEXT, created_at INTEGER);"
        "CREATE TABLE channels (id INTEGER PRIMARY KEY);"
        "CREATE TABLE usage_logs (id INTEGER PRIMARY KEY, ts_ms INTEGER, key_id INTEGER,"
        " channel_id INTEGER, model_requested TEXT, prompt_tokens INTEGER,"
        " completion_tokens INTEGER, total_tokens INTEGER, request_id TEXT);"  // Indexed by 5.
        "CREATE TABLE daily_usage (key_id INTEGER NOT NULL, day TEXT NOT NULL, requests INTEGER,"
        " prompt_tokens INTEGER, completion_tokens INTEGER, total_tokens INTEGER,"
        " PRIMARY KEY (key_id, day)) WITHOUT ROWID;"
        "CREATE INDEX daily_usage_day ON daily_usage (day);"
        "INSERT INTO usage_logs (ts_ms, key_id, channel_id, model_requested, prompt_tokens,"
        " completion_tokens, total_tokens) VALUES (1700000000000, 1, 7, 'a', 1, 2, 3),"
        " (1700000001000, 1, 7, 'a', 1, 2, 3), (1700000002000, 1, 8, 'a', 1, 2, 3),"
        " (1700000003000, 1, 7, 'b', 1, 2, 3), (1700100000000, 2, 7, 'a', 5, 5, 10);"
        "PRAGMA user_version=1;"));
    ASSERT_EQ(db.query_int64("PRAGMA auto_vacuum").value, 0);
    ASSERT_TRUE(migrate(db, error)) << error;
    EXPECT_EQ(db.query_int64("PRAGMA auto_vacuum").value, 2);
    EXPECT_EQ(db.query_int64("SELECT count(*) FROM daily_usage").value, 4);
    EXPECT_EQ(db.query_int64("SELECT requests FROM daily_usage WHERE key_id = 1 AND"
                             " day = '2023-11-14' AND model = 'a' AND channel_id = 7")
                  .value,
              2);
    EXPECT_EQ(db.query_int64("SELECT sum(total_tokens) FROM daily_usage WHERE key_id = 1").value,
              12);
    EXPECT_EQ(db.query_text("SELECT day FROM daily_usage WHERE key_id = 2").value, "2023-11-16");
    // Rows from before prices were unpriced: every request counts as such, at cost 0.
    EXPECT_EQ(db.query_int64("SELECT sum(unpriced_requests) FROM daily_usage").value, 5);
    EXPECT_EQ(db.query_int64("SELECT sum(cost_nano) FROM daily_usage").value, 0);
}

TEST(Migrations, QuotaInvariantReportsOffenders) {
    test::TempDir dir;
    std::string error;
    Db db;
    ASSERT_TRUE(db.open(test::test_config(dir), DbMode::read_write, error)) << error;
    ASSERT_TRUE(migrate(db, error)) << error;
    ASSERT_TRUE(
        db.exec("INSERT INTO keys (id, name, key_hash, key_prefix, quota_used, created_at) VALUES"
                " (1, 'a', randomblob(32), 'p', 30, 1), (2, 'b', randomblob(32), 'p', 5, 1),"
                " (3, 'c', randomblob(32), 'p', 0, 1), (4, 'd', randomblob(32), 'p', 0, 1);"
                // The invariant is stated on daily_usage (usage_logs rows are pruned).
                "INSERT INTO daily_usage (key_id, day, model, channel_id, requests, prompt_tokens,"
                " completion_tokens, total_tokens) VALUES"
                " (1, '2026-01-01', 'm', 1, 1, 0, 0, 10), (1, '2026-01-02', 'n', 1, 1, 0, 0, 20),"
                " (2, '2026-01-01', 'm', 1, 1, 0, 0, 4), (4, '2026-01-01', 'm', 2, 1, 0, 0, 1)"));
    QuotaInvariantReport report = check_quota_invariant(db);
    EXPECT_TRUE(report.error.empty()) << report.error;
    EXPECT_FALSE(report.holds);
    EXPECT_EQ(report.offending_key_ids, (std::vector<int64_t>{2, 4}));

    ASSERT_TRUE(
        db.exec("UPDATE keys SET quota_used = 4 WHERE id = 2;"
                "UPDATE keys SET quota_used = 1 WHERE id = 4"));
    report = check_quota_invariant(db);
    EXPECT_TRUE(report.holds);
    EXPECT_TRUE(report.offending_key_ids.empty());
}

TEST(Migrations, SpendInvariantReportsOffenders) {
    // The invariant's money half: keys.spend_nano == SUM(daily_usage.cost_nano) per key,
    // checked together with the token half (either broken names the key).
    test::TempDir dir;
    std::string error;
    Db db;
    ASSERT_TRUE(db.open(test::test_config(dir), DbMode::read_write, error)) << error;
    ASSERT_TRUE(migrate(db, error)) << error;
    ASSERT_TRUE(db.exec(
        "INSERT INTO keys (id, name, key_hash, key_prefix, quota_used, spend_nano, created_at)"
        " VALUES (1, 'a', randomblob(32), 'p', 30, 1500, 1),"
        " (2, 'b', randomblob(32), 'p', 4, 0, 1), (3, 'c', randomblob(32), 'p', 0, 7, 1);"
        // Stated on daily_usage (kept forever; usage_logs rows are pruned).
        "INSERT INTO daily_usage (key_id, day, model, channel_id, requests, prompt_tokens,"
        " completion_tokens, total_tokens, cost_nano) VALUES"
        " (1, '2026-01-01', 'm', 1, 1, 0, 0, 10, 1000), (1, '2026-01-02', 'm', 1, 1, 0, 0, 20, "
        "500),"
        " (2, '2026-01-01', 'm', 1, 1, 0, 0, 4, 9)"));
    QuotaInvariantReport report = check_quota_invariant(db);
    EXPECT_TRUE(report.error.empty()) << report.error;
    EXPECT_FALSE(report.holds);
    // Key 1 agrees on both; key 2's tokens agree but its spend does not; key 3 spent
    // without a row.
    EXPECT_EQ(report.offending_key_ids, (std::vector<int64_t>{2, 3}));
    ASSERT_TRUE(
        db.exec("UPDATE keys SET spend_nano = 9 WHERE id = 2;"
                "UPDATE keys SET spend_nano = 0 WHERE id = 3"));
    report = check_quota_invariant(db);
    EXPECT_TRUE(report.holds);
}

TEST(Migrations, LedgerMigrationAddsTheMoneyColumns) {
    // The price table, the kinds, cost and price of a row, and a key's spend.
    test::TempDir dir;
    std::string error;
    Db db;
    ASSERT_TRUE(db.open(test::test_config(dir), DbMode::read_write, error)) << error;
    ASSERT_TRUE(migrate(db, error)) << error;
    EXPECT_EQ(db.query_int64("SELECT COUNT(*) FROM pragma_table_info('prices')").value, 12);
    for (const char* column : {"cached_input_tokens", "cache_write_tokens", "reasoning_tokens",
                               "cost_nano", "price_id"}) {
        const std::string sql =
            std::string("SELECT COUNT(*) FROM pragma_table_info('usage_logs') WHERE name = '") +
            column + "'";
        EXPECT_EQ(db.query_int64(sql.c_str()).value, 1) << column;
    }
    EXPECT_EQ(db.query_int64("SELECT COUNT(*) FROM pragma_table_info('keys')"
                             " WHERE name = 'spend_nano'")
                  .value,
              1);
}

}  // namespace
}  // namespace rw
