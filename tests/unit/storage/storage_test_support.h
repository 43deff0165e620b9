// tests/unit/storage/storage_test_support.h — helpers shared by the storage unit tests:
// a fresh temp directory per test (removed afterwards), a small-timeout StorageConfig,
// record construction, and deadline-based waiting (no fixed sleeps).
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "storage/config.h"
#include "storage/records.h"

namespace rw::test {

class TempDir {
public:
    TempDir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "rw-storage-XXXXXX").string();
        char* made = ::mkdtemp(pattern.data());
        EXPECT_NE(made, nullptr);
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string path_;
};

inline StorageConfig test_config(const TempDir& dir) {
    StorageConfig config;
    config.db_path = dir.path() + "/ringway.db";
    config.busy_timeout_ms = 50;
    config.log_batch_rows = 64;
    config.log_flush_ms = 5;
    config.queue_slots = 1024;
    config.cache_kib = 2048;
    config.mmap_bytes = 8 * 1024 * 1024;
    config.retry_backoff_ms_max = 20;
    config.keys_max = 1024;
    config.retention_days = 36500;  // Records are dated 2023: keep them unless a test prunes.
    return config;
}

// A record whose request_id is "req-<sequence>" so tests can count each exactly once.
inline UsageRecord make_record(uint64_t sequence, int64_t key_id, uint32_t total_tokens,
                               int64_t ts_ms = 1700000000000) {
    UsageRecord record{};
    record.ts_ms = ts_ms;
    record.key_id = key_id;
    record.channel_id = 7;
    record.prompt_tokens = total_tokens / 2;
    record.completion_tokens = total_tokens - total_tokens / 2;
    record.total_tokens = total_tokens;
    // Kinds and money vary with the sequence so sums catch a dropped or doubled column:
    // every third record is unpriced (no price, cost 0).
    record.cached_input_tokens = record.prompt_tokens / 4;
    record.cache_write_tokens = record.prompt_tokens / 8;
    record.reasoning_tokens = record.completion_tokens / 3;
    record.price_id = sequence % 3 == 0 ? 0 : 5;
    record.cost_nano = record.price_id == 0 ? 0 : int64_t(sequence) * 1'000'003 + total_tokens;
    record.status = 200;
    record.attempts = 1;
    record.latency_us = 1000 + sequence;
    record.ttfb_us = 100;
    record.bytes_in = 300;
    record.bytes_out = 900;
    record.usage_source = UsageSource::reported;
    record.end_reason = EndReason::complete;
    record_set_text(record.model_requested, "gpt-4o-mini");
    record_set_text(record.model_sent, "gpt-4o-mini-2024-07-18");
    record_set_text(record.endpoint, "/v1/chat/completions");
    record_set_text(record.request_id, "req-" + std::to_string(sequence));
    return record;
}

// Polls `predicate` every millisecond until it holds or `timeout` passes.
template <class Predicate>
[[nodiscard]] bool wait_until(Predicate predicate,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!predicate()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

}  // namespace rw::test
