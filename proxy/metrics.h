// proxy/metrics.h — the gateway's per-shard counters (written by their shard only, relaxed
// single-writer atomics, core/metrics.h) and their Prometheus text, summed over the shards
// on whichever shard serves the scrape, together with the usage writer's figures.
// Histograms have fixed buckets (per-shard arrays, no allocation on the request path);
// label values are closed sets (endpoints, faults) or bounded by MetricLabels (models,
// channels: the first metric_labels_max seen, then "other").
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string_view>

#include "core/limits.h"
#include "core/metrics.h"
#include "proxy/channel_health.h"
#include "proxy/endpoint.h"
#include "proxy/fault.h"

namespace rw {

class Writer;
class RateShare;
class BudgetLeases;

constexpr uint32_t endpoint_count = 18;  // Endpoint's enumerators (static_assert in metrics.cc).
constexpr uint32_t histogram_buckets_max = 16;

// One histogram's per-shard counts: buckets[i] counts observations in (bound[i-1],
// bound[i]] (not cumulative: each observation is one store); buckets[bounds.size()] is
// +Inf. The scrape accumulates them into Prometheus' cumulative le buckets.
struct Histogram {
    Counter buckets[histogram_buckets_max + 1];
    Counter sum_us;

    void observe(uint64_t value_us, std::span<const uint64_t> bounds_us) {
        uint32_t index = 0;
        while (index < bounds_us.size() && value_us > bounds_us[index]) {
            index += 1;
        }
        buckets[index].add();
        sum_us.add(value_us);
    }
};

// Bucket upper bounds in microseconds (rendered in seconds).
inline constexpr uint64_t duration_bounds_us[] = {
    5'000,     10'000,    25'000,     50'000,     100'000,    250'000,     500'000,    1'000'000,
    2'500'000, 5'000'000, 10'000'000, 30'000'000, 60'000'000, 120'000'000, 300'000'000};
inline constexpr uint64_t overhead_bounds_us[] = {
    25, 50, 100, 250, 500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000};
inline constexpr uint64_t ttft_bounds_us[] = {50'000,     100'000,    250'000,    500'000,
                                              1'000'000,  2'500'000,  5'000'000,  10'000'000,
                                              20'000'000, 30'000'000, 60'000'000, 120'000'000};
static_assert(std::size(duration_bounds_us) <= histogram_buckets_max);
static_assert(std::size(overhead_bounds_us) <= histogram_buckets_max);
static_assert(std::size(ttft_bounds_us) <= histogram_buckets_max);

// Label values shared by every shard, bounded: the first metric_labels_max distinct values
// take a slot each (lock-free: a claimed slot is written, then published with release);
// later ones share the "other" slot, metric_labels_max. Two shards meeting a new value at
// once may claim two slots for it; the scrape sums slots of one value into one series.
class MetricLabels {
public:
    static constexpr uint32_t other = metric_labels_max;

