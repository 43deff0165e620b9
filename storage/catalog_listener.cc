// storage/catalog_listener.cc — see catalog_listener.h. Its own PostgreSQL connection,
// blocking in poll(2) at most listen_poll_ms at a time so stop() is prompt.
#include "storage/catalog_listener.h"

#include <pthread.h>

#include <chrono>
#include <cstdio>

namespace rw {

bool CatalogListener::start(const StorageConfig& config, SnapshotStore& snapshots,
                            std::string& error) {
    if (!db_.open(config, DbMode::read_only, error)) {
        return false;
    }
    if (!db_.pg_listen(catalog_channel)) {
        error = "LISTEN " + std::string(catalog_channel) + ": " + db_.last_error();
        return false;
    }
    snapshots_ = &snapshots;
    thread_ = std::thread([this] {
        (void)pthread_setname_np(pthread_self(), "rw-catalog");
        run();
    });
    return true;
}

void CatalogListener::stop() {
    is_stopping_.store(true, std::memory_order_relaxed);
    if (thread_.joinable()) {
        thread_.join();
    }
}

void CatalogListener::run() {
    int backoff_ms = 0;
    bool needs_reload = false;  // After a reconnect: what was sent meanwhile is lost.
    while (!is_stopping_.load(std::memory_order_relaxed)) {
        if (backoff_ms > 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
            if (!db_.pg_reconnect() || !db_.pg_listen(catalog_channel)) {
                backoff_ms = std::min(backoff_ms * 2, 5000);
                continue;
            }
            std::fprintf(stderr, "ringway: catalog listener reconnected\n");
            backoff_ms = 0;
            needs_reload = true;
        }
        const int count = needs_reload ? 1 : db_.pg_wait_notifications(listen_poll_ms);
        if (count < 0) {
            std::fprintf(stderr, "ringway: catalog listener lost its connection: %s\n",
                         db_.last_error().c_str());
            backoff_ms = 100;
            continue;
        }
        if (count == 0) {
            continue;
        }
        std::string error;
        if (snapshots_->reload(error)) {
            const uint64_t reloads = reloads_.fetch_add(1, std::memory_order_relaxed) + 1;
            needs_reload = false;
            std::fprintf(stderr, "ringway: catalog: reloaded after a notification (%llu)\n",
                         (unsigned long long)reloads);
        } else {
            std::fprintf(stderr, "ringway: catalog reload after a notification failed: %s\n",
                         error.c_str());
            needs_reload = true;
            std::this_thread::sleep_for(std::chrono::milliseconds(listen_poll_ms));
        }
    }
}

}  // namespace rw
