// core/metrics.cc — Prometheus text rendering of the shards' counters. Runs on the shard
// that serves GET /metrics, into that request's arena: snprintf into a fixed buffer, no
// heap. Reads other shards' counters with relaxed loads (a scrape is a sample, not a
// snapshot).
#include "core/metrics.h"

#include <cstdarg>
#include <cstdio>

#include "core/http_parse.h"

namespace rw {
namespace {

struct TextOut {
    char* out;
    uint32_t capacity;
    uint32_t used = 0;

    [[gnu::format(printf, 2, 3)]] void line(const char* format, ...) {
        if (used >= capacity) {
            return;
        }
        va_list args;
        va_start(args, format);
        const int written = std::vsnprintf(out + used, capacity - used, format, args);
        va_end(args);
        if (written > 0) {
            const uint32_t room = capacity - used;
            used += static_cast<uint32_t>(written) < room ? static_cast<uint32_t>(written) : room;
        }
    }
};

template <class Field>
uint64_t sum(const ShardMetrics* const* shards, uint32_t shard_count, Field field) {
    uint64_t total = 0;
    for (uint32_t i = 0; i < shard_count; i++) {
        total += field(*shards[i]).get();
    }
    return total;
}

const char* const timeout_phase_names[] = {"header", "body", "keepalive", "send"};
static_assert(sizeof(timeout_phase_names) / sizeof(timeout_phase_names[0]) ==
              static_cast<uint32_t>(TimeoutPhase::count_));
static_assert(static_cast<uint32_t>(ParseError::count_) <= parse_error_kinds_max);

// The shards' request memory: the chunk pools' bytes in use and cached, what the idle
// trim gave back, and the requests refused at their head (whose bodies took none).
void render_pool(TextOut& text, const ShardMetrics* const* shards, uint32_t shard_count) {
    text.line("# HELP ringway_arena_pool_bytes Request memory of the shards' chunk pools.\n");
    text.line("# TYPE ringway_arena_pool_bytes gauge\n");
    text.line("ringway_arena_pool_bytes{state=\"in_use\"} %lu\n",
              sum(shards, shard_count,
                  [](const ShardMetrics& m) -> const Counter& { return m.pool_bytes_in_use; }));
    text.line("ringway_arena_pool_bytes{state=\"cached\"} %lu\n",
              sum(shards, shard_count,
                  [](const ShardMetrics& m) -> const Counter& { return m.pool_bytes_cached; }));
    text.line(
        "# HELP ringway_arena_pool_trimmed_bytes_total Cached pool memory idle for "
        "RINGWAY_POOL_TRIM_MS and given back.\n");
    text.line("# TYPE ringway_arena_pool_trimmed_bytes_total counter\n");
    text.line("ringway_arena_pool_trimmed_bytes_total %lu\n",
              sum(shards, shard_count,
                  [](const ShardMetrics& m) -> const Counter& { return m.pool_bytes_trimmed; }));
    text.line(
        "# HELP ringway_head_refusals_total Requests refused at their head, before any body "
        "was stored.\n");
    text.line("# TYPE ringway_head_refusals_total counter\n");
    text.line("ringway_head_refusals_total %lu\n",
              sum(shards, shard_count,
                  [](const ShardMetrics& m) -> const Counter& { return m.head_refusals; }));
}

// The connection cap's evictions and the slow-client bound on relayed streams.
void render_capacity(TextOut& text, const ShardMetrics* const* shards, uint32_t shard_count) {
    text.line(
        "# HELP ringway_connections_evicted_total Idle keep-alive connections closed (oldest "
        "first) to make room for a new one at the connection cap.\n");
    text.line("# TYPE ringway_connections_evicted_total counter\n");
    text.line("ringway_connections_evicted_total %lu\n",
              sum(shards, shard_count,
                  [](const ShardMetrics& m) -> const Counter& { return m.connections_evicted; }));
    text.line(
        "# HELP ringway_stream_buffer_bytes Recv-buffer bytes relayed streams hold while their "
        "clients read.\n");
    text.line("# TYPE ringway_stream_buffer_bytes gauge\n");
    text.line("ringway_stream_buffer_bytes %lu\n",
              sum(shards, shard_count,
                  [](const ShardMetrics& m) -> const Counter& { return m.stream_buffer_bytes; }));
    text.line(
        "# HELP ringway_stream_reads_paused_total Upstream reads of a stream paused because its "
        "client fell behind (send queue full or RINGWAY_STREAM_BUFFER_BYTES held).\n");
    text.line("# TYPE ringway_stream_reads_paused_total counter\n");
    text.line("ringway_stream_reads_paused_total %lu\n",
              sum(shards, shard_count,
                  [](const ShardMetrics& m) -> const Counter& { return m.stream_reads_paused; }));
}

}  // namespace

uint32_t metrics_render(char* out, uint32_t capacity, const ShardMetrics* const* shards,
                        uint32_t shard_count) {
    TextOut text{out, capacity};
    text.line("# HELP ringway_requests_total Responses sent, by status class.\n");
    text.line("# TYPE ringway_requests_total counter\n");
    for (uint32_t c = 0; c < status_class_count; c++) {
        text.line("ringway_requests_total{class=\"%uxx\"} %lu\n", c + 1,
                  sum(shards, shard_count, [c](const ShardMetrics& m) -> const Counter& {
                      return m.requests_by_class[c];
                  }));
    }
    text.line("# HELP ringway_connections_active Client connections open now.\n");
    text.line("# TYPE ringway_connections_active gauge\n");
    text.line("ringway_connections_active %lu\n",
              sum(shards, shard_count,
                  [](const ShardMetrics& m) -> const Counter& { return m.connections_active; }));
    text.line("# TYPE ringway_connections_accepted_total counter\n");
    text.line("ringway_connections_accepted_total %lu\n",
              sum(shards, shard_count,
                  [](const ShardMetrics& m) -> const Counter& { return m.connections_accepted; }));
    text.line(
        "# HELP ringway_connections_refused_total Accepted then closed at the connection cap.\n");
    text.line("# TYPE ringway_connections_refused_total counter\n");
    text.line("ringway_connections_refused_total %lu\n",
              sum(shards, shard_count,
                  [](const ShardMetrics& m) -> const Counter& { return m.connections_refused; }));
    render_capacity(text, shards, shard_count);
    text.line("# HELP ringway_parse_errors_total Requests refused by the HTTP parser, by kind.\n");
    text.line("# TYPE ringway_parse_errors_total counter\n");
    for (uint32_t k = 1; k < static_cast<uint32_t>(ParseError::count_); k++) {
        const std::string_view code = parse_error_code(static_cast<ParseError>(k));
        text.line("ringway_parse_errors_total{kind=\"%.*s\"} %lu\n", int(code.size()), code.data(),
                  sum(shards, shard_count,
                      [k](const ShardMetrics& m) -> const Counter& { return m.parse_errors[k]; }));
    }
    text.line("# HELP ringway_timeouts_total Connections ended by a deadline, by phase.\n");
    text.line("# TYPE ringway_timeouts_total counter\n");
    for (uint32_t p = 0; p < static_cast<uint32_t>(TimeoutPhase::count_); p++) {
        text.line("ringway_timeouts_total{phase=\"%s\"} %lu\n", timeout_phase_names[p],
                  sum(shards, shard_count,
                      [p](const ShardMetrics& m) -> const Counter& { return m.timeouts[p]; }));
    }
    text.line("# HELP ringway_arena_chunks_in_use Request arena chunks held now.\n");
    text.line("# TYPE ringway_arena_chunks_in_use gauge\n");
    text.line("ringway_arena_chunks_in_use %lu\n",
              sum(shards, shard_count,
                  [](const ShardMetrics& m) -> const Counter& { return m.arena_chunks_in_use; }));
    render_pool(text, shards, shard_count);
    text.line(
        "# HELP ringway_recv_buffer_exhausted_total Client multishot recvs and upstream recvs "
        "that found the buffer ring empty.\n");
    text.line("# TYPE ringway_recv_buffer_exhausted_total counter\n");
    text.line("ringway_recv_buffer_exhausted_total %lu\n",
              sum(shards, shard_count,
                  [](const ShardMetrics& m) -> const Counter& { return m.recv_buffer_exhausted; }));
    text.line("# HELP ringway_loop_iterations_total Event loop turns, per shard.\n");
    text.line("# TYPE ringway_loop_iterations_total counter\n");
    for (uint32_t s = 0; s < shard_count; s++) {
        text.line("ringway_loop_iterations_total{shard=\"%u\"} %lu\n", s,
                  shards[s]->loop_iterations.get());
    }
    text.line("# HELP ringway_heap_allocations_total Heap allocations made on shard threads.\n");
    text.line("# TYPE ringway_heap_allocations_total counter\n");
    for (uint32_t s = 0; s < shard_count; s++) {
        text.line("ringway_heap_allocations_total{shard=\"%u\"} %lu\n", s,
                  shards[s]->heap_allocations.get());
    }
    return text.used;
}

}  // namespace rw
