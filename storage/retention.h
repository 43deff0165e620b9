// storage/retention.h — Retention, the pruning of old usage_logs rows and the return of
// the freed pages to the disk. Runs on the writer thread only, between batches, in small
// steps: each deletes at most a few thousand of the oldest rows (by id, which is insertion
// order) older than RINGWAY_LOG_RETENTION_DAYS, or, while the live data exceeds
// RINGWAY_DB_MAX_BYTES, the oldest rows whatever their age (with a warning) but the newest
// retention_cap_keep_rows, which the cap never takes (a cap the other tables alone exceed
// would otherwise empty the log), then runs
// PRAGMA incremental_vacuum on a bounded number of free pages. The step size adapts so
// one step stays near retention_step_ms_target. daily_usage is never pruned: it carries the
// quota invariant and the per-day history.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "storage/config.h"
#include "storage/db.h"

namespace rw {

// The newest usage rows the RINGWAY_DB_MAX_BYTES cap never prunes (about 1.3 MB of them).
constexpr uint32_t retention_cap_keep_rows = 10000;

struct RetentionStats {
    uint64_t pruned_rows = 0;
    uint64_t steps = 0;
    uint64_t step_us_max = 0;
    uint64_t vacuumed_pages = 0;
    bool is_over_cap = false;  // Live data above RINGWAY_DB_MAX_BYTES at the last check.
};

class Retention {
public:
    // Prepares the statements on the writer's connection. False with `error`.
    [[nodiscard]] bool open(Db& db, const StorageConfig& config, std::string& error);

    // One bounded step at wall-clock time now_wall_ms (Unix ms). True when it found work
    // and more may remain (call again after the next batch); false when there is nothing
    // to prune or give back (check again later). A failed statement ends the step (it is
    // retried at the next check; nothing depends on pruning for correctness).
    bool step(int64_t now_wall_ms);

    [[nodiscard]] RetentionStats stats() const;

private:
    [[nodiscard]] bool is_over_cap();
    [[nodiscard]] uint64_t prune(int64_t cutoff_ms);
    [[nodiscard]] uint64_t vacuum();

    Db* db_ = nullptr;
    StorageConfig config_;
    Stmt oldest_ts_;
    Stmt prune_;
    Stmt prune_capped_;
    Stmt page_count_;
    Stmt freelist_count_;
    Stmt page_size_;
    uint32_t step_rows_ = 0;  // Adapted between retention_step_rows_min and _max.
    int64_t last_cap_warning_ms_ = 0;
    std::atomic<uint64_t> pruned_rows_{0};
    std::atomic<uint64_t> steps_{0};
    std::atomic<uint64_t> step_us_max_{0};
    std::atomic<uint64_t> vacuumed_pages_{0};
    std::atomic<bool> is_over_cap_{false};
};

}  // namespace rw