    // The slot of `value` (truncated to metric_label_bytes_max), or `other`.
    [[nodiscard]] uint32_t slot(std::string_view value);
    // The value of a published slot; empty when the slot is not published (yet).
    [[nodiscard]] std::string_view value(uint32_t slot) const;
    [[nodiscard]] uint32_t published_count() const;

private:
    struct Entry {
        std::atomic<bool> is_published{false};
        uint8_t length = 0;
        char text[metric_label_bytes_max];
    };
    Entry entries_[metric_labels_max];
    std::atomic<uint32_t> claimed_{0};
};

// What every shard's metrics share: the model and channel label slots, and the channel
// health board (ringway_channel_up, transitions).
struct MetricsShared {
    MetricLabels models;
    MetricLabels channels;  // Channel ids as decimal text.
    const ChannelHealthBoard* health = nullptr;
    const RateShare* rate_share = nullptr;  // RINGWAY_REDIS set.
    const BudgetLeases* leases = nullptr;   // PostgreSQL: budget leases.
};

struct GatewayMetrics {
    Counter requests_started;          // Proxied requests taken from the core (/v1/...).
    Counter requests_finished;         // ... and finished: the difference is in flight.
    Counter upstream_requests;         // Attempts sent upstream.
    Counter upstream_retries;          // Attempts after the first.
    Counter upstream_connects;         // New upstream connections.
    Counter upstream_reused;           // Attempts on a pooled connection.
    Counter upstream_recvs_armed;      // Recv SQEs on upstream connections (multishot: few).
    Counter upstream_errors;           // Attempts that failed (connect, reset, protocol, 5xx).
    Counter upstream_slots_exhausted;  // Attempts that found every upstream slot busy.
    Counter upstream_evicted;          // Idle pooled connections closed to make room (table full).
    Counter upstream_timeouts;
    Counter streams_aborted;  // Streams ended with the upstream_error event.
    Counter sse_keepalives;   // ": keep-alive" comments sent before a stream's first event.
    Counter records_pushed;
    Counter auth_failures;
    Counter limited;     // 429 by rpm/concurrency/quota.
    Counter overloaded;  // 503: the usage queue had no room, or commits are failing.
    Counter tokens_prompt;
    Counter tokens_completion;
    Counter quota_reserved_tokens;      // Gauge: tokens reserved by this shard's requests.
    Counter quota_overshoot_tokens;     // Charged beyond a request's reserved bound.
    Counter budget_reserved_nano;       // Gauge: nano-USD reserved against money budgets.
    Counter budget_overshoot_nano;      // Charged beyond a request's reserved money bound.
    Counter budget_overshoot_requests;  // Requests that did so.
    Counter budget_lease_waits;         // Waits for a budget lease grant (PostgreSQL).
    Counter unpriced_requests;          // Usage records with no price in force for their model.
    // Requests that reached an upstream, by endpoint: start to finish; that minus the time
    // attempts spent upstream (the gateway's own overhead); the answering attempt's start
    // to its first complete SSE event (streams only).
    Histogram request_duration[endpoint_count];
    Histogram gateway_overhead[endpoint_count];
    Histogram upstream_ttft[endpoint_count];
    // Tokens charged by model (as requested) and by channel: [slot][0 prompt, 1 completion].
    Counter model_tokens[metric_labels_max + 1][2];
    Counter channel_tokens[metric_labels_max + 1][2];
    // Cost charged (nano-USD) by the same model and channel slots.
    Counter model_cost_nano[metric_labels_max + 1];
    Counter channel_cost_nano[metric_labels_max + 1];
    Counter faults[static_cast<uint32_t>(Fault::count_)];  // Requests ended by each fault.
};

// What a request that reached an upstream adds to the histograms and token counters.
struct RequestObservation {
    Endpoint endpoint;
    uint64_t duration_us;
    uint64_t upstream_us;  // Time its attempts spent upstream (<= duration_us).
    uint64_t ttft_us;      // 0: no SSE event (whole answers, or none arrived).
    std::string_view model;
    int64_t channel_id;
    uint64_t prompt_tokens;
    uint64_t completion_tokens;
    uint64_t cost_nano;  // The usage row's cost.
};
void metrics_observe(GatewayMetrics& metrics, MetricsShared& shared,
                     const RequestObservation& observation);

// The error class of a fault, the closed taxonomy of ringway_request_errors_total:
// "client" (the client's mistake), "policy" (a key's limits refused it), "provider" (the
// upstream failed or refused), "gateway" (ringway's own failure); empty for Fault::none.
[[nodiscard]] std::string_view fault_class(Fault fault);

// Renders the gateway's counters (summed over shard_count shards; null entries skipped)
// and, when writer is set, the writer's, as Prometheus text. Returns the bytes written,
// never more than capacity.
uint32_t gateway_metrics_render(char* out, uint32_t capacity,
                                GatewayMetrics* const (&shards)[shards_max], uint32_t shard_count,
                                const MetricsShared* shared, const Writer* writer);

}  // namespace rw
