// proxy/metrics.cc — Prometheus text for the gateway and the usage writer (see
// metrics.h). Runs on the shard serving the scrape: relaxed loads and snprintf into the
// caller's arena buffer; no allocation.
#include "proxy/metrics.h"
#include "proxy/rate_share.h"
#include "storage/budget_lease.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "storage/writer.h"

namespace rw {

static_assert(static_cast<uint32_t>(Endpoint::responses_input_items) + 1 == endpoint_count);

uint32_t MetricLabels::slot(std::string_view value) {
    value = value.substr(0, metric_label_bytes_max);
    const uint32_t claimed = std::min(claimed_.load(std::memory_order_acquire), metric_labels_max);
    for (uint32_t i = 0; i < claimed; i++) {
        const Entry& entry = entries_[i];
        // Acquire pairs with the publishing release below: text and length are written.
        if (entry.is_published.load(std::memory_order_acquire) && entry.length == value.size() &&
            std::memcmp(entry.text, value.data(), value.size()) == 0) {
            return i;
        }
    }
    if (claimed >= metric_labels_max) {
        return other;  // Full: the common case past the cap costs no read-modify-write.
    }
    const uint32_t taken = claimed_.fetch_add(1, std::memory_order_acq_rel);
    if (taken >= metric_labels_max) {
        return other;
    }
    Entry& entry = entries_[taken];
    if (!value.empty()) {  // An empty view's pointer may be null.
        std::memcpy(entry.text, value.data(), value.size());
    }
    entry.length = static_cast<uint8_t>(value.size());
    entry.is_published.store(true, std::memory_order_release);
    return taken;
}

std::string_view MetricLabels::value(uint32_t slot) const {
    RW_ASSERT(slot < metric_labels_max);
    const Entry& entry = entries_[slot];
    if (!entry.is_published.load(std::memory_order_acquire)) {
        return {};
    }
    return {entry.text, entry.length};
}

uint32_t MetricLabels::published_count() const {
    return std::min(claimed_.load(std::memory_order_acquire), metric_labels_max);
}

void metrics_observe(GatewayMetrics& metrics, MetricsShared& shared,
                     const RequestObservation& observation) {
    const auto endpoint = static_cast<uint32_t>(observation.endpoint);
    RW_ASSERT(endpoint < endpoint_count);
    RW_ASSERT(observation.upstream_us <= observation.duration_us);
    metrics.request_duration[endpoint].observe(observation.duration_us, duration_bounds_us);
    metrics.gateway_overhead[endpoint].observe(observation.duration_us - observation.upstream_us,
                                               overhead_bounds_us);
    if (observation.ttft_us != 0) {
        metrics.upstream_ttft[endpoint].observe(observation.ttft_us, ttft_bounds_us);
    }
    const uint32_t model = shared.models.slot(observation.model);
    metrics.model_tokens[model][0].add(observation.prompt_tokens);
    metrics.model_tokens[model][1].add(observation.completion_tokens);
    metrics.model_cost_nano[model].add(observation.cost_nano);
    char id_text[24];
    const char* id_end =
        std::to_chars(id_text, id_text + sizeof(id_text), observation.channel_id).ptr;
    const uint32_t channel = shared.channels.slot({id_text, static_cast<size_t>(id_end - id_text)});
    metrics.channel_tokens[channel][0].add(observation.prompt_tokens);
    metrics.channel_tokens[channel][1].add(observation.completion_tokens);
    metrics.channel_cost_nano[channel].add(observation.cost_nano);
}

std::string_view fault_class(Fault fault) {
    switch (fault) {
        case Fault::none: return {};
        case Fault::client_quota_exceeded:
        case Fault::client_quota_too_small:
        case Fault::client_budget_exceeded:
        case Fault::client_budget_too_small:
        case Fault::client_model_price_missing:
        case Fault::client_model_not_allowed:
        case Fault::client_rate_limited:
        case Fault::client_concurrency_limited:
        case Fault::client_tokens_limited:
        case Fault::client_tokens_too_large: return "policy";
        default: break;
    }
    // The rest by the side their name starts with (fault.h).
    const std::string_view name = fault_name(fault);
    if (name.starts_with("client_")) {
        return "client";
    }
    return name.starts_with("upstream_") ? "provider" : "gateway";
}

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
    text.line("ringway_upstream_recvs_armed_total", "counter",
              "Recvs armed on upstream connections (a multishot one reads many pieces).",
              sum(&GatewayMetrics::upstream_recvs_armed));
    text.line("ringway_upstream_errors_total", "counter",
              "Failed attempts (connect, reset, protocol, refused).",
              sum(&GatewayMetrics::upstream_errors));
    text.line("ringway_upstream_timeouts_total", "counter", "Upstream deadlines hit.",
              sum(&GatewayMetrics::upstream_timeouts));
    text.line("ringway_streams_aborted_total", "counter",
              "Streams ended with the upstream_error event.",
              sum(&GatewayMetrics::streams_aborted));
    text.line("ringway_sse_keepalives_total", "counter",
              "SSE keep-alive comments sent while an upstream was silent before its first event.",
              sum(&GatewayMetrics::sse_keepalives));
}

