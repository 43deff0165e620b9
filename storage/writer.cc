// storage/writer.cc — the writer thread: drain the shards' queues, batch, commit in one
// transaction, retry forever without dropping, and run control-plane commands. This is
// the only code that writes the database; it runs on one thread (run()), except open(),
// notify(), request_stop(), execute() and stats() whose thread rules are in writer.h.
#include "storage/writer.h"

#include <poll.h>
#include <sched.h>
#include <sqlite3.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "core/assert.h"
#include "storage/migrations.h"
#include "storage/usage_rows.h"

namespace rw {

// One control-plane write waiting for the writer thread (lives on the caller's stack).
struct Writer::Command {
    AdminFn fn;
    void* context;
    bool is_transaction;
    std::mutex mutex;
    std::condition_variable done_cv;
    bool is_done = false;  // Guarded by mutex.
    bool is_ok = false;
    std::string error;
};

namespace {

// A StoreLoad barrier between the writer's sleep_ store and its tail loads, and between a
// shard's tail store and its sleep_ load (Dekker). Normally a seq_cst fence; ThreadSanitizer
// does not model fences (GCC refuses them under -fsanitize=thread), so there both sides
// do a seq_cst read-modify-write on one shared word instead: the two RMWs are ordered, and
// the later one acquires everything before the earlier one — the same guarantee.
void store_load_barrier() {
#if defined(__SANITIZE_THREAD__)
    static std::atomic<uint32_t> barrier_word{0};
    barrier_word.fetch_add(0, std::memory_order_seq_cst);
#else
    std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

int64_t monotonic_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

int64_t monotonic_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// CPU time of the calling thread: a commit's own cost, blind to the scheduler (a writer
// descheduled on a shared core shows in the wall-clock latency, not here).
int64_t thread_cpu_us() {
    timespec now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return int64_t(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
}

// PostgreSQL: rows per multi-row INSERT (27 parameters each: 864). The writer yields
// between runs of writer_yield_rows rows.
constexpr uint32_t insert_rows_per_statement = 32;
// Rows per INSERT under a backlog, when the writer does not yield (6912 parameters): the
// per-statement cost shared by 8 times as many rows.
constexpr uint32_t insert_rows_per_bulk_statement = 256;
static_assert(insert_rows_per_statement == writer_yield_rows);

// "INSERT ... VALUES (?,...), (?,...)" for `rows` rows: one statement execution per
// `rows` rows instead of per row (bind and step overhead, the per-statement setup); the
// insert order and the rows are the same.
std::string insert_usage_sql(uint32_t rows) {
    std::string sql = "INSERT INTO usage_logs (" + usage_log_columns_sql() + ") VALUES ";
    for (uint32_t row = 0; row < rows; row++) {
        sql += row == 0 ? "(" : ", (";
        for (int column = 0; column < usage_log_column_count; column++) {
            sql += column == 0 ? "?" : ", ?";
        }
        sql += ")";
    }
    return sql;
}

constexpr const char* upsert_daily_sql =
    "INSERT INTO daily_usage (key_id, day, requests, prompt_tokens, completion_tokens,"
    " total_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, cost_nano,"
    " unpriced_requests, model, channel_id)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    " ON CONFLICT (key_id, day, model, channel_id) DO UPDATE SET"
    " requests = daily_usage.requests + excluded.requests,"
    " prompt_tokens = daily_usage.prompt_tokens + excluded.prompt_tokens,"
    " completion_tokens = daily_usage.completion_tokens + excluded.completion_tokens,"
    " total_tokens = daily_usage.total_tokens + excluded.total_tokens,"
    " cached_input_tokens = daily_usage.cached_input_tokens + excluded.cached_input_tokens,"
    " cache_write_tokens = daily_usage.cache_write_tokens + excluded.cache_write_tokens,"
    " reasoning_tokens = daily_usage.reasoning_tokens + excluded.reasoning_tokens,"
    " cost_nano = daily_usage.cost_nano + excluded.cost_nano,"
    " unpriced_requests = daily_usage.unpriced_requests + excluded.unpriced_requests";

// Tokens and money of a key move together: the same statement, the same transaction.
constexpr const char* add_quota_used_sql =
    "UPDATE keys SET quota_used = quota_used + ?2, spend_nano = spend_nano + ?3 WHERE id = ?1";

// PostgreSQL with budget leases (storage/budget_lease.h): what this host commits for a key
// on a day moves from its lease's unspent part into committed, after the key's row is
// locked by add_quota_used (the lease thread locks it first too: one order, no deadlock).
constexpr const char* add_lease_committed_sql =
    "UPDATE budget_leases SET committed_tokens = committed_tokens + ?4, committed_nano ="
    " committed_nano + ?5 WHERE key_id = ?1 AND host = ?2 AND first_day <= ?3 AND end_day > ?3";

}  // namespace

Writer::~Writer() {
    RW_ASSERT(!is_running_.load());
    if (event_fd_ >= 0) {
        (void)::close(event_fd_);
    }
}

bool Writer::open(const StorageConfig& config, uint32_t shard_count, std::string& error) {
    return open_queues(config, shard_count, error) && open_db(error);
}

bool Writer::open_queues(const StorageConfig& config, uint32_t shard_count, std::string& error) {
    RW_ASSERT(!db_.is_open());
    RW_ASSERT(queues_.empty());
    error = storage_config_check(config);
    if (!error.empty()) {
        return false;
    }
    if (shard_count == 0 || shard_count > storage_shards_max) {
        error = "shard count must be in 1.." + std::to_string(storage_shards_max);
        return false;
    }
    config_ = config;
    batch_rows_max_ = writer_batch_rows_max(config.log_batch_rows);
    batch_ = std::make_unique_for_overwrite<UsageRecord[]>(batch_rows_max_);
    aggregates_ = std::make_unique_for_overwrite<Aggregate[]>(batch_rows_max_);
    group_slots_.resize(std::bit_ceil(std::max<uint32_t>(16, 2 * batch_rows_max_)));
    event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (event_fd_ < 0) {
        error = std::string("eventfd: ") + std::strerror(errno);
        return false;
    }
    for (uint32_t index = 0; index < shard_count; index++) {
        queues_.push_back(std::make_unique<LogQueue>(config.queue_slots));
    }
    queues_.push_back(std::make_unique<LogQueue>(config.queue_slots));  // Last: the control's.
    {
        std::lock_guard<std::mutex> lock(command_mutex_);
        is_accepting_commands_ = true;
    }
    RW_ASSERT(queues_.size() == shard_count + 1);
    return true;
}

bool Writer::open_db(std::string& error) {
    RW_ASSERT(!db_.is_open());
    RW_ASSERT(!queues_.empty());
    const StorageConfig& config = config_;
    if (!db_.open(config, DbMode::read_write, error)) {
        return false;
    }
    if (!migrate(db_, error)) {
        return false;
    }
    if (!db_.is_postgres() && (!usage_rows_register(db_, &usage_rows_, error) ||
                               !checkpointer_.open(config, db_, error))) {
        return false;
    }
    if (!db_.prepare("BEGIN IMMEDIATE", begin_) || !db_.prepare("COMMIT", commit_) ||
        !db_.prepare("ROLLBACK", rollback_) || !prepare_insert_statements() ||
        !db_.prepare(upsert_daily_sql, upsert_daily_) ||
        !db_.prepare(add_quota_used_sql, add_quota_used_) ||
        (!config.lease_host.empty() &&
         !db_.prepare(add_lease_committed_sql, add_lease_committed_))) {
        error = "preparing writer statements: " + db_.last_error();
        return false;
    }
    // Each execution binds every parameter of these, so a reset need not clear them.
    for (Stmt* s : {&insert_usage_, &insert_usage_many_, &insert_usage_bulk_, &upsert_daily_,
                    &add_quota_used_}) {
        if (s->is_prepared()) {
            s->set_rebinds_every_step();
        }
    }
    if (!replay_spill(error)) {
        return false;
    }
    // Room for every row the queues (the control's too) and the batch can hold, so the
    // spill at a shutdown deadline needs no new blocks even on a disk that has filled since.
    const uint64_t queued_max = uint64_t(queues_.size()) * config.queue_slots + batch_rows_max_;
    if (!spill_.open(spill_path(storage_local_path(config)),
                     std::min(spill_reserve_bytes_max, queued_max * sizeof(UsageRecord)), error)) {
        return false;
    }
    if (!retention_.open(db_, config, error)) {
        return false;
    }
    // A foreign lock must not hold the shutdown drain past its deadline: a BEGIN waiting
    // for it gives up when the deadline passes, even mid-wait.
    db_.set_busy_deadline(config.busy_timeout_ms, &stop_deadline_ms_);
    return true;
}

void Writer::set_handover_stalled(bool is_stalled) {
    is_stalled_.store(is_stalled, std::memory_order_relaxed);
    // Refusing at once: the wait for the previous process already lasted its bound.
    stalled_since_ms_.store(
        is_stalled ? std::max<int64_t>(1, monotonic_ms() - int64_t(config_.stall_refuse_ms)) : 0,
        std::memory_order_relaxed);
}

bool Writer::is_stop_expired() const {
    return is_stop_requested_.load(std::memory_order_acquire) && is_drain_expired();
}

void Writer::abandon() {
    RW_ASSERT(!db_.is_open());
    for (;;) {
        batch_count_ = 0;
        drain_queues();
        lost_rows_ += batch_count_;
        if (batch_count_ == 0 && queues_are_empty()) {
            break;
        }
    }
    batch_count_ = 0;
    fail_pending_commands();
}

void Writer::wake() {
    const uint64_t one = 1;
    const ssize_t written = ::write(event_fd_, &one, sizeof(one));
    // EAGAIN only when the counter is at its maximum: the writer is already awake-able.
    RW_ASSERT(written == sizeof(one) || errno == EAGAIN);
}

void Writer::notify(uint32_t shard_index) {
    // Dekker-style pairing with wait(): the shard's tail store (push) is ordered before
    // this load of sleep_, and the writer's store of sleep_ before its reload of the
    // tails, so at least one side sees the other [atomics.fences].
    store_load_barrier();
    const Sleep mode = sleep_.load(std::memory_order_relaxed);
    // Awake is the common case under load; in backoff a wake would only retry sooner.
    if (mode == Sleep::awake || mode == Sleep::backoff) {
        return;
    }
    if (mode == Sleep::partial_batch && queues_[shard_index]->depth() < config_.log_batch_rows) {
        return;  // The flush deadline will pick these up; no need to wake early.
    }
    Sleep expected = mode;
    // Only the first notifier pays the write(2).
    if (sleep_.compare_exchange_strong(expected, Sleep::awake)) {
        wake();
    }
}

void Writer::request_stop() {
    // Release below publishes the deadline with the flag; only the first call sets it.
    if (!is_stop_requested_.load(std::memory_order_acquire)) {
        stop_deadline_ms_.store(monotonic_ms() + config_.drain_timeout_ms,
                                std::memory_order_relaxed);
    }
    is_stop_requested_.store(true, std::memory_order_release);
    wake();
}

bool Writer::queues_are_empty() const {
    for (const auto& queue : queues_) {
        if (!queue->is_empty_for_consumer()) {
            return false;
        }
    }
    return true;
}

// Takes what the queues hold, up to batch_rows_max_: a batch is due at log_batch_rows
// rows, but a backlog (rows queued faster than batches commit) goes into fewer, larger
// transactions, whose fixed costs (BEGIN/COMMIT, one upsert per aggregate group and one
// update per key, the WAL frames of the index pages they touch) are then shared by more rows.
void Writer::drain_queues() {
    const uint32_t queue_count = uint32_t(queues_.size());
    const uint32_t capacity = batch_rows_max_;
    for (uint32_t step = 0; step < queue_count && batch_count_ < capacity; step++) {
        LogQueue& queue = *queues_[(drain_start_index_ + step) % queue_count];
        const bool was_empty = batch_count_ == 0;
        batch_count_ += queue.drain(&batch_[batch_count_], capacity - batch_count_);
        if (was_empty && batch_count_ > 0) {
            batch_deadline_ms_ = monotonic_ms() + config_.log_flush_ms;
        }
    }
    drain_start_index_ = (drain_start_index_ + 1) % queue_count;
    RW_ASSERT(batch_count_ <= capacity);
}

// Sleeps on the eventfd until woken or timeout_ms passes (-1: no timeout). `mode` tells
// notify() when a wake is worth a syscall.
void Writer::wait(Sleep mode, int64_t timeout_ms) {
    RW_ASSERT(mode != Sleep::awake);
    sleep_.store(mode, std::memory_order_relaxed);
    store_load_barrier();  // Pairs with notify()'s barrier.
    // A stop request is work for an idle or partial-batch wait, not for a backoff: the
    // retry after a failed commit still sleeps while stopping (run() bounds the sleep by
    // the drain deadline). Skipping it once spun a core on ~400 failing COMMITs a second.
    bool has_work = (mode == Sleep::idle && !queues_are_empty()) ||
                    has_commands_.load(std::memory_order_acquire) ||
                    (mode != Sleep::backoff && is_stop_requested_.load(std::memory_order_acquire));
    if (mode == Sleep::partial_batch) {
        for (const auto& queue : queues_) {  // The same test notify() makes.
            if (queue->depth() >= config_.log_batch_rows) {
                has_work = true;
            }
        }
    }
    if (!has_work) {
        pollfd poll_fd{event_fd_, POLLIN, 0};
        const int timeout = timeout_ms < 0 ? -1 : int(std::min<int64_t>(timeout_ms, 60000));
        const int ready = ::poll(&poll_fd, 1, timeout);
        RW_ASSERT(ready >= 0 || errno == EINTR);
        if (ready > 0) {
            uint64_t count = 0;
            // Resets the eventfd counter; EAGAIN if another read raced (none does).
            const ssize_t got = ::read(event_fd_, &count, sizeof(count));
            RW_ASSERT(got == sizeof(count) || errno == EAGAIN);
        }
    }
    sleep_.store(Sleep::awake, std::memory_order_relaxed);
}

void Writer::run() {
    RW_ASSERT(db_.is_open());
    RW_ASSERT(!is_running_.load());
    writer_thread_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    is_running_.store(true, std::memory_order_release);
    if (checkpointer_.is_open()) {
        checkpointer_.start();
    }
    for (;;) {
        if (has_commands_.load(std::memory_order_acquire)) {
            run_commands();
        }
        drain_queues();
        const bool is_stopping = is_stop_requested_.load(std::memory_order_acquire);
        const int64_t now_ms = monotonic_ms();
        if (is_stopping && batch_count_ > 0 && is_drain_expired()) {
            spill_everything();  // Commits failed until the drain deadline.
            break;
        }
        const bool is_due =
            batch_count_ >= config_.log_batch_rows || now_ms >= batch_deadline_ms_ || is_stopping;
        if (batch_count_ > 0 && is_due) {
            if (!commit_batch()) {
                // Keep the batch; the queues back up and shards answer 503 meanwhile.
                wait(Sleep::backoff, backoff_sleep_ms(is_stopping));
            } else {
                (void)retention_step(is_stopping);  // Under load: one step per batch.
            }
            continue;
        }
        if (is_stopping && batch_count_ == 0 && queues_are_empty()) {
            break;
        }
        if (retention_step(is_stopping)) {
            continue;  // Between batches; the queues are looked at again first.
        }
        const int64_t prune_wait_ms = std::max<int64_t>(0, next_retention_ms_ - now_ms);
        if (batch_count_ == 0) {
            wait(Sleep::idle, is_stopping ? -1 : prune_wait_ms);
        } else {
            wait(Sleep::partial_batch, std::min(batch_deadline_ms_ - now_ms, prune_wait_ms));
        }
    }
    RW_ASSERT(batch_count_ == 0);
    RW_ASSERT(queues_are_empty());
    checkpointer_.stop();
    fail_pending_commands();
    is_running_.store(false, std::memory_order_release);
}

// The retry backoff after a failed commit; while stopping, no longer than the drain
// deadline leaves.
int64_t Writer::backoff_sleep_ms(bool is_stopping) const {
    if (!is_stopping) {
        return backoff_ms_;
    }
    const int64_t left_ms = stop_deadline_ms_.load(std::memory_order_relaxed) - monotonic_ms();
    return std::clamp<int64_t>(left_ms, 0, backoff_ms_);
}

// One retention step when one is due (never while stopping: the drain comes first). True
// when a step ran; the next is due at once if it found work, else after retention_check_ms.
bool Writer::retention_step(bool is_stopping) {
    const int64_t now_ms = monotonic_ms();
    if (is_stopping || now_ms < next_retention_ms_) {
        return false;
    }
    const int64_t wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
    const bool has_more = retention_.step(wall_ms);
    next_retention_ms_ = has_more ? now_ms : now_ms + retention_check_ms;
    return true;
}

bool Writer::commit_batch() {
    RW_ASSERT(batch_count_ > 0);
    RW_ASSERT(!db_.in_transaction());
    const int64_t start_us = monotonic_us();
    const int64_t start_cpu_us = thread_cpu_us();
    commit_batch_aggregate();
    if (!commit_batch_statements() && !batch_was_committed()) {
        commit_failed(batch_count_, start_us);
        return false;
    }
    const int64_t latency_us = monotonic_us() - start_us;
    // The stall flag clears before the rows count: whoever sees the rows sees no stall
    // (WriterFault.ForeignWriteLockLongerThanBusyTimeout read them in the other order).
    const int64_t cpu_us = thread_cpu_us() - start_cpu_us;
    if (uint64_t(cpu_us) > batch_cpu_us_max_.load(std::memory_order_relaxed) && cpu_us > 0) {
        batch_cpu_us_max_.store(uint64_t(cpu_us), std::memory_order_relaxed);  // One writer.
    }
    commit_succeeded(uint64_t(latency_us > 0 ? latency_us : 0));
    rows_written_.fetch_add(batch_count_, std::memory_order_release);
    batch_count_ = 0;
    return true;
}

// PostgreSQL: a connection lost while COMMIT was on its way leaves the outcome unknown, and
// a retry of a committed batch would count it twice. The batch's first row, found by its
// request id (indexed) and its own measurements, says it did commit. SQLite always knows.
bool Writer::batch_was_committed() {
    const UsageRecord& first = batch_[0];
    if (!db_.is_postgres() || db_.last_error_kind() != DbErrorKind::io ||
        first.request_id[0] == '\0') {
        return false;
    }
    if (db_.in_transaction()) {
        (void)db_.step_done(rollback_);
    }
    Stmt seen;
    if (!db_.prepare("SELECT count(*) FROM usage_logs WHERE request_id = ?1 AND ts_ms = ?2"
                     " AND key_id = ?3 AND latency_us = ?4 AND bytes_in = ?5 AND bytes_out = ?6",
                     seen)) {
        return false;
    }
    seen.bind_text(1, record_text(first.request_id));
    seen.bind_int64(2, first.ts_ms);
    seen.bind_int64(3, first.key_id);
    seen.bind_int64(4, to_sql_int(first.latency_us));
    seen.bind_int64(5, to_sql_int(first.bytes_in));
    seen.bind_int64(6, to_sql_int(first.bytes_out));
    const bool is_seen = seen.step() == StepStatus::row && seen.column_int64(0) > 0;
    seen.reset();
    if (is_seen) {
        std::fprintf(stderr,
                     "ringway: writer: the connection broke at COMMIT; the batch of %u"
                     " rows had committed (not retried)\n",
                     batch_count_);
    }
    return is_seen;
}

// The transaction itself. False on the first failing statement, transaction possibly
// still open (the caller rolls back).
bool Writer::commit_batch_statements() {
    // COMMIT may fail with BUSY (a reader blocking a checkpoint is not one; a lock is);
    // the transaction then stays open and the caller rolls it back.
    return db_.step_done(begin_) && write_batch_rows() && db_.step_done(commit_);
}

namespace {

// A usage row's values bound at parameters first..first+26 (1-based), on PostgreSQL.
struct BindSink {
    Stmt& s;
    int index;
    void integer(int64_t value) { s.bind_int64(index, value); }
    void text(std::string_view text) { s.bind_text(index, text); }
    void named(uint8_t /*code*/, std::string_view name) { s.bind_static_text(index, name); }
    // An absent id binds the one static empty text: a statement that keeps its bindings
    // skips it where the row before had none either.
    void optional_text(std::string_view text) {
        static constexpr char empty[] = "";
        if (text.empty()) {
            s.bind_static_text(index, std::string_view(empty, 0));
        } else {
            s.bind_text(index, text);
        }
    }
    void null() { s.bind_int64_or_null(index, 0, true); }  // price_id: a typed NULL.
};

void bind_usage_row(Stmt& s, int first, const UsageRecord& record) {
    for (int column = 0; column < usage_log_column_count; column++) {
        BindSink sink{s, first + column};
        usage_column_put(record, column, sink);
    }
}

}  // namespace

bool Writer::prepare_insert_statements() {
    if (!db_.is_postgres()) {
        return db_.prepare(usage_rows_insert_sql(), insert_usage_rows_);
    }
    return db_.prepare(insert_usage_sql(1), insert_usage_) &&
           db_.prepare(insert_usage_sql(insert_rows_per_statement), insert_usage_many_) &&
           db_.prepare(insert_usage_sql(insert_rows_per_bulk_statement), insert_usage_bulk_);
}

// Rows [first, first + count) of the batch into usage_logs, in order: on SQLite one
// execution reading them from rw_usage_rows, on PostgreSQL multi-row INSERTs binding them.
bool Writer::insert_rows(uint32_t first, uint32_t count) {
    RW_ASSERT(first + count <= batch_count_);
    if (!db_.is_postgres()) {
        usage_rows_ = UsageRows{&batch_[first], count};
        const bool is_ok = db_.step_done(insert_usage_rows_);
        usage_rows_ = UsageRows{};
        return is_ok;
    }
    const uint32_t end = first + count;
    for (uint32_t index = first; index < end;) {
        const uint32_t left = end - index;
        Stmt* statement = &insert_usage_;
        uint32_t rows = 1;
        if (left >= insert_rows_per_bulk_statement) {
            statement = &insert_usage_bulk_;
            rows = insert_rows_per_bulk_statement;
        } else if (left >= insert_rows_per_statement) {
            statement = &insert_usage_many_;
            rows = insert_rows_per_statement;
        }
        for (uint32_t row = 0; row < rows; row++) {
            bind_usage_row(*statement, 1 + int(row) * usage_log_column_count, batch_[index + row]);
        }
        if (!db_.step_done(*statement)) {
            return false;
        }
        index += rows;
    }
    return true;
}

// The batch's rows, its per-(key, day, model, channel) sums and the keys' quota_used and
// spend_nano, inside the open transaction. commit_batch_aggregate() has run.
bool Writer::write_batch_rows() {
    RW_ASSERT(db_.in_transaction());
    // While the queues hold a backlog (the batch grew to twice log_batch_rows) the writer does
    // not yield: a shard sharing its CPU never blocks at full load, so each yield handed it
    // a whole time slice and the writer fell further behind until shards shed (503).
    const bool is_backlog = batch_count_ >= 2 * uint64_t(config_.log_batch_rows);
    uint32_t index = 0;
    while (index < batch_count_) {
        const uint32_t left = batch_count_ - index;
        const uint32_t rows = is_backlog ? left : std::min(left, writer_yield_rows);
        if (!insert_rows(index, rows)) {
            return false;
        }
        const uint32_t before = index;
        index += rows;
        if (!is_backlog && before / writer_yield_rows != index / writer_yield_rows) {
            // The writer usually shares a core with a shard. A 512-row batch is ~2.5 ms of
            // CPU, and a shard woken by I/O meanwhile was not let in until it ended (json
            // c=1 p99 on one CPU: 880-980 us; nice +10 or SCHED_BATCH on the writer did not
            // change it). Yielding every few rows lets a waiting shard in within ~0.15 ms
            // (p99 183 us); with nothing waiting the call returns at once.
            sched_yield();
        }
    }
    return commit_batch_aggregates();
}

void Writer::commit_failed(uint32_t attempt_rows, int64_t attempt_start_us) {
    const std::string error = db_.last_error();
    // SQLite may already have rolled back on FULL/IOERR/BUSY/NOMEM; ROLLBACK only if a
    // transaction is still open [sqlite3_get_autocommit(3)].
    if (db_.in_transaction() && !db_.step_done(rollback_)) {
        std::fprintf(stderr, "ringway: writer: ROLLBACK failed: %s\n", db_.last_error().c_str());
    }
    commit_errors_.fetch_add(1, std::memory_order_relaxed);
    is_stalled_.store(true, std::memory_order_relaxed);
    failure_streak_ += 1;
    if (failure_streak_ == 1) {
        // Never 0 (the "not stalled" value): the monotonic clock is far past 1 ms here.
        stalled_since_ms_.store(std::max<int64_t>(1, attempt_start_us / 1000),
                                std::memory_order_relaxed);
    }
    const uint32_t cap = config_.retry_backoff_ms_max;
    backoff_ms_ = backoff_ms_ == 0 ? 1 : std::min(cap, backoff_ms_ * 2);
    // Log the first failure and then every 64th, so a long stall does not flood journald.
    if (failure_streak_ == 1 || failure_streak_ % 64 == 0) {
        std::fprintf(stderr,
                     "ringway: writer: commit of %u rows failed (%s); batch kept, attempt %llu,"
                     " retrying in %u ms\n",
                     attempt_rows, error.c_str(), (unsigned long long)failure_streak_, backoff_ms_);
    }
    RW_ASSERT(!db_.in_transaction() || db_.last_error_kind() != DbErrorKind::none);
}

void Writer::commit_succeeded(uint64_t latency_us) {
    if (failure_streak_ > 0) {
        std::fprintf(stderr, "ringway: writer: commits recovered after %llu failed attempts\n",
                     (unsigned long long)failure_streak_);
    }
    failure_streak_ = 0;
    backoff_ms_ = 0;
    is_stalled_.store(false, std::memory_order_relaxed);
    stalled_since_ms_.store(0, std::memory_order_relaxed);
    batches_committed_.fetch_add(1, std::memory_order_relaxed);
    last_batch_latency_us_.store(latency_us, std::memory_order_relaxed);
    batch_latency_us_total_.fetch_add(latency_us, std::memory_order_relaxed);
    if (latency_us > batch_latency_us_max_.load(std::memory_order_relaxed)) {
        batch_latency_us_max_.store(latency_us, std::memory_order_relaxed);  // One writer.
    }
    uint32_t bucket = 0;
    while (bucket + 1 < writer_latency_bucket_count && (latency_us >> (bucket + 1)) != 0) {
        bucket += 1;
    }
    latency_histogram_[bucket].fetch_add(1, std::memory_order_relaxed);
}

// ---- The spill at the drain deadline, and its replay at the next open -------------------

bool Writer::is_drain_expired() const {
    return monotonic_ms() >= stop_deadline_ms_.load(std::memory_order_relaxed);
}

// Writer thread, stopping, commits still failing at the deadline: the batch and everything
// still queued go to the spill file. Shards have stopped pushing, so the queues only drain.
void Writer::spill_everything() {
    RW_ASSERT(is_stop_requested_.load(std::memory_order_acquire));
    RW_ASSERT(!db_.in_transaction());
    uint64_t total = 0;
    for (;;) {
        total += batch_count_;
        if (!spill_.append(batch_.get(), batch_count_) && spill_error_.empty()) {
            spill_error_ = std::string("writing ") + spill_.path() + ": " + std::strerror(errno);
        }
        batch_count_ = 0;
        drain_queues();
        if (batch_count_ == 0 && queues_are_empty()) {
            break;
        }
    }
    spilled_rows_ = spill_.rows_appended();
    if (spilled_rows_ > 0) {
        std::string error;
        if (!spill_.finish(error)) {
            spill_error_ = error;
            spilled_rows_ = 0;
        }
    }
    lost_rows_ = total - spilled_rows_;
    RW_ASSERT(spilled_rows_ + lost_rows_ == total);
    RW_ASSERT(batch_count_ == 0);
}

// Writer::open: commits the rows of a spill file the previous run left, unless its id is
// already in spill_replays (the replay committed, then the process died before the file
// was reset). A file that cannot be read as a spill stops startup: it may hold usage.
bool Writer::replay_spill(std::string& error) {
    const std::string path = spill_path(storage_local_path(config_));
    const SpillContents spill = spill_read(path);
    if (spill.state == SpillState::invalid) {
        error = "the spill file " + path + " cannot be replayed (" + spill.error +
                "); move it aside to start without its rows";
        return false;
    }
    if (spill.state != SpillState::rows || spill.rows.empty()) {
        return true;
    }
    Stmt seen;
    if (!db_.prepare("SELECT count(*) FROM spill_replays WHERE spill_id = ?1", seen)) {
        error = "reading spill_replays: " + db_.last_error();
        return false;
    }
    seen.bind_blob(1, std::span<const uint8_t>(spill.spill_id, sizeof(spill.spill_id)));
    const bool is_seen = seen.step() == StepStatus::row && seen.column_int64(0) > 0;
    seen.reset();
    if (is_seen) {
        return true;  // Committed by an earlier start; the new reserve overwrites the file.
    }
    if (!replay_rows(spill, error)) {
        if (db_.in_transaction()) {
            (void)db_.step_done(rollback_);
        }
        return false;
    }
    replayed_rows_ = spill.rows.size();
    return true;
}

bool Writer::replay_rows(const SpillContents& spill, std::string& error) {
    RW_ASSERT(batch_count_ == 0);
    const auto fail = [&](const char* step) {
        error = std::string("replaying ") + std::to_string(spill.rows.size()) +
                " spilled usage rows failed (" + step + "): " + db_.last_error();
        batch_count_ = 0;
        return false;
    };
    if (!db_.step_done(begin_)) {
        return fail("BEGIN");
    }
    // One transaction for every row and the marker: all of them exactly once, or none.
    for (size_t offset = 0; offset < spill.rows.size(); offset += config_.log_batch_rows) {
        batch_count_ =
            uint32_t(std::min<size_t>(config_.log_batch_rows, spill.rows.size() - offset));
        std::memcpy(batch_.get(), &spill.rows[offset], batch_count_ * sizeof(UsageRecord));
        commit_batch_aggregate();
        if (!write_batch_rows()) {
            return fail("insert");
        }
    }
    batch_count_ = 0;
    Stmt mark;
    if (!db_.prepare("INSERT INTO spill_replays (spill_id, rows, replayed_at)"
                     " VALUES (?1, ?2, ?3)",
                     mark)) {
        return fail("prepare");
    }
    mark.bind_blob(1, std::span<const uint8_t>(spill.spill_id, sizeof(spill.spill_id)));
    mark.bind_int64(2, int64_t(spill.rows.size()));
    mark.bind_int64(3, int64_t(std::time(nullptr)));
    if (!db_.step_done(mark) || !db_.step_done(commit_)) {
        return fail("commit");
    }
    rows_written_.fetch_add(spill.rows.size(), std::memory_order_relaxed);
    return true;
}

// ---- Control-plane commands ------------------------------------------------------------

bool Writer::execute(AdminFn fn, void* context, std::string& error, bool is_transaction) {
    RW_ASSERT(fn != nullptr);
    // The writer would wait for itself.
    RW_ASSERT(std::this_thread::get_id() != writer_thread_.load(std::memory_order_relaxed));
    Command command{fn, context, is_transaction, {}, {}, false, false, {}};
    {
        std::lock_guard<std::mutex> lock(command_mutex_);
        if (!is_accepting_commands_) {
            error = "storage writer is not running";
            return false;
        }
        commands_.push_back(&command);
        has_commands_.store(true, std::memory_order_release);
    }
    wake();
    std::unique_lock<std::mutex> lock(command.mutex);
    command.done_cv.wait(lock, [&command] { return command.is_done; });
    if (!command.is_ok) {
        error = command.error;
    }
    return command.is_ok;
}

void Writer::run_commands() {
    std::deque<Command*> pending;
    {
        std::lock_guard<std::mutex> lock(command_mutex_);
        pending.swap(commands_);
        has_commands_.store(false, std::memory_order_relaxed);
    }
    for (Command* command : pending) {
        run_one_command(*command);
    }
}

void Writer::run_one_command(Command& command) {
    RW_ASSERT(!db_.in_transaction());
    bool is_ok = true;
    std::string error;
    if (command.is_transaction && !db_.step_done(begin_)) {
        is_ok = false;
        error = db_.last_error();
    }
    if (is_ok && !command.fn(db_, command.context, error)) {
        is_ok = false;
        if (error.empty()) {
            error = db_.last_error();
        }
    }
    if (is_ok && command.is_transaction && !db_.step_done(commit_)) {
        is_ok = false;
        error = db_.last_error();
    }
    if (db_.in_transaction() && !db_.step_done(rollback_)) {
        std::fprintf(stderr, "ringway: writer: ROLLBACK failed: %s\n", db_.last_error().c_str());
    }
    RW_ASSERT(!db_.in_transaction());
    admin_commands_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(command.mutex);
    command.is_ok = is_ok;
    command.error = std::move(error);
    command.is_done = true;
    command.done_cv.notify_one();  // Under the mutex: the waiter owns `command`'s storage.
}

void Writer::fail_pending_commands() {
    std::deque<Command*> pending;
    {
        std::lock_guard<std::mutex> lock(command_mutex_);
        is_accepting_commands_ = false;
        pending.swap(commands_);
        has_commands_.store(false, std::memory_order_relaxed);
    }
    for (Command* command : pending) {
        std::lock_guard<std::mutex> lock(command->mutex);
        command->is_ok = false;
        command->error = "storage writer stopped";
        command->is_done = true;
        command->done_cv.notify_one();
    }
}

WriterStats Writer::stats() const {
    WriterStats stats;
    stats.rows_written = rows_written_.load(std::memory_order_relaxed);
    stats.batches_committed = batches_committed_.load(std::memory_order_relaxed);
    stats.commit_errors = commit_errors_.load(std::memory_order_relaxed);
    stats.last_batch_latency_us = last_batch_latency_us_.load(std::memory_order_relaxed);
    stats.batch_latency_us_max = batch_latency_us_max_.load(std::memory_order_relaxed);
    stats.batch_cpu_us_max = batch_cpu_us_max_.load(std::memory_order_relaxed);
    stats.batch_latency_us_total = batch_latency_us_total_.load(std::memory_order_relaxed);
    stats.is_stalled = is_stalled_.load(std::memory_order_relaxed);
    stats.admin_commands = admin_commands_.load(std::memory_order_relaxed);
    for (uint32_t index = 0; index < writer_latency_bucket_count; index++) {
        stats.latency_histogram[index] = latency_histogram_[index].load(std::memory_order_relaxed);
    }
    stats.wal = checkpointer_.stats();
    return stats;
}

}  // namespace rw
