// storage/db.h — the one thin wrapper over a database connection: SQLite (a path in
// RINGWAY_DB; opened with the gateway's PRAGMAs, each read back and verified) or
// PostgreSQL (a postgres:// URL; libpq, storage/db_pg.cc). Prepared statements with RAII
// finalize and checked step/exec helpers; SQL is written once in SQLite's `?N` style and
// rewritten to `$N` for PostgreSQL. Every return code is checked here and turned into a
// bool plus last_error(); nothing throws. A Db is used by exactly one thread at a time
// (connections are opened NOMUTEX): the writer owns its Db, queries own theirs.
// Only db.cc and writer.cc include sqlite3.h; only db_pg.cc and pg_lib.{h,cc} include
// libpq-fe.h (libpq itself is dlopen'd for PostgreSQL only: storage/pg_lib.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "storage/config.h"
#include "storage/result.h"

struct sqlite3;
struct sqlite3_stmt;
struct pg_conn;

namespace rw {

class Db;
struct PgStmt;  // storage/db_pg.cc: a PostgreSQL statement's text, parameters and result.

// True when RINGWAY_DB names a PostgreSQL database (postgres:// or postgresql://).
[[nodiscard]] bool db_is_postgres(std::string_view db);
// RINGWAY_DB as it may be logged: a URL's password (user:PASSWORD@ or password=) masked.
[[nodiscard]] std::string db_display_name(std::string_view db);

// What a failure means for the caller's retry policy (writer) — see db_error_kind().
enum class DbErrorKind : uint8_t {
    none,
    busy,        // SQLITE_BUSY / SQLITE_LOCKED: another connection holds the lock; retry.
    full,        // SQLITE_FULL: disk or max_page_count; retry when space returns.
    io,          // SQLITE_IOERR*: transient or not, the writer keeps the batch and retries.
    constraint,  // SQLITE_CONSTRAINT*: UNIQUE/CHECK/NOT NULL (admin input, never records).
    other,       // Anything else (constraint, corrupt, misuse): logged, batch kept.
};

enum class StepStatus : uint8_t { row, done, error };

// A prepared statement. Finalized by the destructor; movable, not copyable. Binds never
// fail loudly: the first failing bind's rc is remembered and the next step() reports it,
// so call sites stay linear and still no rc goes unchecked.
class Stmt {
public:
    Stmt() = default;
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    Stmt(Stmt&& other) noexcept;
    Stmt& operator=(Stmt&& other) noexcept;
    ~Stmt();

    [[nodiscard]] bool is_prepared() const { return stmt_ != nullptr || pg_ != nullptr; }

    // Parameter indexes are 1-based (SQLite's convention) [sqlite3_bind_*(3)].
    // Text and blobs are bound SQLITE_STATIC: the caller keeps them alive until the
    // statement is reset (step_done() and reset() both do that).
    void bind_int64(int index, int64_t value);
    void bind_null(int index);
    void bind_text(int index, std::string_view text);
    void bind_blob(int index, std::span<const uint8_t> bytes);
    // Text that lives as long as the program (a literal, a static table; never null). On a
    // statement that rebinds every step, the same pointer and length as the value still
    // bound at `index` is not bound again: SQLite holds it already, and a text bind is
    // ~200 instructions (the writer binds a row's usage_source, end_reason and empty ids).
    void bind_static_text(int index, std::string_view text);
    // Binds NULL when is_null, otherwise the value. Convenience for optional columns.
    void bind_int64_or_null(int index, int64_t value, bool is_null);
    void bind_text_or_null(int index, std::string_view text, bool is_null);

    // One step. On error the Db's last_error() says why; the statement is reset.
    [[nodiscard]] StepStatus step();
    // Resets for re-execution and clears bindings. Never fails (the error, if any, was
    // already reported by the step that produced it).
    void reset();
    // For a statement whose caller binds every parameter before every step (the writer's
    // inserts and upserts): reset() then leaves the old values bound instead of clearing
    // them, which cost SQLite a pass over all parameters per execution. A SQLITE_STATIC
    // text left bound is never read again: the next step comes after the rebinds.
    void set_rebinds_every_step();