void render_usage(MetricsText& text, const ShardSum& sum) {
    text.line("ringway_usage_records_total", "counter", "Usage records queued for the writer.",
              sum(&GatewayMetrics::records_pushed));
    text.line("ringway_auth_failures_total", "counter",
              "Requests refused for a missing or bad key.", sum(&GatewayMetrics::auth_failures));
    text.line("ringway_limited_total", "counter",
              "Requests refused by rpm, tpm, concurrency or quota.", sum(&GatewayMetrics::limited));
    text.line("ringway_overloaded_total", "counter",
              "Requests refused with 503 because the gateway was full (usage log, memory, upstream "
              "connections).",
              sum(&GatewayMetrics::overloaded));
    text.line("ringway_upstream_connections_exhausted_total", "counter",
              "Attempts that found every upstream connection of their shard busy "
              "(RINGWAY_UPSTREAM_CONNECTIONS_MAX).",
              sum(&GatewayMetrics::upstream_slots_exhausted));
    text.line("ringway_upstream_connections_evicted_total", "counter",
              "Idle pooled upstream connections closed (oldest first, any channel) to make "
              "room in a full upstream table.",
              sum(&GatewayMetrics::upstream_evicted));
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
    text.line("ringway_budget_reserved_nano_usd", "gauge",
              "Nano-USD reserved against key money budgets by requests in flight.",
              sum(&GatewayMetrics::budget_reserved_nano));
    text.line("ringway_budget_overshoot_nano_usd_total", "counter",
              "Nano-USD charged beyond a request's reserved bound (images, tool schemas, a "
              "provider reporting more than the body and the output limit allow).",
              sum(&GatewayMetrics::budget_overshoot_nano));
    text.line("ringway_budget_overshoot_requests_total", "counter",
              "Requests charged beyond their reserved money bound.",
              sum(&GatewayMetrics::budget_overshoot_requests));
    text.line("ringway_budget_lease_waits_total", "counter",
              "Requests that waited for a budget lease grant (PostgreSQL: budget_lease.h).",
              sum(&GatewayMetrics::budget_lease_waits));
    text.line("ringway_unpriced_requests_total", "counter",
              "Usage records without a price in force for their model (cost 0, flagged).",
              sum(&GatewayMetrics::unpriced_requests));
}

// Microseconds as decimal seconds without trailing zeros: 25 -> "0.000025", 2500000 -> "2.5".
const char* seconds_text(char (&out)[32], uint64_t value_us) {
    const int length =
        std::snprintf(out, sizeof(out), "%lu.%06lu", static_cast<unsigned long>(value_us / 1000000),
                      static_cast<unsigned long>(value_us % 1000000));
    int end = length;
    while (end > 0 && out[end - 1] == '0') {
        end -= 1;
    }
    if (end > 0 && out[end - 1] == '.') {
        end -= 1;
    }
    out[end] = '\0';
    return out;
}

using HistogramArray = Histogram (GatewayMetrics::*)[endpoint_count];

