// storage/db.cc — sqlite3 connection wrapper: open + verified PRAGMAs, Stmt, checked
// helpers. Every rc from SQLite is checked here; failures become last_error() text.
// One thread per Db at a time (SQLITE_OPEN_NOMUTEX); see db.h for the contracts. A
// PostgreSQL connection branches to storage/db_pg.cc at the top of each call.
#include "storage/db.h"

#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <mutex>
#include <utility>

#include "core/assert.h"
#include "storage/db_pg.h"

namespace rw {

DbErrorKind db_error_kind(int rc) {
    switch (rc & 0xff) {  // Extended codes carry the primary code in the low byte.
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE: return DbErrorKind::none;
        case SQLITE_BUSY:
        case SQLITE_LOCKED: return DbErrorKind::busy;
        case SQLITE_FULL: return DbErrorKind::full;
        case SQLITE_IOERR: return DbErrorKind::io;
        case SQLITE_CONSTRAINT: return DbErrorKind::constraint;
        default: return DbErrorKind::other;
    }
}

// ---- Stmt -------------------------------------------------------------------------------

Stmt::Stmt(Stmt&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)),
      pg_(std::exchange(other.pg_, nullptr)),
      db_(std::exchange(other.db_, nullptr)),
      bind_rc_(std::exchange(other.bind_rc_, 0)),
      is_rebinding_(std::exchange(other.is_rebinding_, false)),
      static_bound_(std::move(other.static_bound_)) {}

Stmt& Stmt::operator=(Stmt&& other) noexcept {
    if (this != &other) {
        finalize();
        stmt_ = std::exchange(other.stmt_, nullptr);
        pg_ = std::exchange(other.pg_, nullptr);
        db_ = std::exchange(other.db_, nullptr);
        bind_rc_ = std::exchange(other.bind_rc_, 0);
        is_rebinding_ = std::exchange(other.is_rebinding_, false);
        static_bound_ = std::move(other.static_bound_);
    }
    return *this;
}

Stmt::~Stmt() {
    finalize();
}

void Stmt::finalize() {
    if (pg_ != nullptr) {
        RW_ASSERT(db_ != nullptr && db_->live_stmt_count_ > 0);
        pg_stmt_free(std::exchange(pg_, nullptr));
        db_->live_stmt_count_ -= 1;
        db_ = nullptr;
        return;
    }
    if (stmt_ == nullptr) {
        return;
    }
    RW_ASSERT(db_ != nullptr);
    RW_ASSERT(db_->live_stmt_count_ > 0);
    // sqlite3_finalize returns the error of the most recent step, already reported
    // then; finalizing itself cannot fail [sqlite3_finalize(3)].
    (void)sqlite3_finalize(stmt_);
    db_->live_stmt_count_ -= 1;
    stmt_ = nullptr;
    db_ = nullptr;
}

namespace {
// Remembers the first failing bind so step() can report it.
void stmt_note_bind(int rc, int& bind_rc) {
    if (rc != SQLITE_OK && bind_rc == SQLITE_OK) {
        bind_rc = rc;
    }
}
}  // namespace

void Stmt::set_rebinds_every_step() {
    if (pg_ != nullptr) {
        return;  // PostgreSQL statements send their parameters whole at every step.
    }
    RW_ASSERT(stmt_ != nullptr);
    is_rebinding_ = true;
    static_bound_.assign(size_t(sqlite3_bind_parameter_count(stmt_)) + 1, std::string_view());
}

// Any bind but a skipped static one: the parameter no longer holds a known static text.
void Stmt::note_bound(int index) {
    if (is_rebinding_ && size_t(index) < static_bound_.size()) {
        static_bound_[size_t(index)] = std::string_view();
    }
}

void Stmt::bind_int64(int index, int64_t value) {
    if (pg_ != nullptr) {
        return pg_stmt_bind_int64(*pg_, index, value);
    }
    RW_ASSERT(stmt_ != nullptr);
    note_bound(index);
    stmt_note_bind(sqlite3_bind_int64(stmt_, index, value), bind_rc_);
}