    // Columns are 0-based. Views are valid until the next step()/reset().
    [[nodiscard]] int64_t column_int64(int index) const;
    [[nodiscard]] bool column_is_null(int index) const;
    [[nodiscard]] std::string_view column_text(int index) const;
    [[nodiscard]] std::span<const uint8_t> column_blob(int index) const;

private:
    friend class Db;
    void finalize();

    sqlite3_stmt* stmt_ = nullptr;
    PgStmt* pg_ = nullptr;  // Set instead of stmt_ on a PostgreSQL connection.
    Db* db_ = nullptr;
    int bind_rc_ = 0;            // First failing bind rc (SQLITE_OK == 0 otherwise).
    bool is_rebinding_ = false;  // set_rebinds_every_step(): reset() keeps the bindings.
    void note_bound(int index);
    // While is_rebinding_: per parameter (1-based), the static text bound there by
    // bind_static_text ({}: something else).
    std::vector<std::string_view> static_bound_;
};

enum class DbMode : uint8_t {
    read_write,  // The writer: creates the file, sets WAL and every PRAGMA.
    read_only,   // Admin queries / snapshot loads: SQLITE_OPEN_READONLY + query_only.
};

// A connection. open() applies and verifies the PRAGMAs; close() (or the destructor)
// finalizes nothing itself — statements must be destroyed first (asserted).
class Db {
public:
    Db() = default;
    Db(const Db&) = delete;
    Db& operator=(const Db&) = delete;
    ~Db();

    // Opens config.db_path and applies the gateway PRAGMAs, reading each back. On any
    // failure the connection is closed and `error` holds one line suitable for the
    // startup log, e.g. "journal_mode=WAL not possible for ./var/ringway.db (got 'delete')".
    [[nodiscard]] bool open(const StorageConfig& config, DbMode mode, std::string& error);
    void close();
    [[nodiscard]] bool is_open() const { return db_ != nullptr || pg_ != nullptr; }
    // PostgreSQL rather than SQLite: for the few statements whose SQL differs.
    [[nodiscard]] bool is_postgres() const { return pg_ != nullptr; }
    // The libpq connection; null on SQLite.
    [[nodiscard]] pg_conn* pg_connection() const { return pg_; }
    // The SQLite connection, for what Db does not wrap (usage_rows.cc registers a virtual
    // table on it); null on PostgreSQL.
    [[nodiscard]] sqlite3* sqlite_connection() const { return db_; }
    // PostgreSQL: LISTEN on `channel` (again after a reconnect: call it then too).
    [[nodiscard]] bool pg_listen(const char* channel);
    // PostgreSQL: waits at most timeout_ms for notifications; how many arrived (0: none),
    // -1 when the connection broke (reconnect with pg_reconnect, then LISTEN again).
    [[nodiscard]] int pg_wait_notifications(int timeout_ms);
    [[nodiscard]] bool pg_reconnect() { return pg_ensure_connected(); }

    // Prepares one statement (persistent: it is reused for the life of the Db).
    [[nodiscard]] bool prepare(std::string_view sql, Stmt& out);
    // Runs SQL text without results (may hold several statements). Control plane only.
    [[nodiscard]] bool exec(const char* sql);
    // Steps a statement that returns no rows to SQLITE_DONE, then resets it. A row
    // counts as an error (the caller used the wrong helper).
    [[nodiscard]] bool step_done(Stmt& stmt);
    // Steps a prepared statement to its end, calling visit(stmt) per row (visit returns
    // bool: false stops the walk, with the visitor's `error` standing), then resets it.
    // False with this connection's error when a step fails.
    template <class Visit>
    [[nodiscard]] bool rows(Stmt& stmt, Visit visit, std::string& error) {
        for (;;) {
            const StepStatus status = stmt.step();
            if (status == StepStatus::error) {
                error = last_error_;
                return false;
            }
            if (status == StepStatus::done) {
                stmt.reset();
                return true;
            }
            if (!visit(stmt)) {
                return false;
            }
        }
    }
    // The same for a query without parameters, prepared here.
    template <class Visit>
    [[nodiscard]] bool rows(std::string_view sql, Visit visit, std::string& error) {
        Stmt stmt;
        if (!prepare(sql, stmt)) {
            error = last_error_;
            return false;
        }
        return rows(stmt, visit, error);
    }
    // One integer / text value from a single-row query (PRAGMA read-back, counts).
    [[nodiscard]] Result<int64_t> query_int64(const char* sql);
    [[nodiscard]] Result<std::string> query_text(const char* sql);