void render_histogram(MetricsText& text, const ShardSum& sum, const char* name, const char* help,
                      HistogramArray field, std::span<const uint64_t> bounds_us) {
    text.printf_line("# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (uint32_t e = 0; e < endpoint_count; e++) {
        const std::string_view endpoint = endpoint_path(static_cast<Endpoint>(e));
        uint64_t counts[histogram_buckets_max + 1] = {};
        uint64_t sum_us = 0;
        for (uint32_t i = 0; i < sum.shard_count; i++) {
            if (sum.shards[i] == nullptr) {
                continue;
            }
            const Histogram& histogram = (sum.shards[i]->*field)[e];
            for (uint32_t b = 0; b <= bounds_us.size(); b++) {
                counts[b] += histogram.buckets[b].get();
            }
            sum_us += histogram.sum_us.get();
        }
        uint64_t observed = 0;
        for (uint32_t b = 0; b <= bounds_us.size(); b++) {
            observed += counts[b];
        }
        if (observed == 0) {
            continue;  // An endpoint's series appear with its first observation.
        }
        uint64_t cumulative = 0;
        char le[32];
        for (uint32_t b = 0; b <= bounds_us.size(); b++) {
            cumulative += counts[b];
            text.printf_line("%s_bucket{endpoint=\"%.*s\",le=\"%s\"} %lu\n", name,
                             int(endpoint.size()), endpoint.data(),
                             b < bounds_us.size() ? seconds_text(le, bounds_us[b]) : "+Inf",
                             static_cast<unsigned long>(cumulative));
        }
        text.printf_line("%s_sum{endpoint=\"%.*s\"} %s\n%s_count{endpoint=\"%.*s\"} %lu\n", name,
                         int(endpoint.size()), endpoint.data(), seconds_text(le, sum_us), name,
                         int(endpoint.size()), endpoint.data(),
                         static_cast<unsigned long>(cumulative));
    }
}

void render_histograms(MetricsText& text, const ShardSum& sum) {
    render_histogram(text, sum, "ringway_request_duration_seconds",
                     "Proxied requests that reached an upstream: start to finish.",
                     &GatewayMetrics::request_duration, duration_bounds_us);
    render_histogram(text, sum, "ringway_gateway_overhead_seconds",
                     "The gateway's own time: request duration minus the time its attempts "
                     "spent upstream.",
                     &GatewayMetrics::gateway_overhead, overhead_bounds_us);
    render_histogram(text, sum, "ringway_upstream_ttft_seconds",
                     "Streams: the answering attempt's start to its first complete SSE event.",
                     &GatewayMetrics::upstream_ttft, ttft_bounds_us);
}

using TokenArray = Counter (GatewayMetrics::*)[metric_labels_max + 1][2];
using CostArray = Counter (GatewayMetrics::*)[metric_labels_max + 1];

// One series per distinct label value (slots a race gave the same value are summed), then
// "other" for the values past the cap.
// Visits each distinct published label value once, and "other" last, with a function that
// sums a per-slot quantity (total(slot)) over every slot carrying that value: two shards
// may race to claim the same value, so it can hold more than one slot.
template <class Visit>
void visit_label_values(const MetricLabels& labels, Visit visit) {
    const uint32_t count = labels.published_count();
    for (uint32_t slot = 0; slot <= count; slot++) {
        const bool is_other = slot == count;
        const std::string_view value = is_other ? "other" : labels.value(slot);
        bool is_repeat = value.empty();
        for (uint32_t earlier = 0; earlier < slot && !is_other && !is_repeat; earlier++) {
            is_repeat = labels.value(earlier) == value;
        }
        if (is_repeat) {
            continue;
        }
        const auto merged = [&](auto total) {
            uint64_t value_total = total(is_other ? MetricLabels::other : slot);
            for (uint32_t later = slot + 1; later < count && !is_other; later++) {
                value_total += labels.value(later) == value ? total(later) : 0;
            }
            return value_total;
        };
        visit(value, merged);
    }
}

void render_tokens(MetricsText& text, const ShardSum& sum, const MetricLabels& labels,
                   const char* name, const char* label, const char* help, TokenArray field) {
    text.printf_line("# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    visit_label_values(labels, [&](std::string_view value, auto merged) {
        for (uint32_t type = 0; type < 2; type++) {
            const uint64_t value_total = merged([&](uint32_t slot) {
                uint64_t total = 0;
                for (uint32_t i = 0; i < sum.shard_count; i++) {
                    total +=
                        sum.shards[i] != nullptr ? (sum.shards[i]->*field)[slot][type].get() : 0;
                }
                return total;
            });
            text.printf_line("%s{%s=\"%.*s\",type=\"%s\"} %lu\n", name, label, int(value.size()),
                             value.data(), type == 0 ? "prompt" : "completion",
                             static_cast<unsigned long>(value_total));
        }
    });
}

