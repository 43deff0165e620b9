// storage/writer.h — Writer, the only thread that writes SQLite. It owns the read-write
// connection, every prepared statement and one LogQueue per shard. Shards push records
// and call notify(); run() drains all queues and commits batches (due at log_batch_rows rows
// or log_flush_ms, whichever first; a backlog is taken up to writer_batch_rows_max rows at
// once) in one BEGIN IMMEDIATE transaction: usage rows, daily
// aggregates and keys.quota_used / keys.spend_nano together or not at all. A failed commit is
// rolled back and retried with bounded backoff; a record is never dropped. After
// request_stop() the retries go on for drain_timeout_ms at most; what is still uncommitted
// then is written to the spill file, which the next open() commits exactly once.
// Control-plane writes (keys, channels) also run on this thread through execute(), so no
// two connections in this process ever contend for the write lock.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "storage/config.h"
#include "storage/db.h"
#include "storage/log_queue.h"
#include "storage/records.h"
#include "storage/retention.h"
#include "storage/spill.h"
#include "storage/usage_rows.h"
#include "storage/wal_checkpointer.h"

namespace rw {

// The most rows one transaction takes when the queues hold a backlog: 8 batches (at most
// log_batch_rows_max), so a writer that fell behind catches up with fewer, cheaper commits.
[[nodiscard]] constexpr uint32_t writer_batch_rows_max(uint32_t log_batch_rows) {
    const uint64_t grown = uint64_t(log_batch_rows) * 8;
    return uint32_t(
        std::max<uint64_t>(log_batch_rows, std::min<uint64_t>(grown, log_batch_rows_max)));
}

// A point-in-time copy of the writer's counters (each read relaxed; not one snapshot).
struct WriterStats {
    uint64_t rows_written = 0;
    uint64_t batches_committed = 0;
    uint64_t commit_errors = 0;          // Failed commit attempts (each retried).
    uint64_t last_batch_latency_us = 0;  // BEGIN..COMMIT of the latest committed batch.
    uint64_t batch_latency_us_max = 0;
    uint64_t batch_cpu_us_max = 0;        // The writer thread's CPU time in its costliest commit.
    uint64_t batch_latency_us_total = 0;  // Sum over committed batches (busy time).
    bool is_stalled = false;              // The latest commit attempt failed.
    uint64_t admin_commands = 0;
    uint64_t latency_histogram[writer_latency_bucket_count] = {};  // [i]: 2^i..2^(i+1) us.
    WalCheckpointStats wal;  // SQLite's WAL checkpoints (storage/wal_checkpointer.h).
};

class Writer {
public:
    // A control-plane write run on the writer thread. Gets the writer's connection;
    // returns false with `error` set to fail the command. Must not block on anything
    // but SQLite, and must not call back into the Writer.
    using AdminFn = bool (*)(Db& db, void* context, std::string& error);

    Writer() = default;
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;
    ~Writer();

    // Startup, before any shard runs: opens config.db_path read-write with verified
    // PRAGMAs, applies migrations, prepares the batch statements and creates
    // shard_count queues of config.queue_slots. Commits a spill file left by the previous
    // run (once: its id is recorded in the same transaction), then reserves a new one.
    // False with one clear line in `error`.
    [[nodiscard]] bool open(const StorageConfig& config, uint32_t shard_count, std::string& error);
    // open() in two steps, for a reload (proxy/reload.h): the queues first, so shards can
    // queue rows while the previous process still holds the database; open_db() (the
    // connection, migrations, spill replay) once it has released it.
    [[nodiscard]] bool open_queues(const StorageConfig& config, uint32_t shard_count,
                                   std::string& error);
    [[nodiscard]] bool open_db(std::string& error);
    // Between open_queues() and open_db(), on the thread that will run(): stalled (new
    // requests refused, /readyz 503) while the previous process held the database past its
    // bound; true once request_stop()'s drain deadline passed; abandon() counts what is
    // queued as lost_rows() and fails pending commands (the database never came free).
    void set_handover_stalled(bool is_stalled);
    [[nodiscard]] bool is_stop_expired() const;
    void abandon();

    // Shard i's queue: producer side for shard i only. Stable for the Writer's life.
    [[nodiscard]] LogQueue& queue(uint32_t shard_index) {
        RW_ASSERT(shard_index < queue_count());
        return *queues_[shard_index];
    }
    [[nodiscard]] const LogQueue& queue(uint32_t shard_index) const {
        RW_ASSERT(shard_index < queue_count());
        return *queues_[shard_index];
    }
    // The shards' queues (the control queue is not counted).
    [[nodiscard]] uint32_t queue_count() const { return uint32_t(queues_.size()) - 1; }
    // The control plane's queue (as large as a shard's, but only the pages its few rows
    // touch are resident): the admin thread's channel probes are its only producer.
    // Drained, committed and spilled like a shard's.
    [[nodiscard]] LogQueue& control_queue() { return *queues_.back(); }
    // notify() for the control queue.
    void notify_control() { notify(uint32_t(queues_.size()) - 1); }

