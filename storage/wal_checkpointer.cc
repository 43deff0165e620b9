// storage/wal_checkpointer.cc — the WAL hook on the writer's connection and the checkpoint
// thread (see wal_checkpointer.h).
#include "storage/wal_checkpointer.h"

#include <pthread.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "core/assert.h"

namespace rw {

WalCheckpointer::~WalCheckpointer() {
    stop();
}

bool WalCheckpointer::open(const StorageConfig& config, Db& writer, std::string& error) {
    RW_ASSERT(!db_.is_open());
    RW_ASSERT(writer.is_open() && !writer.is_postgres());
    RW_ASSERT(config.wal_checkpoint_bytes >= 1);
    RW_ASSERT(config.wal_bytes_max >= config.wal_checkpoint_bytes);
    // The hook counts pages: the bounds in this database's own page size.
    const Result<int64_t> page_bytes = writer.query_int64("PRAGMA page_size");
    if (!page_bytes.ok() || page_bytes.value <= 0) {
        error = "reading the page size of " + config.db_path + ": " + page_bytes.error;
        return false;
    }
    page_bytes_ = uint32_t(page_bytes.value);
    checkpoint_pages_ =
        uint32_t(std::max<uint64_t>(1, config.wal_checkpoint_bytes / uint64_t(page_bytes.value)));
    pages_max_ = uint32_t(
        std::max<uint64_t>(checkpoint_pages_, config.wal_bytes_max / uint64_t(page_bytes.value)));
    // Each time the WAL starts over, the writer cuts its file back to the checkpoint point
    // [pragma.html#pragma_journal_size_limit]: under load the WAL grows towards the bound
    // before it can start over, and its file would otherwise keep that size on disk.
    char sql[64];
    std::snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit=%llu",
                  (unsigned long long)config.wal_checkpoint_bytes);
    if (!writer.exec(sql)) {
        error = "setting the writer's journal_size_limit: " + writer.last_error();
        return false;
    }
    // Read-write: a checkpoint writes the database file. It never begins a transaction.
    if (!db_.open(config, DbMode::read_write, error)) {
        error = "opening the WAL checkpoint connection: " + error;
        return false;
    }
    // Replaces SQLite's auto-checkpoint hook on the writer's connection
    // [sqlite3_wal_hook(3): "overwrites any prior sqlite3_wal_autocheckpoint() settings"].
    (void)sqlite3_wal_hook(writer.sqlite_connection(), wal_hook, this);
    return true;
}

void WalCheckpointer::start() {
    RW_ASSERT(db_.is_open());
    RW_ASSERT(!thread_.joinable());
    {
        std::lock_guard<std::mutex> lock(mutex_);
        is_stopping_ = false;
    }
    is_thread_running_.store(true, std::memory_order_release);
    thread_ = std::thread([this] { run(); });
}

void WalCheckpointer::stop() {
    if (!thread_.joinable()) {
        return;
    }
    is_thread_running_.store(false, std::memory_order_release);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        is_stopping_ = true;
    }
    wake_cv_.notify_one();
    thread_.join();
}

// On the writer's thread, after each commit of its connection, the write lock already
// released [sqlite3_wal_hook(3)]. `pages`: the WAL's frames since it last started over.
int WalCheckpointer::wal_hook(void* self, sqlite3* connection, const char* /*schema*/, int pages) {
    static_cast<WalCheckpointer*>(self)->after_commit(connection, uint32_t(pages > 0 ? pages : 0));
    return SQLITE_OK;
}

void WalCheckpointer::after_commit(sqlite3* writer, uint32_t pages) {
    if (pages > wal_pages_max_.load(std::memory_order_relaxed)) {
        wal_pages_max_.store(pages, std::memory_order_relaxed);  // Only the writer stores.
    }
    if (pages < checkpoint_pages_) {
        return;
    }
    // Without the thread (before run(), after it) this is SQLite's own auto-checkpoint. At
    // pages_max the writer copies what the thread has not: at once when the thread is between
    // checkpoints (little is left then), else at a later commit; at twice the bound it waits.
    const bool has_thread = is_thread_running_.load(std::memory_order_acquire);
    if (!has_thread || pages >= pages_max_) {
        const bool must_wait = !has_thread || pages >= 2 * uint64_t(pages_max_);
        if (checkpoint(writer, must_wait)) {
            inline_.fetch_add(1, std::memory_order_relaxed);
            return;
        }
    }
    bool is_new = false;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        is_new = !is_requested_;
        is_requested_ = true;
    }
    if (is_new) {
        wake_cv_.notify_one();
    }
}

void WalCheckpointer::run() {
    (void)pthread_setname_np(pthread_self(), "rw-checkpoint");  // For ps -L, top -H, perf.
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_cv_.wait(lock, [this] { return is_requested_ || is_stopping_; });
            if (is_stopping_) {
                return;
            }
            is_requested_ = false;
        }
        if (checkpoint(db_.sqlite_connection(), true)) {
            background_.fetch_add(1, std::memory_order_relaxed);
        }
        timespec cpu{};
        (void)clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
        thread_cpu_us_.store(uint64_t(cpu.tv_sec) * 1000000 + uint64_t(cpu.tv_nsec) / 1000,
                             std::memory_order_relaxed);
    }
}

// One PASSIVE checkpoint on `connection`, after any other of ours (or none, when one is running
// and !must_wait): true when it ran (whatever it could copy), false when it did not, or
// another process's checkpoint held SQLite's lock (BUSY), or it failed (counted, logged).
bool WalCheckpointer::checkpoint(sqlite3* connection, bool must_wait) {
    std::unique_lock<std::mutex> lock(checkpoint_mutex_, std::defer_lock);
    if (must_wait) {
        lock.lock();
    } else if (!lock.try_lock()) {
        return false;
    }
    int wal_pages = 0;
    int copied_pages = 0;
    const int rc = sqlite3_wal_checkpoint_v2(connection, nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                             &wal_pages, &copied_pages);
    if (rc == SQLITE_OK) {
        return true;
    }
    if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) {
        // Nothing is lost: the WAL holds every commit; it only grows until one succeeds.
        if (failed_.fetch_add(1, std::memory_order_relaxed) % 64 == 0) {
            std::fprintf(stderr, "ringway: writer: WAL checkpoint failed: %s\n",
                         sqlite3_errmsg(connection));
        }
    }
    return false;
}

WalCheckpointStats WalCheckpointer::stats() const {
    WalCheckpointStats stats;
    stats.background = background_.load(std::memory_order_relaxed);
    stats.inline_ = inline_.load(std::memory_order_relaxed);
    stats.failed = failed_.load(std::memory_order_relaxed);
    stats.wal_pages_max = wal_pages_max_.load(std::memory_order_relaxed);
    stats.wal_bytes_max = stats.wal_pages_max * page_bytes_;
    stats.thread_cpu_us = thread_cpu_us_.load(std::memory_order_relaxed);
    return stats;
}

}  // namespace rw
