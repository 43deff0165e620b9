// proxy/metrics.h — the gateway's per-shard counters (written by their shard only, relaxed
// single-writer atomics, core/metrics.h) and their Prometheus text, summed over the shards
// on whichever shard serves the scrape, together with the usage writer's figures.
#pragma once

#include <cstdint>

#include "core/limits.h"
#include "core/metrics.h"

namespace rw {

class Writer;

struct GatewayMetrics {
    Counter requests_started;   // Proxied requests taken from the core (/v1/...).
    Counter requests_finished;  // ... and finished: the difference is in flight.
    Counter upstream_requests;  // Attempts sent upstream.
    Counter upstream_retries;   // Attempts after the first.
    Counter upstream_connects;  // New upstream connections.
    Counter upstream_reused;    // Attempts on a pooled connection.
    Counter upstream_errors;    // Attempts that failed (connect, reset, protocol, 5xx).
    Counter upstream_timeouts;
    Counter streams_aborted;  // Streams ended with the upstream_error event.
    Counter records_pushed;
    Counter auth_failures;
    Counter limited;     // 429 by rpm/concurrency/quota.
    Counter overloaded;  // 503: the usage queue had no room, or commits are failing.
    Counter tokens_prompt;
    Counter tokens_completion;
    Counter quota_reserved_tokens;   // Gauge: tokens reserved by this shard's requests.
    Counter quota_overshoot_tokens;  // Charged beyond a request's reserved bound.
    Counter unpriced_requests;       // Usage records with no price in force for their model.
};

// Renders the gateway's counters (summed over shard_count shards; null entries skipped)
// and, when writer is set, the writer's, as Prometheus text. Returns the bytes written,
// never more than capacity.
uint32_t gateway_metrics_render(char* out, uint32_t capacity,
                                GatewayMetrics* const (&shards)[shards_max], uint32_t shard_count,
                                const Writer* writer);

}  // namespace rw
