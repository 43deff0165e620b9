// tests/unit/storage/writer_fault_test.cc — the writer under faults, on real files:
// disk full (PRAGMA max_page_count on the writer's own connection) and a second
// connection holding the write lock longer than busy_timeout. In both cases the writer
// keeps the batch, retries, and afterwards every record is present exactly once.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "storage/migrations.h"
#include "storage/spill.h"
#include "storage/writer.h"
#include "storage_test_support.h"

namespace rw {
namespace {

struct PageLimit {
    int64_t max_page_count;  // In: 0 = freeze at the current size. Out: value in effect.
};

// max_page_count is per connection, so it must run on the writer's connection.
bool set_page_limit(Db& db, void* context, std::string& error) {
    PageLimit& limit = *static_cast<PageLimit*>(context);
    int64_t target = limit.max_page_count;
    if (target == 0) {
        const Result<int64_t> pages = db.query_int64("PRAGMA page_count");
        if (!pages.ok()) {
            error = pages.error;
            return false;
        }
        target = pages.value;
    }
    const std::string sql = "PRAGMA max_page_count=" + std::to_string(target);
    const Result<int64_t> now = db.query_int64(sql.c_str());
    if (!now.ok()) {
        error = now.error;
        return false;
    }
    limit.max_page_count = now.value;
    return true;
}

void push_records(Writer& writer, uint64_t first, uint64_t count) {
    for (uint64_t i = first; i < first + count; i++) {
        ASSERT_TRUE(writer.queue(0).try_reserve());
        writer.queue(0).push(test::make_record(i, 0, 1));
    }
    writer.notify(0);
}

void expect_exactly_once(const StorageConfig& config, int64_t rows) {
    Db db;
    std::string error;
    ASSERT_TRUE(db.open(config, DbMode::read_only, error)) << error;
    EXPECT_EQ(db.query_text("PRAGMA integrity_check").value, "ok");
    EXPECT_EQ(db.query_int64("SELECT count(*) FROM usage_logs").value, rows);
    EXPECT_EQ(db.query_int64("SELECT count(DISTINCT request_id) FROM usage_logs").value, rows);
    EXPECT_EQ(db.query_int64("SELECT sum(requests) FROM daily_usage").value, rows);
    EXPECT_TRUE(check_quota_invariant(db).holds);
}

TEST(WriterFault, DiskFullKeepsRowsUntilSpaceReturns) {
    test::TempDir dir;
    StorageConfig config = test::test_config(dir);
    config.queue_slots = 8192;
    Writer writer;
    std::string error;
    ASSERT_TRUE(writer.open(config, 1, error)) << error;
    std::thread writer_thread([&writer] { writer.run(); });

    push_records(writer, 0, 100);
    ASSERT_TRUE(test::wait_until([&] { return writer.rows_written() == 100; }));

    PageLimit freeze{0};
    ASSERT_TRUE(writer.execute(set_page_limit, &freeze, error, false)) << error;
    // Thousands of rows need many new pages: the database cannot grow, commits fail FULL.
    push_records(writer, 100, 4000);
    ASSERT_TRUE(test::wait_until([&] { return writer.is_stalled(); }));
    const WriterStats stalled = writer.stats();
    EXPECT_GT(stalled.commit_errors, 0u);
    EXPECT_LT(stalled.rows_written, 4100u);
    // While stalled, the failing batch is kept and retried, not dropped.
    ASSERT_TRUE(
        test::wait_until([&] { return writer.stats().commit_errors > stalled.commit_errors; }));
    EXPECT_LT(writer.rows_written(), 4100u);

    PageLimit space{1 << 30};
    ASSERT_TRUE(writer.execute(set_page_limit, &space, error, false)) << error;
    EXPECT_EQ(space.max_page_count, 1 << 30);
    ASSERT_TRUE(test::wait_until([&] { return writer.rows_written() == 4100; }));
    EXPECT_FALSE(writer.is_stalled());
    writer.request_stop();
    writer_thread.join();
    expect_exactly_once(config, 4100);
}

TEST(WriterFault, ForeignWriteLockLongerThanBusyTimeout) {
    test::TempDir dir;
    const StorageConfig config = test::test_config(dir);  // busy_timeout 50 ms.
    Writer writer;
    std::string error;
    ASSERT_TRUE(writer.open(config, 1, error)) << error;
    std::thread writer_thread([&writer] { writer.run(); });

    // Another connection (as another process would) takes the write lock.
    Db other;
    ASSERT_TRUE(other.open(config, DbMode::read_write, error)) << error;
    ASSERT_TRUE(other.exec("BEGIN IMMEDIATE"));
    ASSERT_TRUE(
        other.exec("INSERT INTO channels (name, kind, base_url, api_key, created_at)"
                   " VALUES ('c', 'openai', 'https://x', 'k', 1)"));

    push_records(writer, 0, 500);
    // BEGIN IMMEDIATE waits busy_timeout, fails BUSY, and the writer backs off and retries.
    ASSERT_TRUE(test::wait_until([&] { return writer.stats().commit_errors >= 3; }));
    EXPECT_TRUE(writer.is_stalled());
    EXPECT_EQ(writer.rows_written(), 0u);
    ASSERT_TRUE(other.exec("COMMIT"));  // Held for several busy timeouts; now released.

    ASSERT_TRUE(test::wait_until([&] { return writer.rows_written() == 500; }));
    EXPECT_FALSE(writer.is_stalled());
    writer.request_stop();
    writer_thread.join();
    expect_exactly_once(config, 500);
    EXPECT_EQ(other.query_int64("SELECT count(*) FROM channels").value, 1);
}

TEST(WriterFault, StopWhileLockedStillCommitsAll) {
    test::TempDir dir;
    const StorageConfig config = test::test_config(dir);
    Writer writer;
    std::string error;
    ASSERT_TRUE(writer.open(config, 1, error)) << error;
    Db other;
    ASSERT_TRUE(other.open(config, DbMode::read_write, error)) << error;
    ASSERT_TRUE(other.exec("BEGIN IMMEDIATE"));
    push_records(writer, 0, 300);
    writer.request_stop();
    std::thread writer_thread([&writer] { writer.run(); });
    ASSERT_TRUE(test::wait_until([&] { return writer.stats().commit_errors >= 2; }));
    ASSERT_TRUE(other.exec("ROLLBACK"));
    writer_thread.join();  // run() returns only once all 300 are committed.
    EXPECT_EQ(writer.rows_written(), 300u);
    expect_exactly_once(config, 300);
}

uint64_t monotonic_now_ms() {
    return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now().time_since_epoch())
                        .count());
}

