// storage/config.h — the storage part of ringway's configuration. The core parses
// RINGWAY_* into this struct (core/config.cc); storage only validates relationships it
// relies on (storage_config_check). Plain struct, copied once at startup, never mutated.
#pragma once

#include <bit>
#include <cstdint>
#include <string>

#include "core/limits.h"

namespace rw {

struct StorageConfig {
    std::string db_path = "./var/ringway.db";  // RINGWAY_DB: a file or a postgres:// URL.
    // RINGWAY_DB_LOCAL with PostgreSQL: the local file that is locked and names the spill
    // file. Empty with SQLite: the database file itself serves (storage_local_path).
    std::string local_path;
    // With PostgreSQL: this host's name in budget_leases (lease_host_id: hostname and
    // local_path); empty with SQLite. Budget words then count this host's own use.
    std::string lease_host;
    bool synchronous_full = false;    // RINGWAY_DB_SYNCHRONOUS=full: FULL instead of NORMAL.
    uint32_t log_batch_rows = 512;    // RINGWAY_LOG_BATCH: rows per transaction.
    uint32_t log_flush_ms = 50;       // RINGWAY_LOG_FLUSH_MS: oldest row waits at most.
    uint32_t busy_timeout_ms = 5000;  // sqlite3_busy_timeout on every connection.
    uint32_t queue_slots = 16384;     // RINGWAY_LOG_QUEUE_SLOTS: per shard; power of two.
    // PRAGMA cache_size = -cache_kib (KiB), per connection. The writer appends at the right
    // edge of usage_logs and at one point per active key of its (key_id, ts_ms) index:
    // 8 MiB (2048 pages) holds that working set. 64 MiB made the writer bench slower (150k
    // vs 195k rows/s at 512 a batch) and the gateway's anonymous RSS under load 141 MB
    // instead of 72 MB.
    int64_t cache_kib = 8 * 1024;
    int64_t mmap_bytes = 256ll * 1024 * 1024;  // PRAGMA mmap_size.
    // PRAGMA page_size of a database this process creates (an existing one keeps its own: in
    // WAL mode SQLite cannot change it). 16 KiB: a batch's rows take a quarter of the WAL
    // frames 4 KiB pages did, so a quarter of the write(2)s and of the checkpoint's copies
    // (bench/micro/writer_bench: 2,082 pwrite(2)s per 100,000 rows instead of 10,330).
    int64_t page_bytes = 16384;
    // WAL truncated to this after ckpt; the writer's own connection uses wal_checkpoint_bytes.
    int64_t journal_size_limit_bytes = 64ll * 1024 * 1024;
    // The writer's WAL checkpoints (storage/wal_checkpointer.h; RINGWAY_WAL_CHECKPOINT_BYTES
    // and RINGWAY_WAL_MAX_BYTES): a commit that leaves the WAL at wal_checkpoint_bytes or
    // more (SQLite's own auto-checkpoint point is 1,000 pages, ~4 MB of 4-KiB pages) wakes
    // the checkpoint thread; one that leaves it at wal_bytes_max or more checkpoints inline,
    // so the WAL stays under twice that; its file is cut back to wal_checkpoint_bytes each
    // time it starts over.
    uint64_t wal_checkpoint_bytes = 4ll * 1024 * 1024;
    uint64_t wal_bytes_max = 32ll * 1024 * 1024;
    uint32_t retry_backoff_ms_max = 1000;  // Writer's bounded exponential backoff cap.
    // RINGWAY_WRITER_DRAIN_MS: after request_stop(), commits are retried this long; what is
    // still uncommitted then goes to the spill file (storage/spill.h) and run() returns.
    uint32_t drain_timeout_ms = 10000;
    // RINGWAY_WRITER_STALL_MS: once commits have failed this long, shards refuse new
    // requests (Writer::is_refusing) instead of serving what may never be recorded.
    uint32_t stall_refuse_ms = 2000;
    uint32_t retention_days = 90;  // RINGWAY_LOG_RETENTION_DAYS: usage_logs rows kept.
    uint64_t db_max_bytes = 0;     // RINGWAY_DB_MAX_BYTES: soft cap on live data; 0: none.
    uint32_t keys_max = 1u << 20;  // In-memory quota counter slots.
    // RINGWAY_SECRET_KEY_FILE's key (32 bytes) sealing channel keys at rest; empty: none,
    // channel keys are stored as plain text (storage/secrets.h).
    std::string secret_key;
};

// The local file that is locked while a process uses the database and beside which the
// spill file lives (<path>.spill): the SQLite file, or RINGWAY_DB_LOCAL with PostgreSQL.
[[nodiscard]] inline const std::string& storage_local_path(const StorageConfig& config) {
    return config.local_path.empty() ? config.db_path : config.local_path;
}

// Returns an empty string when the config is usable, otherwise one clear line naming the
// offending variable. Called by the core's config validation and by Writer::open.
[[nodiscard]] inline std::string storage_config_check(const StorageConfig& config) {
    if (config.db_path.empty()) {
        return "RINGWAY_DB must not be empty";
    }
    if (config.log_batch_rows == 0 || config.log_batch_rows > log_batch_rows_max) {
        return "RINGWAY_LOG_BATCH must be in 1.." + std::to_string(log_batch_rows_max);
    }
    if (config.log_flush_ms == 0 || config.log_flush_ms > 60000) {
        return "RINGWAY_LOG_FLUSH_MS must be in 1..60000";
    }
    if (config.queue_slots < 2 || !std::has_single_bit(config.queue_slots) ||
        config.queue_slots > log_queue_slots_max) {
        return "RINGWAY_LOG_QUEUE_SLOTS must be a power of two in 2.." +
               std::to_string(log_queue_slots_max);
    }
    if (config.log_batch_rows > config.queue_slots * uint64_t(storage_shards_max)) {
        return "RINGWAY_LOG_BATCH exceeds the total queue capacity";
    }
    if (config.wal_checkpoint_bytes == 0 || config.wal_bytes_max < config.wal_checkpoint_bytes) {
        return "the WAL checkpoint bounds must be 1 <= wal_checkpoint_bytes <= wal_bytes_max";
    }
    if (config.page_bytes < 512 || config.page_bytes > 65536 ||
        !std::has_single_bit(uint64_t(config.page_bytes))) {
        return "the SQLite page size must be a power of two in 512..65536";
    }
    if (config.keys_max == 0) {
        return "keys_max must be positive";
    }
    if (config.drain_timeout_ms == 0 || config.drain_timeout_ms > 3600000) {
        return "RINGWAY_WRITER_DRAIN_MS must be in 1..3600000";
    }
    if (config.stall_refuse_ms == 0 || config.stall_refuse_ms > 3600000) {
        return "RINGWAY_WRITER_STALL_MS must be in 1..3600000";
    }
    if (config.retention_days == 0 || config.retention_days > 36500) {
        return "RINGWAY_LOG_RETENTION_DAYS must be in 1..36500";
    }
    if (config.retry_backoff_ms_max == 0) {
        return "retry backoff cap must be positive";
    }
    return {};
}

}  // namespace rw