    // The last failure on this connection: message, primary rc and its class.
    [[nodiscard]] const std::string& last_error() const { return last_error_; }
    [[nodiscard]] int last_rc() const { return last_rc_; }
    [[nodiscard]] DbErrorKind last_error_kind() const;
    // True when a transaction is open. SQLite may roll back by itself on FULL, IOERR,
    // BUSY or NOMEM; this is the only way to know [sqlite3_get_autocommit(3)].
    [[nodiscard]] bool in_transaction() const;
    [[nodiscard]] int64_t changes() const;  // Rows changed by the last statement.
    // An online, consistent copy of this database into a new file at target_path (the
    // SQLite backup API in one step: one read transaction, so writers keep committing in
    // WAL mode and the copy is the database as of its start). Refuses an existing target.
    [[nodiscard]] bool backup_to(const std::string& target_path, std::string& error);
    // Replaces busy_timeout with a handler that waits for another connection's lock at
    // most timeout_ms, and gives up as soon as the monotonic clock (ms) reaches
    // *deadline_ms when that is non-zero: a waiting BEGIN then fails BUSY at once. The
    // atomic must outlive the connection; any thread may store it.
    void set_busy_deadline(uint32_t timeout_ms, const std::atomic<int64_t>* deadline_ms);

    // Records a failure for rc with context (used by Stmt). Returns false for chaining.
    bool fail(int rc, std::string_view context);
    void clear_error();

    // db_pg.cc: the PostgreSQL side of open/prepare/exec and the failure record.
    // result: the failed PGresult when there is one (its SQLSTATE says the kind).
    bool pg_fail(std::string_view context, const void* result = nullptr);

private:
    [[nodiscard]] bool open_apply_pragmas(const StorageConfig& config, DbMode mode,
                                          std::string& error);
    [[nodiscard]] bool pg_open(const StorageConfig& config, DbMode mode, std::string& error);
    void pg_close();
    [[nodiscard]] bool pg_prepare(std::string_view sql, Stmt& out);
    [[nodiscard]] bool pg_exec(const char* sql);
    // Reconnects a connection libpq reports broken (server restart, network); its
    // server-side prepared statements are gone with it (pg_generation_).
    [[nodiscard]] bool pg_ensure_connected();
    [[nodiscard]] bool pg_session_setup();

    sqlite3* db_ = nullptr;
    pg_conn* pg_ = nullptr;
    uint64_t pg_generation_ = 0;         // Bumped by every reconnect.
    uint64_t pg_statement_counter_ = 0;  // Names server-side prepared statements.
    int64_t pg_changes_ = 0;
    bool pg_is_read_only_ = false;
    DbErrorKind pg_error_kind_ = DbErrorKind::none;
    std::string path_;
    std::string last_error_;
    int last_rc_ = 0;
    uint32_t live_stmt_count_ = 0;  // Stmts prepared on this Db and not yet finalized.
    struct BusyWait {
        uint32_t timeout_ms = 0;
        const std::atomic<int64_t>* deadline_ms = nullptr;
        int64_t started_ms = 0;  // Of the current wait (the handler's count 0).
    };
    BusyWait busy_wait_;

    friend class Stmt;
    friend struct PgStmt;
    friend StepStatus pg_stmt_step(PgStmt& stmt);
};

// Classifies a primary or extended SQLite result code.
[[nodiscard]] DbErrorKind db_error_kind(int rc);

}  // namespace rw
