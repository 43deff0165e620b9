// proxy/metrics.cc — Prometheus text for the gateway and the usage writer (see
// metrics.h). Runs on the shard serving the scrape: relaxed loads and snprintf into the
// caller's arena buffer; no allocation.
#include "proxy/metrics.h"

#include <algorithm>
#include <cstdio>

#include "storage/writer.h"

namespace rw {
namespace {

struct MetricsText {
    char* out;
    uint32_t capacity;
    uint32_t used = 0;

    void printf_line(const char* format, auto... args) {
        if (used >= capacity) {
            return;
        }
        const int written = std::snprintf(out + used, capacity - used, format, args...);
        if (written > 0) {
            used += std::min(static_cast<uint32_t>(written), capacity - used);
        }
    }
    void line(const char* name, const char* type, const char* help, uint64_t value) {
        printf_line("# HELP %s %s\n# TYPE %s %s\n%s %lu\n", name, help, name, type, name,
                    static_cast<unsigned long>(value));
    }
};

struct ShardSum {
    GatewayMetrics* const (&shards)[shards_max];
    uint32_t shard_count;

    uint64_t operator()(Counter GatewayMetrics::*field, bool is_acquire = false) const {
        uint64_t total = 0;
        for (uint32_t i = 0; i < shard_count; i++) {
            if (shards[i] != nullptr) {
                const Counter& counter = shards[i]->*field;
                total += is_acquire ? counter.get_acquire() : counter.get();
            }
        }
        return total;
    }
};

void render_requests(MetricsText& text, const ShardSum& sum) {
    // Finished first (acquire, paired with request_finish's release): every request it
    // counts was counted as started, and its usage record and tokens, read below, are in
    // their counters. A gauge at 0 therefore means no record is still to come.
    const uint64_t finished = sum(&GatewayMetrics::requests_finished, true);
    const uint64_t started = sum(&GatewayMetrics::requests_started);
    text.line("ringway_requests_in_flight", "gauge",
              "Proxied requests taken and not yet finished (their usage record not yet queued).",
              started > finished ? started - finished : 0);
    text.line("ringway_upstream_requests_total", "counter", "Attempts sent to upstreams.",
              sum(&GatewayMetrics::upstream_requests));
    text.line("ringway_upstream_retries_total", "counter",
              "Attempts after the first (on another channel).",
              sum(&GatewayMetrics::upstream_retries));
    text.line("ringway_upstream_connects_total", "counter", "New upstream connections.",
              sum(&GatewayMetrics::upstream_connects));
    text.line("ringway_upstream_reused_total", "counter",
              "Attempts on a pooled upstream connection.", sum(&GatewayMetrics::upstream_reused));
    text.line("ringway_upstream_errors_total", "counter",
              "Failed attempts (connect, reset, protocol, refused).",
              sum(&GatewayMetrics::upstream_errors));
    text.line("ringway_upstream_timeouts_total", "counter", "Upstream deadlines hit.",
              sum(&GatewayMetrics::upstream_timeouts));
    text.line("ringway_streams_aborted_total", "counter",
              "Streams ended with the upstream_error event.",
              sum(&GatewayMetrics::streams_aborted));
}

void render_usage(MetricsText& text, const ShardSum& sum) {
    text.line("ringway_usage_records_total", "counter", "Usage records queued for the writer.",
              sum(&GatewayMetrics::records_pushed));
    text.line("ringway_auth_failures_total", "counter",
              "Requests refused for a missing or bad key.", sum(&GatewayMetrics::auth_failures));
    text.line("ringway_limited_total", "counter", "Requests refused by rpm, concurrency or quota.",
              sum(&GatewayMetrics::limited));
    text.line("ringway_overloaded_total", "counter",
              "Requests refused because the usage log was full or failing.",
              sum(&GatewayMetrics::overloaded));
    text.line("ringway_tokens_prompt_total", "counter", "Prompt tokens charged.",
              sum(&GatewayMetrics::tokens_prompt));
    text.line("ringway_tokens_completion_total", "counter", "Completion tokens charged.",
              sum(&GatewayMetrics::tokens_completion));
    text.line("ringway_quota_reserved_tokens", "gauge",
              "Tokens reserved against key quotas by requests in flight.",
              sum(&GatewayMetrics::quota_reserved_tokens));
    text.line("ringway_quota_overshoot_tokens_total", "counter",
              "Tokens charged beyond a request's reserved bound (a provider reporting more "
              "than the body and max_tokens allow).",
              sum(&GatewayMetrics::quota_overshoot_tokens));
    text.line("ringway_unpriced_requests_total", "counter",
              "Usage records without a price in force for their model (cost 0, flagged).",
              sum(&GatewayMetrics::unpriced_requests));
}

void render_writer(MetricsText& text, const Writer& writer) {
    const WriterStats stats = writer.stats();
    text.line("ringway_writer_rows_total", "counter", "Usage rows committed to SQLite.",
              stats.rows_written);
    text.line("ringway_writer_batches_total", "counter", "SQLite transactions committed.",
              stats.batches_committed);
    text.line("ringway_writer_commit_errors_total", "counter", "Failed commits (each retried).",
              stats.commit_errors);
    text.line("ringway_writer_batch_latency_us_max", "gauge", "Slowest batch commit.",
              stats.batch_latency_us_max);
    const RetentionStats retention = writer.retention_stats();
    text.line("ringway_writer_pruned_rows_total", "counter",
              "usage_logs rows deleted by retention (RINGWAY_LOG_RETENTION_DAYS / _DB_MAX_BYTES).",
              retention.pruned_rows);
    text.line("ringway_writer_prune_steps_total", "counter", "Retention steps that did work.",
              retention.steps);
    text.line("ringway_writer_prune_step_us_max", "gauge", "Slowest retention step.",
              retention.step_us_max);
    text.line("ringway_writer_vacuumed_pages_total", "counter",
              "Free pages given back to the disk by incremental_vacuum.", retention.vacuumed_pages);
    text.line("ringway_writer_db_over_cap", "gauge",
              "1 while live data exceeds RINGWAY_DB_MAX_BYTES.", retention.is_over_cap ? 1 : 0);
    text.line("ringway_writer_stalled", "gauge", "1 while commits are failing.",
              stats.is_stalled ? 1 : 0);
    text.line("ringway_writer_batch_latency_us_last", "gauge", "Latest batch commit.",
              stats.last_batch_latency_us);
    text.line("ringway_writer_batch_latency_us_total", "counter",
              "Time spent committing batches (divide by batches for the mean).",
              stats.batch_latency_us_total);
    text.printf_line(
        "# HELP ringway_writer_queue_depth Usage records waiting for the writer, per shard.\n"
        "# TYPE ringway_writer_queue_depth gauge\n");
    for (uint32_t i = 0; i < writer.queue_count(); i++) {
        text.printf_line("ringway_writer_queue_depth{shard=\"%u\"} %lu\n", i,
                         static_cast<unsigned long>(writer.queue(i).depth()));
    }
}

}  // namespace

uint32_t gateway_metrics_render(char* out, uint32_t capacity,
                                GatewayMetrics* const (&shards)[shards_max], uint32_t shard_count,
                                const Writer* writer) {
    MetricsText text{out, capacity};
    const ShardSum sum{shards, shard_count};
    render_requests(text, sum);
    render_usage(text, sum);
    if (writer != nullptr) {
        render_writer(text, *writer);
    }
    return text.used;
}

}  // namespace rw