// Money in USD from nano-USD counters, exact (nine decimals).
void render_cost(MetricsText& text, const ShardSum& sum, const MetricLabels& labels,
                 const char* name, const char* label, const char* help, CostArray field) {
    text.printf_line("# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    visit_label_values(labels, [&](std::string_view value, auto merged) {
        const uint64_t nano = merged([&](uint32_t slot) {
            uint64_t total = 0;
            for (uint32_t i = 0; i < sum.shard_count; i++) {
                total += sum.shards[i] != nullptr ? (sum.shards[i]->*field)[slot].get() : 0;
            }
            return total;
        });
        text.printf_line("%s{%s=\"%.*s\"} %lu.%09lu\n", name, label, int(value.size()),
                         value.data(), static_cast<unsigned long>(nano / 1'000'000'000),
                         static_cast<unsigned long>(nano % 1'000'000'000));
    });
}

void render_faults(MetricsText& text, const ShardSum& sum) {
    text.printf_line(
        "# HELP ringway_request_errors_total Requests ended by a fault, by class (client, "
        "policy, provider, gateway) and fault.\n# TYPE ringway_request_errors_total counter\n");
    for (uint32_t f = 1; f < static_cast<uint32_t>(Fault::count_); f++) {
        uint64_t value = 0;
        for (uint32_t i = 0; i < sum.shard_count; i++) {
            value += sum.shards[i] != nullptr ? sum.shards[i]->faults[f].get() : 0;
        }
        if (value == 0) {
            continue;  // A fault's series appears when it first happens.
        }
        const std::string_view klass = fault_class(static_cast<Fault>(f));
        const std::string_view name = fault_name(static_cast<Fault>(f));
        text.printf_line("ringway_request_errors_total{class=\"%.*s\",fault=\"%.*s\"} %lu\n",
                         int(klass.size()), klass.data(), int(name.size()), name.data(),
                         static_cast<unsigned long>(value));
    }
}

// Every channel the board has met (it meets a channel at its first outcome or verdict of
// note), up or not, and the transitions counted since start.
void render_health(MetricsText& text, const ChannelHealthBoard& health) {
    text.printf_line(
        "# HELP ringway_channel_up 1 while the channel may take traffic (up or rate-limited), "
        "0 while it is down.\n# TYPE ringway_channel_up gauge\n");
    const uint64_t now_ms = health_clock_ms();
    for (uint32_t slot = 0; slot < channel_states_max; slot++) {
        const int64_t channel_id = health.channel_at(slot);
        if (channel_id != 0) {
            text.printf_line("ringway_channel_up{channel=\"%ld\"} %d\n",
                             static_cast<long>(channel_id),
                             health.view(channel_id, now_ms).is_down ? 0 : 1);
        }
    }
    text.printf_line(
        "# HELP ringway_channel_health_transitions_total Channels taken down or brought back "
        "up.\n# TYPE ringway_channel_health_transitions_total counter\n"
        "ringway_channel_health_transitions_total{to=\"down\"} %lu\n"
        "ringway_channel_health_transitions_total{to=\"up\"} %lu\n",
        static_cast<unsigned long>(health.transitions_down()),
        static_cast<unsigned long>(health.transitions_up()));
}

// Budget leases (a postgres:// RINGWAY_DB): storage/budget_lease.h.
void render_leases(MetricsText& text, const BudgetLeases& leases) {
    const BudgetLeaseStats stats = leases.stats();
    text.line("ringway_budget_lease_grants_total", "counter",
              "Budget lease grant transactions committed.", stats.grants);
    text.line("ringway_budget_lease_grant_failures_total", "counter",
              "Budget lease grant transactions that failed (PostgreSQL unreachable).",
              stats.grant_failures);
    text.line("ringway_budget_lease_grant_us_total", "counter",
              "Time spent in grant transactions (divide by grants for the mean).",
              stats.grant_us_total);
    text.line("ringway_budget_lease_granted_nano_usd_total", "counter",
              "Nano-USD of money budgets granted to this host.", stats.granted_nano);
    text.line("ringway_budget_lease_returned_nano_usd_total", "counter",
              "Nano-USD of money budgets this host gave back when keys went idle.",
              stats.returned_nano);
    text.line("ringway_budget_lease_renewals_total", "counter",
              "Statements that renewed this host's live leases.", stats.renewals);
}

// The rate limits shared through Redis (RINGWAY_REDIS set): rate_share.h.
void render_rate_share(MetricsText& text, const RateShare& share) {
    const RateShareStats stats = share.stats();
    text.line("ringway_redis_up", "gauge",
              "1 while the last batch to Redis succeeded (rate limits shared), 0 while"
              " RINGWAY_REDIS_FAILURE applies.",
              stats.is_up ? 1 : 0);
    text.line("ringway_redis_batches_total", "counter",
              "Batches (one pipelined exchange of lease and concurrency scripts) Redis answered.",
              stats.batches);
    text.line("ringway_redis_errors_total", "counter",
              "Redis connects or batches that failed or timed out.", stats.errors);
    text.line("ringway_redis_round_trip_us_last", "gauge", "The latest batch's round trip.",
              stats.round_trip_us_last);
    text.line("ringway_redis_round_trip_us_max", "gauge", "The slowest batch's round trip.",
              stats.round_trip_us_max);
    text.line("ringway_redis_round_trip_us_total", "counter",
              "Time spent in batch round trips (divide by batches for the mean).",
              stats.round_trip_us_total);
    text.line("ringway_rate_lease_refused_total", "counter",
              "Requests refused because this host held no lease of a shared limit (and had used"
              " its advance) though its own bucket had room.",
              stats.lease_refused);
    text.printf_line(
        "# HELP ringway_rate_limit_redis_down_total Rate-limit decisions taken while Redis was"
        " unreachable, by RINGWAY_REDIS_FAILURE's outcome.\n"
        "# TYPE ringway_rate_limit_redis_down_total counter\n"
        "ringway_rate_limit_redis_down_total{decision=\"local\"} %lu\n"
        "ringway_rate_limit_redis_down_total{decision=\"refused\"} %lu\n",
        static_cast<unsigned long>(stats.failure_local),
        static_cast<unsigned long>(stats.failure_refused));
}

// SQLite's WAL checkpoints (storage/wal_checkpointer.h); all 0 with PostgreSQL.
void render_writer_wal(MetricsText& text, const WalCheckpointStats& wal) {
    text.printf_line(
        "# HELP ringway_writer_wal_checkpoints_total SQLite WAL checkpoints, by the thread that "
        "ran them (rw-checkpoint, or the writer inline at RINGWAY_WAL_MAX_BYTES).\n"
        "# TYPE ringway_writer_wal_checkpoints_total counter\n"
        "ringway_writer_wal_checkpoints_total{by=\"checkpoint_thread\"} %lu\n"
        "ringway_writer_wal_checkpoints_total{by=\"writer\"} %lu\n",
        static_cast<unsigned long>(wal.background), static_cast<unsigned long>(wal.inline_));
    text.line("ringway_writer_wal_checkpoint_failures_total", "counter",
              "WAL checkpoints that failed (not counting busy); the WAL grows until one succeeds.",
              wal.failed);
    text.line("ringway_writer_wal_bytes_max", "gauge",
              "The largest the WAL was after a commit since start, in bytes.", wal.wal_bytes_max);
    text.line("ringway_writer_wal_checkpoint_cpu_us_total", "counter",
              "CPU time the rw-checkpoint thread has used, microseconds.", wal.thread_cpu_us);
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
    text.line(
        "ringway_writer_batch_cpu_us_max", "gauge",
        "Writer thread CPU time of its costliest batch commit (not counting time descheduled).",
        stats.batch_cpu_us_max);
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
    render_writer_wal(text, stats.wal);
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
                                const MetricsShared* shared, const Writer* writer) {
    MetricsText text{out, capacity};
    const ShardSum sum{shards, shard_count};
    render_requests(text, sum);
    render_usage(text, sum);
    render_histograms(text, sum);
    render_faults(text, sum);
    if (shared != nullptr) {
        render_tokens(text, sum, shared->models, "ringway_model_tokens_total", "model",
                      "Tokens charged by the model asked for (the first 32 models, then other).",
                      &GatewayMetrics::model_tokens);
        render_tokens(text, sum, shared->channels, "ringway_channel_tokens_total", "channel",
                      "Tokens charged by channel id (the first 32 channels, then other).",
                      &GatewayMetrics::channel_tokens);
        render_cost(text, sum, shared->models, "ringway_model_cost_usd_total", "model",
                    "Cost charged in USD by the model asked for (the first 32 models, then other).",
                    &GatewayMetrics::model_cost_nano);
        render_cost(text, sum, shared->channels, "ringway_channel_cost_usd_total", "channel",
                    "Cost charged in USD by channel id (the first 32 channels, then other).",
                    &GatewayMetrics::channel_cost_nano);
        if (shared->health != nullptr) {
            render_health(text, *shared->health);
        }
        if (shared->rate_share != nullptr) {
            render_rate_share(text, *shared->rate_share);
        }
        if (shared->leases != nullptr) {
            render_leases(text, *shared->leases);
        }
    }
    if (writer != nullptr) {
        render_writer(text, *writer);
    }
    return text.used;
}

}  // namespace rw
