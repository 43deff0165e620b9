// storage/retention.cc — bounded pruning and incremental vacuum steps (see retention.h).
#include "storage/retention.h"

#include <chrono>
#include <cstdio>

#include "core/assert.h"

namespace rw {
namespace {

int64_t steady_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

constexpr int64_t ms_per_day = 86400000;

}  // namespace

bool Retention::open(Db& db, const StorageConfig& config, std::string& error) {
    db_ = &db;
    config_ = config;
    step_rows_ = 1024;
    // Oldest first by id (insertion order): the subquery walks the first rows of the
    // table's b-tree, so a step costs the rows it deletes, not a scan for old ones.
    if (!db.prepare("SELECT ts_ms FROM usage_logs ORDER BY id LIMIT 1", oldest_ts_) ||
        !db.prepare("DELETE FROM usage_logs WHERE id IN"
                    " (SELECT id FROM usage_logs ORDER BY id LIMIT ?1) AND ts_ms < ?2",
                    prune_) ||
        // Over the cap: the same, but the newest retention_cap_keep_rows stay (no such row:
        // fewer are left, nothing goes).
        !db.prepare("DELETE FROM usage_logs WHERE id IN"
                    " (SELECT id FROM usage_logs ORDER BY id LIMIT ?1) AND id <"
                    " (SELECT id FROM usage_logs ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                    prune_capped_)) {
        error = "preparing retention statements: " + db.last_error();
        return false;
    }
    if (db.is_postgres()) {
        // The cap counts the database's size on disk; autovacuum returns the space.
        if (!db.prepare("SELECT pg_database_size(current_database())", page_count_)) {
            error = "preparing retention statements: " + db.last_error();
            return false;
        }
        return true;
    }
    if (!db.prepare("PRAGMA page_count", page_count_) ||
        !db.prepare("PRAGMA freelist_count", freelist_count_) ||
        !db.prepare("PRAGMA page_size", page_size_)) {
        error = "preparing retention statements: " + db.last_error();
        return false;
    }
    return true;
}

bool Retention::is_over_cap() {
    if (config_.db_max_bytes == 0) {
        return false;
    }
    int64_t values[3] = {0, 0, 1};
    Stmt* stmts[3] = {&page_count_, &freelist_count_, &page_size_};
    for (int index = 0; index < (db_->is_postgres() ? 1 : 3); index++) {
        if (stmts[index]->step() != StepStatus::row) {
            return false;
        }
        values[index] = stmts[index]->column_int64(0);
        stmts[index]->reset();
    }
    const uint64_t live_bytes = uint64_t(values[0] - values[1]) * uint64_t(values[2]);
    const bool is_over = live_bytes > config_.db_max_bytes;
    is_over_cap_.store(is_over, std::memory_order_relaxed);
    const int64_t now_ms = steady_us() / 1000;
    if (is_over && now_ms - last_cap_warning_ms_ >= 60000) {
        last_cap_warning_ms_ = now_ms;
        std::fprintf(stderr,
                     "ringway: storage: live data %llu bytes exceeds RINGWAY_DB_MAX_BYTES=%llu;"
                     " pruning usage rows before RINGWAY_LOG_RETENTION_DAYS\n",
                     (unsigned long long)live_bytes, (unsigned long long)config_.db_max_bytes);
    }
    return is_over;
}

// Deletes up to step_rows_ of the oldest rows with ts_ms < cutoff_ms, in one transaction.
uint64_t Retention::prune(int64_t cutoff_ms) {
    if (oldest_ts_.step() != StepStatus::row) {
        oldest_ts_.reset();
        return 0;  // Empty table (done) or an error (logged by the next commit anyway).
    }
    const int64_t oldest = oldest_ts_.column_int64(0);
    oldest_ts_.reset();
    if (oldest >= cutoff_ms) {
        return 0;
    }
    Stmt& stmt = cutoff_ms == INT64_MAX ? prune_capped_ : prune_;
    stmt.bind_int64(1, step_rows_);
    stmt.bind_int64(2, cutoff_ms == INT64_MAX ? int64_t(retention_cap_keep_rows) - 1 : cutoff_ms);
    if (!db_->step_done(stmt)) {
        return 0;
    }
    return uint64_t(db_->changes());
}

// Gives back up to retention_vacuum_pages_max free pages (auto_vacuum=INCREMENTAL).
uint64_t Retention::vacuum() {
    if (db_->is_postgres()) {
        return 0;  // Autovacuum's business.
    }
    if (freelist_count_.step() != StepStatus::row) {
        freelist_count_.reset();
        return 0;
    }
    const int64_t free_pages = freelist_count_.column_int64(0);
    freelist_count_.reset();
    if (free_pages <= 0) {
        return 0;
    }
    char sql[64];
    const int64_t pages = std::min<int64_t>(free_pages, retention_vacuum_pages_max);
    std::snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%lld)", (long long)pages);
    return db_->exec(sql) ? uint64_t(pages) : 0;
}

bool Retention::step(int64_t now_wall_ms) {
    RW_ASSERT(db_ != nullptr);
    RW_ASSERT(!db_->in_transaction());
    const int64_t start_us = steady_us();
    const bool is_over = is_over_cap();
    const int64_t cutoff_ms =
        is_over ? INT64_MAX : now_wall_ms - int64_t(config_.retention_days) * ms_per_day;
    const uint64_t pruned = prune(cutoff_ms);
    const uint64_t vacuumed = vacuum();
    const int64_t took_us = std::max<int64_t>(0, steady_us() - start_us);
    // Keep one step near the target: a writer busy here delays the next batch. (A step
    // whose commit leaves the WAL at its bound also pays for a checkpoint: wal_checkpointer.h.)
    if (pruned == step_rows_ && took_us < int64_t(retention_step_ms_target) * 500) {
        step_rows_ = std::min(retention_step_rows_max, step_rows_ * 2);
    } else if (took_us > int64_t(retention_step_ms_target) * 1000) {
        step_rows_ = std::max(retention_step_rows_min, step_rows_ / 2);
    }
    if (pruned == 0 && vacuumed == 0) {
        return false;
    }
    pruned_rows_.fetch_add(pruned, std::memory_order_relaxed);
    vacuumed_pages_.fetch_add(vacuumed, std::memory_order_relaxed);
    steps_.fetch_add(1, std::memory_order_relaxed);
    if (uint64_t(took_us) > step_us_max_.load(std::memory_order_relaxed)) {
        step_us_max_.store(uint64_t(took_us), std::memory_order_relaxed);  // One writer.
    }
    RW_ASSERT(!db_->in_transaction());
    return true;
}

RetentionStats Retention::stats() const {
    RetentionStats stats;
    stats.pruned_rows = pruned_rows_.load(std::memory_order_relaxed);
    stats.steps = steps_.load(std::memory_order_relaxed);
    stats.step_us_max = step_us_max_.load(std::memory_order_relaxed);
    stats.vacuumed_pages = vacuumed_pages_.load(std::memory_order_relaxed);
    stats.is_over_cap = is_over_cap_.load(std::memory_order_relaxed);
    return stats;
}

}  // namespace rw