    // Shard side, at most once per loop turn after pushes: wakes the writer if it is
    // idle, or if it is waiting out a partial batch's flush deadline while this shard's
    // queue already holds a full batch. Otherwise only a fence and a load (no syscall).
    void notify(uint32_t shard_index);

    // The writer thread's body. Returns after request_stop() once every record already
    // pushed has been committed (the SIGTERM drain), or, when commits still fail
    // drain_timeout_ms after request_stop(), once the rest went to the spill file
    // (spilled_rows(); lost_rows() if even that write failed). Shards must have stopped
    // pushing before request_stop(); records pushed after run() returns are not seen.
    void run();

    // Any thread. Starts the drain deadline; run() finishes the drain, then returns.
    void request_stop();

    // Control plane: runs fn on the writer thread (in BEGIN IMMEDIATE ... COMMIT when
    // is_transaction; rolled back if fn fails) and waits for it. False with `error` when
    // fn failed, the transaction failed, or the writer has stopped. Never call from the
    // writer thread (asserted). Commands queued before run() starts wait for it.
    [[nodiscard]] bool execute(AdminFn fn, void* context, std::string& error,
                               bool is_transaction = true);

    // The connection for startup checks (check_quota_invariant) before run() starts.
    [[nodiscard]] Db& db_before_run() {
        RW_ASSERT(!is_running_.load(std::memory_order_acquire));
        return db_;
    }

    [[nodiscard]] WriterStats stats() const;
    [[nodiscard]] bool is_stalled() const { return is_stalled_.load(std::memory_order_relaxed); }
    // Shard side, per admission: true once commits have been failing for stall_refuse_ms
    // (now_ms on the CLOCK_MONOTONIC time base, in ms). One relaxed load.
    [[nodiscard]] bool is_refusing(uint64_t now_ms) const {
        const int64_t since = stalled_since_ms_.load(std::memory_order_relaxed);
        return since != 0 && int64_t(now_ms) - since >= int64_t(config_.stall_refuse_ms);
    }
    [[nodiscard]] uint64_t rows_written() const {
        return rows_written_.load(std::memory_order_relaxed);
    }
    // After run() returned: rows put in the spill file, rows neither committed nor spilled.
    [[nodiscard]] uint64_t spilled_rows() const { return spilled_rows_; }
    [[nodiscard]] uint64_t lost_rows() const { return lost_rows_; }
    [[nodiscard]] const std::string& spill_file_path() const { return spill_.path(); }
    [[nodiscard]] const std::string& spill_error() const { return spill_error_; }
    // After open(): rows of the previous run's spill file committed now (0: none).
    [[nodiscard]] uint64_t replayed_rows() const { return replayed_rows_; }
    // Any thread (relaxed counters).
    [[nodiscard]] RetentionStats retention_stats() const { return retention_.stats(); }

private:
    struct Command;
    // Per-batch sums per (key, day, model, channel); runs of one key are adjacent after
    // sorting. `model` points into batch_ (valid until the batch is cleared).
    struct Aggregate {
        int64_t key_id;
        int64_t channel_id;
        const char* model;  // The model the client asked for (model_requested).
        int32_t day;        // Days since 1970-01-01 (UTC).
        uint32_t requests;
        uint32_t unpriced_requests;  // Rows without a price (price_id 0).
        uint64_t prompt_tokens;
        uint64_t completion_tokens;
        uint64_t total_tokens;
        uint64_t cached_input_tokens;
        uint64_t cache_write_tokens;
        uint64_t reasoning_tokens;
        int64_t cost_nano;  // A batch of rows each under 2^58 nano-USD: no overflow.
    };

    // What the writer is sleeping on, so notify() knows whether a wake is worth a syscall.
    enum class Sleep : uint8_t { awake, idle, partial_batch, backoff };

    void run_commands();
    void run_one_command(Command& command);
    void drain_queues();
    [[nodiscard]] bool queues_are_empty() const;
    [[nodiscard]] bool commit_batch();
    [[nodiscard]] bool commit_batch_statements();
    [[nodiscard]] bool batch_was_committed();
    [[nodiscard]] bool commit_batch_aggregates();
    [[nodiscard]] bool commit_lease_committed(uint32_t first, uint32_t last);
    static void aggregate_add(Aggregate& sum, const UsageRecord& record);
    [[nodiscard]] bool write_batch_rows();
    [[nodiscard]] bool prepare_insert_statements();
    [[nodiscard]] bool insert_rows(uint32_t first, uint32_t count);
    [[nodiscard]] bool replay_spill(std::string& error);
    [[nodiscard]] bool replay_rows(const SpillContents& spill, std::string& error);
    void spill_everything();
    [[nodiscard]] int64_t backoff_sleep_ms(bool is_stopping) const;
    bool retention_step(bool is_stopping);
    [[nodiscard]] bool is_drain_expired() const;
    void commit_batch_aggregate();
    void commit_failed(uint32_t attempt_rows, int64_t attempt_start_us);
    void commit_succeeded(uint64_t latency_us);
    void wait(Sleep mode, int64_t timeout_ms);
    void wake();
    void fail_pending_commands();