// Admission's question: refuse only once commits have failed for stall_refuse_ms, and
// serve again as soon as one commits.
TEST(WriterFault, RefusesOnlyAfterCommitsFailedForStallMs) {
    test::TempDir dir;
    StorageConfig config = test::test_config(dir);
    config.stall_refuse_ms = 300;
    Writer writer;
    std::string error;
    ASSERT_TRUE(writer.open(config, 1, error)) << error;
    std::thread writer_thread([&writer] { writer.run(); });
    EXPECT_FALSE(writer.is_refusing(monotonic_now_ms()));
    Db other;
    ASSERT_TRUE(other.open(config, DbMode::read_write, error)) << error;
    ASSERT_TRUE(other.exec("BEGIN IMMEDIATE"));
    push_records(writer, 0, 10);
    ASSERT_TRUE(test::wait_until([&] { return writer.is_stalled(); }));
    const uint64_t stalled_at = monotonic_now_ms();
    // The first failed attempt started at most busy_timeout (50 ms) before it failed.
    EXPECT_FALSE(writer.is_refusing(stalled_at + 100));
    EXPECT_TRUE(writer.is_refusing(stalled_at + 300));
    ASSERT_TRUE(test::wait_until([&] { return writer.is_refusing(monotonic_now_ms()); }));
    ASSERT_TRUE(other.exec("ROLLBACK"));
    ASSERT_TRUE(test::wait_until([&] { return writer.rows_written() == 10; }));
    EXPECT_FALSE(writer.is_refusing(monotonic_now_ms() + 10000));
    writer.request_stop();
    writer_thread.join();
}