void Stmt::bind_null(int index) {
    if (pg_ != nullptr) {
        return pg_stmt_bind_null(*pg_, index);
    }
    RW_ASSERT(stmt_ != nullptr);
    note_bound(index);
    stmt_note_bind(sqlite3_bind_null(stmt_, index), bind_rc_);
}

void Stmt::bind_text(int index, std::string_view text) {
    if (pg_ != nullptr) {
        return pg_stmt_bind_text(*pg_, index, text);
    }
    RW_ASSERT(stmt_ != nullptr);
    note_bound(index);
    // SQLITE_STATIC: no copy; the caller's bytes live until reset (see db.h).
    stmt_note_bind(
        sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8),
        bind_rc_);
}

void Stmt::bind_static_text(int index, std::string_view text) {
    RW_ASSERT(text.data() != nullptr);
    if (pg_ != nullptr || !is_rebinding_ || size_t(index) >= static_bound_.size()) {
        return bind_text(index, text);
    }
    std::string_view& bound = static_bound_[size_t(index)];
    if (bound.data() == text.data() && bound.size() == text.size()) {
        return;  // Still bound: nothing but a bind changes a parameter, not even a reset.
    }
    bind_text(index, text);
    if (bind_rc_ == SQLITE_OK) {
        bound = text;
    }
}

void Stmt::bind_blob(int index, std::span<const uint8_t> bytes) {
    if (pg_ != nullptr) {
        return pg_stmt_bind_blob(*pg_, index, bytes);
    }
    RW_ASSERT(stmt_ != nullptr);
    note_bound(index);
    // A zero-length blob with a null pointer would bind NULL; use a non-null pointer.
    static const uint8_t empty_byte = 0;
    const void* data = bytes.empty() ? &empty_byte : bytes.data();
    stmt_note_bind(sqlite3_bind_blob64(stmt_, index, data, bytes.size(), SQLITE_STATIC), bind_rc_);
}

void Stmt::bind_int64_or_null(int index, int64_t value, bool is_null) {
    if (is_null && pg_ != nullptr) {
        return pg_stmt_bind_null(*pg_, index, 'i');
    }
    if (is_null) {
        bind_null(index);
    } else {
        bind_int64(index, value);
    }
}

void Stmt::bind_text_or_null(int index, std::string_view text, bool is_null) {
    if (is_null && pg_ != nullptr) {
        return pg_stmt_bind_null(*pg_, index, 't');
    }
    if (is_null) {
        bind_null(index);
    } else {
        bind_text(index, text);
    }
}

StepStatus Stmt::step() {
    if (pg_ != nullptr) {
        return pg_stmt_step(*pg_);
    }
    RW_ASSERT(stmt_ != nullptr);
    RW_ASSERT(db_ != nullptr);
    if (bind_rc_ != SQLITE_OK) {
        const int rc = bind_rc_;
        reset();
        db_->fail(rc, "bind");
        return StepStatus::error;
    }
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) {
        return StepStatus::row;
    }
    if (rc == SQLITE_DONE) {
        return StepStatus::done;
    }
    // Since 3.7.x sqlite3_step returns the specific code directly (v2 prepare).
    db_->fail(rc, sqlite3_sql(stmt_));
    reset();
    return StepStatus::error;
}

void Stmt::reset() {
    if (pg_ != nullptr) {
        return pg_stmt_reset(*pg_);
    }
    RW_ASSERT(stmt_ != nullptr);
    // sqlite3_reset repeats the last step's error code, which the step already
    // reported; clearing bindings cannot fail [sqlite3_reset(3)].
    (void)sqlite3_reset(stmt_);
    if (!is_rebinding_) {
        (void)sqlite3_clear_bindings(stmt_);
    }
    bind_rc_ = SQLITE_OK;
}

