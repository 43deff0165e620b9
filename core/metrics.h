// core/metrics.h — per-shard counters, written only by their shard thread and read by
// whichever thread renders /metrics. A counter is a relaxed atomic with a single writer,
// so an increment is a plain load and store (no lock prefix) and a scrape never blocks
// a shard. The scrape sums the shards (Prometheus text format).
#pragma once

#include <atomic>
#include <cstdint>

#include "core/limits.h"

namespace rw {

struct Counter {
    std::atomic<uint64_t> value{0};

    // Single writer: the owning shard. Not a read-modify-write on purpose.
    void add(uint64_t n = 1) {
        value.store(value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    // An increment that publishes: a reader whose get_acquire() sees it also sees every
    // store this shard made before it (other counters included).
    void add_release(uint64_t n = 1) {
        value.store(value.load(std::memory_order_relaxed) + n, std::memory_order_release);
    }
    void set(uint64_t n) { value.store(n, std::memory_order_relaxed); }
    uint64_t get() const { return value.load(std::memory_order_relaxed); }
    uint64_t get_acquire() const { return value.load(std::memory_order_acquire); }
};

constexpr uint32_t status_class_count = 5;  // 1xx .. 5xx

enum class TimeoutPhase : uint8_t { header, body, keepalive, send, count_ };

struct alignas(64) ShardMetrics {
    Counter requests_by_class[status_class_count];
    Counter connections_accepted;
    Counter connections_active;   // Gauge.
    Counter connections_refused;  // At RINGWAY_MAX_CONNECTIONS.
    Counter connections_evicted;  // Idle keep-alive connections closed to make room.
    Counter stream_buffer_bytes;  // Gauge: recv-buffer bytes lent to client sends.
    Counter stream_reads_paused;  // Upstream reads paused at RINGWAY_STREAM_BUFFER_BYTES.
    Counter parse_errors[parse_error_kinds_max];
    Counter loop_iterations;
    Counter arena_chunks_in_use;  // Gauge, published once per loop turn.
    Counter pool_bytes_in_use;    // Gauge: chunk pool bytes held by arenas (chunks + blocks).
    Counter pool_bytes_cached;    // Gauge: chunk pool bytes kept for reuse.
    Counter pool_bytes_trimmed;   // Cached bytes given back to the allocator (idle trim).
    Counter head_refusals;        // Requests the handler refused at their head (before the body).
    Counter recv_buffer_exhausted;
    Counter timeouts[static_cast<uint32_t>(TimeoutPhase::count_)];
    Counter heap_allocations;  // Incremented by the counting allocator on this shard.
};

// The counting allocator (core/alloc_count.cc) adds one to this thread's counter, if
// the thread has one, for every heap allocation. Shards install theirs at start.
void alloc_count_bind_thread(Counter* counter);

// Counts one allocation for this thread (used by the malloc wrappers).
void alloc_count_note();

// Renders every shard's metrics, summed (and per shard where the label is the shard),
// as Prometheus text into out. Returns the bytes written; never more than capacity.
// extra is appended verbatim (metrics of other subsystems), truncated at capacity.
uint32_t metrics_render(char* out, uint32_t capacity, const ShardMetrics* const* shards,
                        uint32_t shard_count);

}  // namespace rw