// Disk full at shutdown: the drain ends at its deadline instead of retrying forever, the
// uncommitted rows go to the spill file, and the next open commits them exactly once.
TEST(WriterFault, DiskFullStopEndsAtDeadlineAndSpillReplaysOnce) {
    test::TempDir dir;
    StorageConfig config = test::test_config(dir);
    config.queue_slots = 8192;
    config.drain_timeout_ms = 300;
    config.retry_backoff_ms_max = 1000;  // Longer than the deadline: the sleep is cut to it.
    std::string error;
    {
        Writer writer;
        ASSERT_TRUE(writer.open(config, 1, error)) << error;
        std::thread writer_thread([&writer] { writer.run(); });
        push_records(writer, 0, 100);
        ASSERT_TRUE(test::wait_until([&] { return writer.rows_written() == 100; }));
        PageLimit freeze{0};
        ASSERT_TRUE(writer.execute(set_page_limit, &freeze, error, false)) << error;
        push_records(writer, 100, 4000);
        ASSERT_TRUE(test::wait_until([&] { return writer.is_stalled(); }));
        const uint64_t errors_before = writer.stats().commit_errors;
        const auto start = std::chrono::steady_clock::now();
        writer.request_stop();
        writer_thread.join();
        const auto took = std::chrono::steady_clock::now() - start;
        EXPECT_LT(took, std::chrono::milliseconds(1500)) << "the drain deadline was not kept";
        EXPECT_GE(took, std::chrono::milliseconds(250));
        // The backoff still sleeps while stopping: a few attempts, not thousands.
        EXPECT_LT(writer.stats().commit_errors - errors_before, 40u);
        EXPECT_EQ(writer.lost_rows(), 0u) << writer.spill_error();
        EXPECT_GT(writer.spilled_rows(), 0u);
        EXPECT_EQ(writer.rows_written() + writer.spilled_rows(), 4100u);
    }
    const std::string spill = spill_path(config.db_path);
    ASSERT_EQ(spill_read(spill).state, SpillState::rows);
    const std::string copy = dir.path() + "/spill.copy";
    std::filesystem::copy_file(spill, copy);
    {
        Writer writer;  // Space is back (max_page_count is per connection).
        ASSERT_TRUE(writer.open(config, 1, error)) << error;
        EXPECT_GT(writer.replayed_rows(), 0u);
        EXPECT_EQ(spill_read(spill).state, SpillState::empty);  // The new reserve.
    }
    expect_exactly_once(config, 4100);
    // A replay that committed but died before the file was reset is not committed again.
    std::filesystem::copy_file(copy, spill, std::filesystem::copy_options::overwrite_existing);
    {
        Writer writer;
        ASSERT_TRUE(writer.open(config, 1, error)) << error;
        EXPECT_EQ(writer.replayed_rows(), 0u);
    }
    expect_exactly_once(config, 4100);
}

TEST(WriterFault, DamagedSpillFileStopsStartup) {
    test::TempDir dir;
    const StorageConfig config = test::test_config(dir);
    {
        std::FILE* file = std::fopen(spill_path(config.db_path).c_str(), "wb");
        ASSERT_NE(file, nullptr);
        const char junk[64] = "RWSPILL";  // The magic, then a header that does not add up.
        ASSERT_EQ(std::fwrite(junk, 1, sizeof(junk), file), sizeof(junk));
        std::fclose(file);
    }
    Writer writer;
    std::string error;
    EXPECT_FALSE(writer.open(config, 1, error));
    EXPECT_NE(error.find("spill file"), std::string::npos) << error;
}

}  // namespace
}  // namespace rw