int64_t Stmt::column_int64(int index) const {
    if (pg_ != nullptr) {
        return pg_stmt_column_int64(*pg_, index);
    }
    RW_ASSERT(stmt_ != nullptr);
    return sqlite3_column_int64(stmt_, index);
}

bool Stmt::column_is_null(int index) const {
    if (pg_ != nullptr) {
        return pg_stmt_column_is_null(*pg_, index);
    }
    RW_ASSERT(stmt_ != nullptr);
    return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

std::string_view Stmt::column_text(int index) const {
    if (pg_ != nullptr) {
        return pg_stmt_column_text(*pg_, index);
    }
    RW_ASSERT(stmt_ != nullptr);
    // Text first, then bytes: the documented order for a stable length [sqlite3_column_blob(3)].
    const unsigned char* text = sqlite3_column_text(stmt_, index);
    const int length_bytes = sqlite3_column_bytes(stmt_, index);
    if (text == nullptr || length_bytes <= 0) {
        return {};
    }
    return {reinterpret_cast<const char*>(text), static_cast<size_t>(length_bytes)};
}

std::span<const uint8_t> Stmt::column_blob(int index) const {
    if (pg_ != nullptr) {
        return pg_stmt_column_blob(*pg_, index);
    }
    RW_ASSERT(stmt_ != nullptr);
    const void* blob = sqlite3_column_blob(stmt_, index);
    const int length_bytes = sqlite3_column_bytes(stmt_, index);
    if (blob == nullptr || length_bytes <= 0) {
        return {};
    }
    return {static_cast<const uint8_t*>(blob), static_cast<size_t>(length_bytes)};
}

// ---- Db ---------------------------------------------------------------------------------

Db::~Db() {
    close();
}

void Db::close() {
    if (pg_ != nullptr) {
        RW_ASSERT(live_stmt_count_ == 0);
        pg_close();
        return;
    }
    if (db_ == nullptr) {
        return;
    }
    // Statements own a pointer to this Db; they must be gone first (declare the Db
    // before the Stmts in any owning class so destruction order does this).
    RW_ASSERT(live_stmt_count_ == 0);
    // With every statement finalized sqlite3_close cannot return SQLITE_BUSY.
    const int rc = sqlite3_close(db_);
    RW_ASSERT(rc == SQLITE_OK);
    db_ = nullptr;
}

bool Db::fail(int rc, std::string_view context) {
    if (pg_ != nullptr) {
        return pg_fail(context);  // A misuse on PostgreSQL (a row where none was due).
    }
    last_rc_ = rc;
    last_error_.assign("sqlite: ");
    last_error_.append(context.substr(0, 120));
    last_error_.append(": ");
    last_error_.append(db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
    last_error_.append(" (rc=");
    last_error_.append(std::to_string(rc));
    last_error_.append(")");
    return false;
}

void Db::clear_error() {
    last_rc_ = SQLITE_OK;
    pg_error_kind_ = DbErrorKind::none;
    last_error_.clear();
}

DbErrorKind Db::last_error_kind() const {
    if (pg_ != nullptr) {
        return pg_error_kind_;
    }
    return db_error_kind(last_rc_);
}

bool Db::in_transaction() const {
    if (pg_ != nullptr) {
        return pg_in_transaction(pg_);
    }
    RW_ASSERT(db_ != nullptr);
    return sqlite3_get_autocommit(db_) == 0;
}

int64_t Db::changes() const {
    if (pg_ != nullptr) {
        return pg_changes_;
    }
    RW_ASSERT(db_ != nullptr);
    return sqlite3_changes64(db_);
}

bool Db::backup_to(const std::string& target_path, std::string& error) {
    if (pg_ != nullptr) {
        error = "ringway backup copies a SQLite database; back PostgreSQL up with pg_dump";
        return false;
    }
    RW_ASSERT(db_ != nullptr);
    sqlite3* target = nullptr;
    // SQLITE_OPEN_EXCLUSIVE is not for sqlite3_open_v2; refuse an existing file ourselves.
    if (::access(target_path.c_str(), F_OK) == 0) {
        error = target_path + " exists; refusing to overwrite it";
        return false;
    }
    int rc = sqlite3_open_v2(target_path.c_str(), &target,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    if (rc == SQLITE_OK) {
        sqlite3_backup* backup = sqlite3_backup_init(target, "main", db_, "main");
        if (backup == nullptr) {
            rc = sqlite3_errcode(target);
        } else {
            // -1: every page in one step, under one read transaction of the source
            // [sqlite3_backup_step(3)]; BUSY/LOCKED only if the target were in use.
            rc = sqlite3_backup_step(backup, -1);
            const int finish_rc = sqlite3_backup_finish(backup);
            rc = rc == SQLITE_DONE ? finish_rc : rc;
        }
    }
    if (rc != SQLITE_OK) {
        error = "backup to " + target_path +
                " failed: " + (target != nullptr ? sqlite3_errmsg(target) : sqlite3_errstr(rc));
    }
    (void)sqlite3_close_v2(target);
    if (rc != SQLITE_OK) {
        (void)::unlink(target_path.c_str());
    }
    return rc == SQLITE_OK;
}

namespace {

int64_t busy_clock_ms() {
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return int64_t(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

}  // namespace

void Db::set_busy_deadline(uint32_t timeout_ms, const std::atomic<int64_t>* deadline_ms) {
    if (pg_ != nullptr) {
        return;  // PostgreSQL waits for row locks, not a database lock: nothing to bound.
    }
    RW_ASSERT(db_ != nullptr);
    RW_ASSERT(deadline_ms != nullptr);
    busy_wait_ = BusyWait{timeout_ms, deadline_ms, 0};
    // The handler runs on the thread stepping the statement; `count` is 0 on the first
    // call of each wait. Returning 0 makes the statement fail SQLITE_BUSY
    // [sqlite3_busy_handler(3)]. It replaces the busy_timeout set at open.
    const auto handler = [](void* context, int count) -> int {
        auto* wait = static_cast<BusyWait*>(context);
        const int64_t now = busy_clock_ms();
        if (count == 0) {
            wait->started_ms = now;
        }
        const int64_t deadline = wait->deadline_ms->load(std::memory_order_relaxed);
        if ((deadline != 0 && now >= deadline) ||
            now - wait->started_ms >= int64_t(wait->timeout_ms)) {
            return 0;
        }
        ::usleep(count < 10 ? 1000 : 5000);  // Short at first: most locks are brief.
        return 1;
    };
    (void)sqlite3_busy_handler(db_, handler, &busy_wait_);
}

bool Db::prepare(std::string_view sql, Stmt& out) {
    if (pg_ != nullptr) {
        return pg_prepare(sql, out);
    }
    RW_ASSERT(db_ != nullptr);
    RW_ASSERT(!out.is_prepared());
    sqlite3_stmt* stmt = nullptr;
    // PREPARE_PERSISTENT: these statements live as long as the connection.
    const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
        (void)sqlite3_finalize(stmt);  // NULL-safe; stmt is NULL on error anyway.
        return fail(rc, sql);
    }
    RW_ASSERT(stmt != nullptr);  // NULL only for empty SQL, which is a programmer error.
    out.stmt_ = stmt;
    out.db_ = this;
    live_stmt_count_ += 1;
    return true;
}

bool Db::exec(const char* sql) {
    if (pg_ != nullptr) {
        return pg_exec(sql);
    }
    RW_ASSERT(db_ != nullptr);
    char* message = nullptr;
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &message);
    sqlite3_free(message);  // sqlite3_errmsg() holds the same text.
    if (rc != SQLITE_OK) {
        return fail(rc, sql);
    }
    return true;
}

bool Db::step_done(Stmt& stmt) {
    RW_ASSERT(stmt.db_ == this);
    const StepStatus status = stmt.step();
    if (status == StepStatus::error) {
        return false;
    }
    stmt.reset();
    if (status == StepStatus::row) {
        return fail(SQLITE_MISUSE, "statement returned a row");
    }
    return true;
}

Result<int64_t> Db::query_int64(const char* sql) {
    Stmt stmt;
    if (!prepare(sql, stmt)) {
        return Result<int64_t>::failure(last_error_);
    }
    const StepStatus status = stmt.step();
    if (status == StepStatus::error) {
        return Result<int64_t>::failure(last_error_);
    }
    if (status == StepStatus::done) {
        return Result<int64_t>::failure(std::string("no row from: ") + sql);
    }
    const int64_t value = stmt.column_int64(0);
    stmt.reset();
    return Result<int64_t>::success(value);
}

Result<std::string> Db::query_text(const char* sql) {
    Stmt stmt;
    if (!prepare(sql, stmt)) {
        return Result<std::string>::failure(last_error_);
    }
    const StepStatus status = stmt.step();
    if (status == StepStatus::error) {
        return Result<std::string>::failure(last_error_);
    }
    if (status == StepStatus::done) {
        return Result<std::string>::failure(std::string("no row from: ") + sql);
    }
    std::string value(stmt.column_text(0));
    stmt.reset();
    return Result<std::string>::success(std::move(value));
}

namespace {

// Process-wide, before SQLite initializes (the first open does that): no memory-use
// statistics. With them on, every SQLite allocation and free takes a global mutex to count
// bytes that nothing here reads (sqlite3_memory_used); on the writer thread that was ~2.5% of
// the instructions per row (callgrind, bench/micro/writer_bench). A call after SQLite
// initialized (something else opened a connection first) is refused with SQLITE_MISUSE and
// changes nothing, which is harmless.
void sqlite_configure_process() {
    static std::once_flag once;
    std::call_once(once, [] { (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

}  // namespace

bool Db::open(const StorageConfig& config, DbMode mode, std::string& error) {
    RW_ASSERT(db_ == nullptr && pg_ == nullptr);
    if (db_is_postgres(config.db_path)) {
        return pg_open(config, mode, error);
    }
    sqlite_configure_process();
    path_ = config.db_path;
    // NOMUTEX: each connection is confined to one thread at a time (db.h); SQLite's
    // own per-connection mutex would be pure overhead on the writer.
    int flags = SQLITE_OPEN_NOMUTEX;
    flags |= mode == DbMode::read_write ? (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
                                        : SQLITE_OPEN_READONLY;
    const int rc = sqlite3_open_v2(config.db_path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
        error = "cannot open database " + config.db_path + ": " +
                (db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
        if (db_ != nullptr) {
            (void)sqlite3_close(db_);
        }
        db_ = nullptr;
        return false;
    }
    (void)sqlite3_extended_result_codes(db_, 1);  // Only fails on a NULL connection.
    if (!open_apply_pragmas(config, mode, error)) {
        close();
        return false;
    }
    RW_ASSERT(db_ != nullptr);
    return true;
}

namespace {

// Sets `PRAGMA name = value` (when set_sql is non-null) and reads `PRAGMA name` back,
// failing with one clear line when the value SQLite reports differs from `expected`.
bool pragma_check_int(Db& db, const char* set_sql, const char* get_sql, int64_t expected,
                      const std::string& path, std::string& error) {
    if (set_sql != nullptr && !db.exec(set_sql)) {
        error = db.last_error() + " on " + path;
        return false;
    }
    const Result<int64_t> got = db.query_int64(get_sql);
    if (!got.ok()) {
        error = got.error + " on " + path;
        return false;
    }
    if (got.value != expected) {
        error = std::string(get_sql) + " is " + std::to_string(got.value) + ", expected " +
                std::to_string(expected) + " for " + path;
        return false;
    }
    return true;
}

}  // namespace

bool Db::open_apply_pragmas(const StorageConfig& config, DbMode mode, std::string& error) {
    RW_ASSERT(db_ != nullptr);
    // The busy handler first, so every later statement already waits for locks.
    if (sqlite3_busy_timeout(db_, static_cast<int>(config.busy_timeout_ms)) != SQLITE_OK) {
        error = "sqlite3_busy_timeout failed for " + path_;
        return false;
    }
    char sql[128];
    const std::string& path = path_;
    if (mode == DbMode::read_write) {
        // A new file gets auto_vacuum=INCREMENTAL (retention gives pages back) only if it
        // is set before the first page is written, which the WAL switch below does; on an
        // existing database this is a no-op (migrations switch it with one VACUUM).
        std::snprintf(sql, sizeof(sql), "PRAGMA page_size=%" PRId64, config.page_bytes);
        (void)exec(sql);
        (void)exec("PRAGMA auto_vacuum=INCREMENTAL");
        // journal_mode returns the mode now in effect; anything but "wal" means WAL is
        // impossible here (e.g. a filesystem without shared memory)
        // [pragma.html#pragma_journal_mode].
        const Result<std::string> journal = query_text("PRAGMA journal_mode=WAL");
        if (!journal.ok() || journal.value != "wal") {
            error = "journal_mode=WAL not possible for " + path + " (got '" +
                    (journal.ok() ? journal.value : journal.error) + "')";
            return false;
        }
    } else {
        const Result<std::string> journal = query_text("PRAGMA journal_mode");
        if (!journal.ok() || journal.value != "wal") {
            error = "database " + path + " is not in WAL mode (got '" +
                    (journal.ok() ? journal.value : journal.error) + "'); open it read-write first";
            return false;
        }
        // A read-only connection that refuses writes even if opened wrongly.
        if (!pragma_check_int(*this, "PRAGMA query_only=1", "PRAGMA query_only", 1, path, error)) {
            return false;
        }
    }
    // NORMAL is durable in WAL mode except for the last transactions before a power
    // loss; FULL also syncs the WAL on every commit [pragma.html#pragma_synchronous].
    const int64_t synchronous = config.synchronous_full ? 2 : 1;
    std::snprintf(sql, sizeof(sql), "PRAGMA synchronous=%" PRId64, synchronous);
    if (!pragma_check_int(*this, sql, "PRAGMA synchronous", synchronous, path, error)) {
        return false;
    }
    if (!pragma_check_int(*this, nullptr, "PRAGMA busy_timeout", config.busy_timeout_ms, path,
                          error)) {
        return false;
    }
    // A negative cache_size is KiB rather than pages.
    std::snprintf(sql, sizeof(sql), "PRAGMA cache_size=%" PRId64, -config.cache_kib);
    if (!pragma_check_int(*this, sql, "PRAGMA cache_size", -config.cache_kib, path, error)) {
        return false;
    }
    // mmap_size is capped by SQLITE_MAX_MMAP_SIZE at build time; a smaller read-back
    // means the library cannot do what was configured.
    std::snprintf(sql, sizeof(sql), "PRAGMA mmap_size=%" PRId64, config.mmap_bytes);
    if (!pragma_check_int(*this, sql, "PRAGMA mmap_size", config.mmap_bytes, path, error)) {
        return false;
    }
    if (!pragma_check_int(*this, "PRAGMA temp_store=MEMORY", "PRAGMA temp_store", 2, path, error)) {
        return false;
    }
    if (!pragma_check_int(*this, "PRAGMA foreign_keys=ON", "PRAGMA foreign_keys", 1, path, error)) {
        return false;
    }
    if (mode == DbMode::read_write) {
        std::snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit=%" PRId64,
                      config.journal_size_limit_bytes);
        if (!pragma_check_int(*this, sql, "PRAGMA journal_size_limit",
                              config.journal_size_limit_bytes, path, error)) {
            return false;
        }
    }
    clear_error();
    return true;
}

}  // namespace rw
