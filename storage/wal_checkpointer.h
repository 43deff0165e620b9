// storage/wal_checkpointer.h — WalCheckpointer, SQLite's WAL checkpoints off the writer's
// commit path. With SQLite's own auto-checkpoint the COMMIT that takes the WAL past 1,000
// pages copies the WAL into the database and syncs both files before it returns, so every
// few batches the writer thread waited on the disk with the next batch queued behind it.
// Here the writer's connection gets a WAL hook instead (which turns SQLite's auto-checkpoint
// off): past checkpoint_pages it wakes this thread, whose own read-write connection runs a
// PASSIVE checkpoint (it never blocks the writer or a reader: it copies what no reader still
// needs). A PASSIVE checkpoint cannot catch a writer that keeps appending, and the WAL only
// starts over once everything in it was copied, so the WAL is bounded by the writer itself:
// a commit that finds it at pages_max or more runs a PASSIVE checkpoint inline (only the
// frames the thread has not copied) when the thread is between checkpoints, and at twice
// pages_max waits for the thread's to end first; the next transaction then restarts the WAL
// from its head. So after any commit the WAL holds at most 2 x pages_max plus that commit's
// pages, unless a reader's open transaction still needs old frames (SQLite's own rule: then
// no checkpoint can copy past them).
// SQLite only; one writer connection per WalCheckpointer.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "storage/config.h"
#include "storage/db.h"

struct sqlite3;

namespace rw {

// A point-in-time copy of the checkpoint counters (each read relaxed).
struct WalCheckpointStats {
    uint64_t background = 0;     // Checkpoints run on the checkpoint thread.
    uint64_t inline_ = 0;        // Checkpoints the writer ran itself at pages_max.
    uint64_t failed = 0;         // Checkpoint calls that returned an error other than BUSY.
    uint64_t wal_pages_max = 0;  // The most pages the WAL held after a commit.
    uint64_t wal_bytes_max = 0;  // The same in bytes (pages of this database's page size).
    uint64_t thread_cpu_us = 0;  // CPU time the checkpoint thread has used.
};

class WalCheckpointer {
public:
    WalCheckpointer() = default;
    WalCheckpointer(const WalCheckpointer&) = delete;
    WalCheckpointer& operator=(const WalCheckpointer&) = delete;
    ~WalCheckpointer();

    // Opens this thread's own connection to config.db_path and installs the WAL hook on
    // `writer` (an open SQLite read-write connection that must outlive nothing of ours:
    // close it first, or call stop()). False with one clear line in `error`.
    [[nodiscard]] bool open(const StorageConfig& config, Db& writer, std::string& error);
    [[nodiscard]] bool is_open() const { return db_.is_open(); }
    // Starts the checkpoint thread (a request made before it runs is served at once).
    void start();
    // Joins the thread; idempotent. The writer's commits after this checkpoint inline only.
    void stop();

    [[nodiscard]] WalCheckpointStats stats() const;

private:
    static int wal_hook(void* self, sqlite3* connection, const char* schema, int pages);
    void after_commit(sqlite3* writer, uint32_t pages);
    void run();
    bool checkpoint(sqlite3* connection, bool must_wait);

    Db db_;
    std::thread thread_;
    uint32_t checkpoint_pages_ = 0;
    uint32_t pages_max_ = 0;
    uint32_t page_bytes_ = 0;
    // Held for each checkpoint, by either thread: the writer's at pages_max waits for the
    // thread's to end instead of failing BUSY and letting the WAL grow past the bound.
    std::mutex checkpoint_mutex_;
    std::mutex mutex_;  // Guards is_requested_ and is_stopping_.
    std::condition_variable wake_cv_;
    bool is_requested_ = false;
    bool is_stopping_ = false;
    std::atomic<bool> is_thread_running_{false};
    std::atomic<uint64_t> background_{0};
    std::atomic<uint64_t> inline_{0};
    std::atomic<uint64_t> failed_{0};
    std::atomic<uint64_t> wal_pages_max_{0};
    std::atomic<uint64_t> thread_cpu_us_{0};
};

}  // namespace rw
