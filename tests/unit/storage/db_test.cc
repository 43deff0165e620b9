// tests/unit/storage/db_test.cc — Db open: every PRAGMA is read back with the configured
// value; read-only connections refuse writes and non-WAL files; Stmt helpers.
#include "storage/db.h"

#include <gtest/gtest.h>

#include "storage/migrations.h"
#include "storage_test_support.h"

namespace rw {
namespace {

TEST(Db, PragmasReadBack) {
    test::TempDir dir;
    StorageConfig config = test::test_config(dir);
    config.synchronous_full = true;
    Db db;
    std::string error;
    ASSERT_TRUE(db.open(config, DbMode::read_write, error)) << error;
    EXPECT_EQ(db.query_text("PRAGMA journal_mode").value, "wal");
    EXPECT_EQ(db.query_int64("PRAGMA synchronous").value, 2);  // FULL
    EXPECT_EQ(db.query_int64("PRAGMA busy_timeout").value, 50);
    EXPECT_EQ(db.query_int64("PRAGMA cache_size").value, -2048);
    EXPECT_EQ(db.query_int64("PRAGMA mmap_size").value, 8 * 1024 * 1024);
    EXPECT_EQ(db.query_int64("PRAGMA temp_store").value, 2);  // MEMORY
    EXPECT_EQ(db.query_int64("PRAGMA foreign_keys").value, 1);
    EXPECT_EQ(db.query_int64("PRAGMA journal_size_limit").value, config.journal_size_limit_bytes);
}

TEST(Db, SynchronousNormalByDefault) {
    test::TempDir dir;
    Db db;
    std::string error;
    ASSERT_TRUE(db.open(test::test_config(dir), DbMode::read_write, error)) << error;
    EXPECT_EQ(db.query_int64("PRAGMA synchronous").value, 1);  // NORMAL
}

TEST(Db, OpenFailsWithClearMessage) {
    test::TempDir dir;
    StorageConfig config = test::test_config(dir);
    config.db_path = dir.path() + "/missing-dir/ringway.db";
    Db db;
    std::string error;
    EXPECT_FALSE(db.open(config, DbMode::read_write, error));
    EXPECT_NE(error.find("cannot open database"), std::string::npos) << error;
    EXPECT_NE(error.find("missing-dir"), std::string::npos) << error;
    EXPECT_FALSE(db.is_open());
}

TEST(Db, ReadOnlyRefusesNonWalFileAndWrites) {
    test::TempDir dir;
    StorageConfig config = test::test_config(dir);
    {
        // A rollback-journal database made by someone else.
        Db db;
        std::string error;
        ASSERT_TRUE(db.open(config, DbMode::read_write, error)) << error;
        ASSERT_TRUE(db.exec("PRAGMA journal_mode=DELETE; CREATE TABLE t(x)"));
    }
    Db reader;
    std::string error;
    EXPECT_FALSE(reader.open(config, DbMode::read_only, error));
    EXPECT_NE(error.find("not in WAL mode"), std::string::npos) << error;

    Db writer;
    ASSERT_TRUE(writer.open(config, DbMode::read_write, error)) << error;  // Back to WAL.
    ASSERT_TRUE(reader.open(config, DbMode::read_only, error)) << error;
    EXPECT_FALSE(reader.exec("INSERT INTO t VALUES (1)"));
    EXPECT_EQ(reader.last_error_kind(), DbErrorKind::other);
}

TEST(Db, StmtBindStepColumns) {
    test::TempDir dir;
    Db db;
    std::string error;
    ASSERT_TRUE(db.open(test::test_config(dir), DbMode::read_write, error)) << error;
    ASSERT_TRUE(db.exec("CREATE TABLE t (a INTEGER, b TEXT, c BLOB, d INTEGER)"));
    {
        Stmt insert;
        ASSERT_TRUE(db.prepare("INSERT INTO t VALUES (?1, ?2, ?3, ?4)", insert));
        const uint8_t blob[3] = {1, 2, 3};
        for (int64_t i = 0; i < 3; i++) {
            insert.bind_int64(1, i);
            insert.bind_text(2, "text");
            insert.bind_blob(3, blob);
            insert.bind_int64_or_null(4, 9, i == 1);
            ASSERT_TRUE(db.step_done(insert)) << db.last_error();
        }
        // A bind to an index that does not exist is reported by the next step.
        insert.bind_int64(9, 1);
        EXPECT_FALSE(db.step_done(insert));
        EXPECT_NE(db.last_error().find("bind"), std::string::npos);
    }
    Stmt select;
    ASSERT_TRUE(db.prepare("SELECT a, b, c, d FROM t ORDER BY a", select));
    int64_t rows = 0;
    for (StepStatus s = select.step(); s == StepStatus::row; s = select.step()) {
        EXPECT_EQ(select.column_int64(0), rows);
        EXPECT_EQ(select.column_text(1), "text");
        EXPECT_EQ(select.column_blob(2).size(), 3u);
        EXPECT_EQ(select.column_is_null(3), rows == 1);
        rows++;
    }
    EXPECT_EQ(rows, 3);
    select.reset();
    EXPECT_FALSE(db.exec("SELECT * FROM no_such_table"));
    EXPECT_NE(db.last_error().find("no such table"), std::string::npos);
}

// A statement that rebinds every step keeps its bindings across reset, and a static text
// bound again in the same place is skipped: each row must still hold exactly what its step
// bound, whichever kind of bind (static, other text, integer, NULL) came before it there.
TEST(Db, StmtRebindingKeepsBindingsAndSkipsOnlyTheSameStaticText) {
    test::TempDir dir;
    Db db;
    std::string error;
    ASSERT_TRUE(db.open(test::test_config(dir), DbMode::read_write, error)) << error;
    ASSERT_TRUE(db.exec("CREATE TABLE t (n INTEGER, v ANY, w TEXT)"));
    static constexpr char alpha[] = "alpha";
    static constexpr char beta[] = "beta";
    std::string changing = "own-0";
    {
        Stmt insert;
        ASSERT_TRUE(db.prepare("INSERT INTO t VALUES (?1, ?2, ?3)", insert));
        insert.set_rebinds_every_step();
        // Per step: how ?2 is bound; ?3 is always the static alpha (skipped from step 1 on).
        for (int64_t n = 0; n < 8; n++) {
            insert.bind_int64(1, n);
            switch (n) {
                case 0:
                case 1: insert.bind_static_text(2, alpha); break;  // 1: skipped.
                case 2: insert.bind_static_text(2, std::string_view(alpha, 3)); break;
                case 3: insert.bind_static_text(2, beta); break;
                case 4:
                    changing = "own-4";  // Not static: bound as it is now.
                    insert.bind_text(2, changing);
                    break;
                case 5: insert.bind_static_text(2, beta); break;  // After a plain text.
                case 6: insert.bind_int64(2, 66); break;
                case 7: insert.bind_static_text(2, beta); break;  // After an integer.
            }
            insert.bind_static_text(3, alpha);
            ASSERT_TRUE(db.step_done(insert)) << db.last_error();
        }
    }
    Stmt select;
    ASSERT_TRUE(db.prepare("SELECT n, quote(v), w FROM t ORDER BY n", select));
    const char* expected[] = {"'alpha'", "'alpha'", "'alp'", "'beta'",
                              "'own-4'", "'beta'",  "66",    "'beta'"};
    int64_t rows = 0;
    for (StepStatus s = select.step(); s == StepStatus::row; s = select.step()) {
        EXPECT_EQ(select.column_text(1), expected[rows]) << "row " << rows;
        EXPECT_EQ(select.column_text(2), "alpha") << "row " << rows;
        rows++;
    }
    EXPECT_EQ(rows, 8);
    select.reset();
}

TEST(Db, ANewDatabaseGetsTheConfiguredPageSizeAnExistingOneKeepsItsOwn) {
    test::TempDir dir;
    StorageConfig config = test::test_config(dir);
    EXPECT_EQ(config.page_bytes, 16384);  // The default (storage/config.h).
    std::string error;
    {
        Db db;
        ASSERT_TRUE(db.open(config, DbMode::read_write, error)) << error;
        EXPECT_EQ(db.query_int64("PRAGMA page_size").value, 16384);
        EXPECT_EQ(db.query_int64("PRAGMA auto_vacuum").value, 2);  // Still INCREMENTAL.
        ASSERT_TRUE(migrate(db, error)) << error;
    }
    // A database created with other pages (an older ringway's 4 KiB) keeps them: in WAL mode
    // SQLite cannot change the page size.
    StorageConfig older = config;
    older.db_path = dir.path() + "/older.db";
    older.page_bytes = 4096;
    {
        Db db;
        ASSERT_TRUE(db.open(older, DbMode::read_write, error)) << error;
        ASSERT_TRUE(migrate(db, error)) << error;
    }
    config.db_path = older.db_path;
    Db db;
    ASSERT_TRUE(db.open(config, DbMode::read_write, error)) << error;
    EXPECT_EQ(db.query_int64("PRAGMA page_size").value, 4096);
    EXPECT_EQ(db.query_text("PRAGMA integrity_check").value, "ok");
    config.page_bytes = 1000;
    EXPECT_NE(storage_config_check(config), "");
}

}  // namespace
}  // namespace rw
