// storage/catalog_listener.h — several ringways on one PostgreSQL see each other's
// catalog writes at once: every admin write NOTIFYs catalog_channel in its transaction
// (delivered at COMMIT; Catalog), and each host runs one CatalogListener thread (never a
// shard) that LISTENs on its own connection and reloads the snapshot when one arrives. A
// broken connection is reopened with backoff and followed by a reload (notifications sent
// meanwhile are lost, the reload catches up). Not used with SQLite (one host).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "storage/config.h"
#include "storage/snapshot.h"

namespace rw {

inline constexpr const char* catalog_channel = "ringway_catalog";

class CatalogListener {
public:
    CatalogListener() = default;
    CatalogListener(const CatalogListener&) = delete;
    CatalogListener& operator=(const CatalogListener&) = delete;
    ~CatalogListener() { stop(); }

    // Connects and LISTENs (false with `error` when that fails), then starts the thread.
    [[nodiscard]] bool start(const StorageConfig& config, SnapshotStore& snapshots,
                             std::string& error);
    // Stops and joins the thread (within ~listen_poll_ms). Idempotent.
    void stop();
    // Snapshot reloads caused by notifications or reconnects (tests, metrics).
    [[nodiscard]] uint64_t reloads() const { return reloads_.load(std::memory_order_relaxed); }

private:
    void run();

    static constexpr int listen_poll_ms = 200;
    Db db_;
    SnapshotStore* snapshots_ = nullptr;
    std::thread thread_;
    std::atomic<bool> is_stopping_{false};
    std::atomic<uint64_t> reloads_{0};
};

}  // namespace rw
