// proxy/gateway.h — the LLM gateway on one shard: the RequestHandler behind every path the
// core does not serve, and the state its rooms share on that shard. A request goes, file
// by file: gateway.cc (dispatch) → admission.cc (key, limits, body fields, route) →
// attempt.cc (an upstream connection from upstream_pool.cc, the request from rewrite.cc,
// TLS in upstream_tls.cc) → relay.cc (the answer, streamed or whole) → request.cc (the one
// exit, the usage record from usage_record.cc). One Gateway per shard, touched only by
// that shard's thread; what shards share is in GatewayShared.
#pragma once

#include <cstdint>

#include "core/assert.h"
#include "core/handler.h"
#include "core/shard.h"
#include "proxy/admission.h"
#include "proxy/channel_health.h"
#include "proxy/metrics.h"
#include "proxy/rate_limit.h"
#include "proxy/rate_share.h"
#include "proxy/route.h"
#include "proxy/upstream_pool.h"
#include "storage/snapshot.h"
#include "storage/writer.h"

namespace rw {

class Resolver;
class StoredResponses;
class BudgetLeases;
struct ProxyRequest;

// What every shard's gateway shares: read-mostly or atomic, owned by the program's
// services (proxy/services.h), outliving the shards.
struct GatewayShared {
    const Config* config = nullptr;
    SnapshotPublisher* snapshots = nullptr;
    QuotaTable* quotas = nullptr;
    BudgetTable* budgets = nullptr;
    Writer* writer = nullptr;
    KeyLimits* key_limits = nullptr;
    RateLimits* rate_limits = nullptr;
    RateShare* rate_share = nullptr;  // RINGWAY_REDIS set: limits shared with other hosts.
    BudgetLeases* leases = nullptr;   // PostgreSQL: budgets leased per host (budget_lease.h).
    Resolver* resolver = nullptr;
    MetricsShared* metrics_shared = nullptr;
    ChannelHealthBoard* health = nullptr;
    StoredResponses* stored_responses = nullptr;  // Response ids and their channels.
    // RINGWAY_ANTHROPIC_MAX_TOKENS, parsed at startup (translate.h).
    MaxTokensDefaults max_tokens_defaults;
    GatewayMetrics* metrics[shards_max] = {};
};

struct Gateway {
    Gateway(GatewayShared& shared, Shard& shard);
    Gateway(const Gateway&) = delete;
    Gateway& operator=(const Gateway&) = delete;

    // The handler the shard calls (context: this gateway).
    [[nodiscard]] RequestHandler handler();

    GatewayShared& shared;
    Shard& shard;
    const Config& config;
    GatewayMetrics metrics;
    UpstreamPool pool;
    uint64_t random_state;      // xorshift64 for weighted routing.
    KeyHashMemo key_hash_memo;  // Secrets' SHA-256 (admission.h).
    // Retries queued by attempt_failed, started at the end of the loop turn (not from
    // inside the completion that failed the attempt).
    ProxyRequest* retry_head = nullptr;
    ProxyRequest* retry_tail = nullptr;
    // Attempts that found the upstream table full and closed an idle pooled connection to
    // make room: queued (through the same links as retries) until a slot comes free.
    ProxyRequest* slot_wait_head = nullptr;
    ProxyRequest* slot_wait_tail = nullptr;
    // Requests waiting for a budget lease grant (budget.cc lease_wait), through the same
    // links as retries; looked at again when the lease thread answers or their wait ends.
    ProxyRequest* lease_wait_head = nullptr;
    ProxyRequest* lease_wait_tail = nullptr;
    bool has_records_pushed = false;     // Notify the writer at turn end.
    uint64_t quota_reserved_tokens = 0;  // This shard's reservations in flight (a gauge).
    uint64_t budget_reserved_nano = 0;   // The same for money budgets (nano-USD).
    uint64_t request_sequence = 0;       // For request ids.
    uint64_t next_sweep_ms = 0;
    uint64_t slots_exhausted_unlogged = 0;  // Since the last upstream_connections_exhausted line.
    uint64_t slots_exhausted_logged_ms = 0;
};

// The shard's gauge of token reservations in flight, a lifetime quota's (admission.cc) and a
// period quota's (budget.cc) alike: opened when admission reserves the bound, closed when the
// request settles, where usage above the bound is counted as overshoot.
inline void quota_reservation_open(Gateway& gateway, int64_t bound) {
    gateway.quota_reserved_tokens += static_cast<uint64_t>(bound);
    gateway.metrics.quota_reserved_tokens.set(gateway.quota_reserved_tokens);
}

inline void quota_reservation_close(Gateway& gateway, int64_t reserved, int64_t charged) {
    if (charged > reserved) {
        gateway.metrics.quota_overshoot_tokens.add(static_cast<uint64_t>(charged - reserved));
    }
    RW_ASSERT(gateway.quota_reserved_tokens >= static_cast<uint64_t>(reserved));
    gateway.quota_reserved_tokens -= static_cast<uint64_t>(reserved);
    gateway.metrics.quota_reserved_tokens.set(gateway.quota_reserved_tokens);
}

}  // namespace rw
