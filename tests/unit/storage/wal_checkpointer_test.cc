// tests/unit/storage/wal_checkpointer_test.cc — the WAL's checkpoints off the writer's
// commits (storage/wal_checkpointer.h): the thread copies the WAL into the database, the
// writer's own commits checkpoint only at the bound (or without the thread), the WAL never
// holds more than twice the bound plus one commit, and through the Writer every row still lands.
#include "storage/wal_checkpointer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "storage/writer.h"
#include "storage_test_support.h"

namespace rw {
namespace {

// One transaction of `rows` rows of 3,000 bytes each: a 4-KiB page per row.
void insert_rows(Db& db, int rows) {
    ASSERT_TRUE(db.exec("BEGIN IMMEDIATE")) << db.last_error();
    for (int row = 0; row < rows; row++) {
        ASSERT_TRUE(db.exec("INSERT INTO t (v) VALUES (randomblob(3000))")) << db.last_error();
    }
    ASSERT_TRUE(db.exec("COMMIT")) << db.last_error();
}

uint64_t file_bytes(const std::string& path) {
    std::error_code error;
    const uintmax_t bytes = std::filesystem::file_size(path, error);
    return error ? 0 : uint64_t(bytes);
}

struct Fixture {
    test::TempDir dir;
    StorageConfig config = test::test_config(dir);
    Db writer;
    WalCheckpointer checkpointer;

    void open(uint32_t checkpoint_pages, uint32_t pages_max) {
        config.page_bytes = 4096;  // The pages counted below.
        config.wal_checkpoint_bytes = checkpoint_pages * 4096;
        config.wal_bytes_max = pages_max * 4096;
        std::string error;
        ASSERT_TRUE(writer.open(config, DbMode::read_write, error)) << error;
        ASSERT_TRUE(writer.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)"));
        ASSERT_TRUE(checkpointer.open(config, writer, error)) << error;
    }
};

TEST(WalCheckpoint, TheThreadCopiesTheWalIntoTheDatabaseNotTheWritersCommit) {
    Fixture f;
    f.open(16, 100000);
    f.checkpointer.start();
    const uint64_t db_bytes_before = file_bytes(f.config.db_path);
    for (int commit = 0; commit < 8; commit++) {
        insert_rows(f.writer, 8);  // 64 rows, well past 16 pages, far below pages_max.
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (f.checkpointer.stats().background == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    f.checkpointer.stop();
    const WalCheckpointStats stats = f.checkpointer.stats();
    EXPECT_GE(stats.background, 1u);
    EXPECT_EQ(stats.inline_, 0u);  // SQLite's auto-checkpoint would have run in a COMMIT.
    EXPECT_GE(stats.wal_pages_max, 16u);
    // Only a checkpoint writes the database file in WAL mode: the thread's did.
    EXPECT_GE(file_bytes(f.config.db_path), db_bytes_before + 8 * 4096);
    EXPECT_EQ(f.writer.query_int64("SELECT count(*) FROM t").value, 64);
    EXPECT_EQ(f.writer.query_text("PRAGMA integrity_check").value, "ok");
}

TEST(WalCheckpoint, WithoutTheThreadTheWritersCommitCheckpointsAsSqliteWould) {
    Fixture f;
    f.open(16, 100000);  // Never started: before Writer::run() and after it.
    const uint64_t db_bytes_before = file_bytes(f.config.db_path);
    insert_rows(f.writer, 24);
    const WalCheckpointStats stats = f.checkpointer.stats();
    EXPECT_EQ(stats.inline_, 1u);
    EXPECT_EQ(stats.background, 0u);
    EXPECT_GE(file_bytes(f.config.db_path), db_bytes_before + 16 * 4096);
}

TEST(WalCheckpoint, TheWalNeverHoldsMoreThanTwiceTheBoundPlusOneCommit) {
    // Commits one after the other, as fast as they go, while the thread checkpoints: a
    // PASSIVE checkpoint alone never catches up with them, the bound does.
    Fixture f;
    f.open(4, 40);
    f.checkpointer.start();
    for (int commit = 0; commit < 400; commit++) {
        insert_rows(f.writer, 3);
    }
    f.checkpointer.stop();
    const WalCheckpointStats stats = f.checkpointer.stats();
    // A commit of 3 rows writes at most 3 leaf pages, the root, and the b-tree's interior
    // pages it splits: 8 pages is generous.
    EXPECT_LE(stats.wal_pages_max, 2 * 40u + 8u);
    EXPECT_GE(stats.background + stats.inline_, 1u);
    EXPECT_EQ(stats.failed, 0u);
    // The WAL file itself: at most the bound plus a commit's pages (frames of 4 KiB + 24 B).
    EXPECT_LE(file_bytes(f.config.db_path + "-wal"), 32 + (2 * 40 + 8) * (4096 + 24));
    EXPECT_EQ(f.writer.query_int64("SELECT count(*) FROM t").value, 1200);
}

TEST(WalCheckpoint, TheWriterCommitsEveryRowWithTheThreadCheckpointing) {
    test::TempDir dir;
    StorageConfig config = test::test_config(dir);
    config.wal_checkpoint_bytes = 8 * uint64_t(config.page_bytes);
    config.wal_bytes_max = 64 * uint64_t(config.page_bytes);
    Writer writer;
    std::string error;
    ASSERT_TRUE(writer.open(config, 1, error)) << error;
    std::thread writer_thread([&writer] { writer.run(); });
    LogQueue& queue = writer.queue(0);
    constexpr uint64_t rows = 20000;
    for (uint64_t sequence = 0; sequence < rows; sequence++) {
        while (!queue.try_reserve()) {
            writer.notify(0);
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        queue.push(test::make_record(sequence, 1, 10));
        writer.notify(0);
    }
    writer.request_stop();
    writer_thread.join();
    EXPECT_EQ(writer.rows_written(), rows);
    const WriterStats stats = writer.stats();
    EXPECT_GE(stats.wal.background + stats.wal.inline_, 1u);
    EXPECT_EQ(stats.wal.failed, 0u);
    Db db;
    ASSERT_TRUE(db.open(config, DbMode::read_only, error)) << error;
    EXPECT_EQ(db.query_int64("SELECT count(DISTINCT request_id) FROM usage_logs").value,
              int64_t(rows));
    EXPECT_EQ(db.query_text("PRAGMA integrity_check").value, "ok");
}

}  // namespace
}  // namespace rw