    // The run of batch_ rw_usage_rows shows during an INSERT; registered with db_'s
    // connection, so declared before it (destroyed after it closes).
    UsageRows usage_rows_;
    // SQLite: checkpoints the WAL on its own thread and connection (wal_checkpointer.h). Its
    // hook is on db_'s connection, so declared before it (destroyed after it closes).
    WalCheckpointer checkpointer_;
    // Monotonic ms; stored before is_stop_requested_. Declared before db_, whose busy
    // handler reads it (even while the connection closes).
    std::atomic<int64_t> stop_deadline_ms_{0};
    // Declared before the statements: members are destroyed in reverse order, and the
    // Db asserts every statement is finalized when it closes.
    Db db_;
    Stmt begin_;
    Stmt commit_;
    Stmt rollback_;
    Stmt insert_usage_rows_;  // SQLite: the rows usage_rows_ shows (storage/usage_rows.h).
    Stmt insert_usage_;       // PostgreSQL: one row.
    Stmt insert_usage_many_;  // PostgreSQL: insert_rows_per_statement rows (writer.cc).
    Stmt insert_usage_bulk_;  // PostgreSQL: insert_rows_per_bulk_statement rows.
    Stmt upsert_daily_;
    Stmt add_quota_used_;
    Stmt add_lease_committed_;  // PostgreSQL only (budget leases).
    SpillFile spill_;
    Retention retention_;            // Holds statements on db_: declared after it.
    int64_t next_retention_ms_ = 0;  // Monotonic ms when the next step is due.

    StorageConfig config_;
    std::vector<std::unique_ptr<LogQueue>> queues_;
    uint32_t batch_rows_max_ = 0;  // writer_batch_rows_max(log_batch_rows).
    // Capacity batch_rows_max_ each, allocated once and not initialised: only the rows a
    // batch fills are read, and untouched pages stay out of an idle gateway's memory
    // (zero-filled, the two were ~2.5 MB resident from the start at the default batch).
    std::unique_ptr<UsageRecord[]> batch_;
    uint32_t batch_count_ = 0;                 // Rows in batch_ [0, batch_rows_max_].
    std::unique_ptr<Aggregate[]> aggregates_;  // Per-batch scratch.
    std::vector<uint32_t> group_slots_;        // commit_batch_aggregate()'s hash table, ditto.
    uint32_t aggregate_count_ = 0;
    int64_t batch_deadline_ms_ = 0;   // Monotonic ms when the oldest row must commit.
    uint32_t drain_start_index_ = 0;  // Round-robin start so no shard starves.
    uint32_t backoff_ms_ = 0;         // 0 when the last commit succeeded.
    uint64_t failure_streak_ = 0;
    int event_fd_ = -1;
    std::atomic<std::thread::id> writer_thread_{};

    std::atomic<Sleep> sleep_{Sleep::awake};
    std::atomic<bool> is_stop_requested_{false};
    uint64_t spilled_rows_ = 0;
    uint64_t lost_rows_ = 0;
    uint64_t replayed_rows_ = 0;
    std::string spill_error_;
    std::atomic<bool> is_running_{false};

    std::mutex command_mutex_;       // Guards commands_ and is_accepting_commands_.
    std::deque<Command*> commands_;  // Control plane only; never on the shard path.
    bool is_accepting_commands_ = false;
    std::atomic<bool> has_commands_{false};

    std::atomic<uint64_t> rows_written_{0};
    std::atomic<uint64_t> batches_committed_{0};
    std::atomic<uint64_t> commit_errors_{0};
    std::atomic<uint64_t> last_batch_latency_us_{0};
    std::atomic<uint64_t> batch_latency_us_max_{0};
    std::atomic<uint64_t> batch_cpu_us_max_{0};
    std::atomic<uint64_t> batch_latency_us_total_{0};
    std::atomic<bool> is_stalled_{false};
    // Monotonic ms when the first of the current run of failed commits started; 0: none.
    std::atomic<int64_t> stalled_since_ms_{0};
    std::atomic<uint64_t> admin_commands_{0};
    std::atomic<uint64_t> latency_histogram_[writer_latency_bucket_count] = {};
};

}  // namespace rw
