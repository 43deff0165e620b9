// proxy/gateway.h — the LLM gateway on one shard: the RequestHandler behind every path
// the core does not serve. It authenticates the ringway key, applies the key's limits,
// picks channels, sends the (rewritten) request over a pooled upstream connection on the
// shard's ring, relays the answer (SSE streams chunk by chunk from the recv buffers) and
// leaves exactly one usage record per request that reached an upstream. One Gateway per
// shard, touched only by that shard's thread; what shards share is in GatewayShared.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>

#include "core/handler.h"
#include "core/metrics.h"
#include "core/shard.h"
#include "proxy/json_fields.h"
#include "proxy/sse_scan.h"
#include "proxy/tls.h"
#include "proxy/upstream_parse.h"
#include "proxy/usage.h"
#include "storage/records.h"
#include "storage/snapshot.h"
#include "storage/writer.h"

namespace rw {

// Per-key counters every shard shares: requests in flight (concurrency) and the current
// minute's request count (rpm). Indexed by KeyEntry::quota_slot, like QuotaTable.
class KeyLimits {
public:
    explicit KeyLimits(uint32_t slot_count);
    // True and counted when below max (0 = unlimited); undo with concurrency_release.
    [[nodiscard]] bool concurrency_try_take(uint32_t slot, uint32_t max);
    void concurrency_release(uint32_t slot);
    // True and counted when the minute containing now_s has had fewer than rpm requests.
    [[nodiscard]] bool rpm_try_take(uint32_t slot, uint32_t rpm, int64_t now_s);

private:
    std::unique_ptr<std::atomic<uint32_t>[]> in_flight_;
    std::unique_ptr<std::atomic<uint64_t>[]> minute_window_;  // [minute:40][count:24]
    uint32_t slot_count_;
};

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
    Counter overloaded;  // 503 because the usage queue had no room.
    Counter tokens_prompt;
    Counter tokens_completion;
};

struct GatewayShared {
    const Config* config = nullptr;
    SnapshotPublisher* snapshots = nullptr;
    QuotaTable* quotas = nullptr;
    Writer* writer = nullptr;
    KeyLimits* key_limits = nullptr;
    class Resolver* resolver = nullptr;
    GatewayMetrics* metrics[shards_max] = {};
};

// Renders the gateway's counters (all shards) as Prometheus text; bytes written.
uint32_t gateway_metrics_render(char* out, uint32_t capacity, const GatewayShared& shared,
                                uint32_t shard_count);

struct ProxyRequest;
struct UpstreamConn;
struct ChannelState;

class Gateway {
public:
    Gateway(GatewayShared& shared, Shard& shard);
    ~Gateway();
    Gateway(const Gateway&) = delete;
    Gateway& operator=(const Gateway&) = delete;

    RequestHandler handler();

private:
    static void on_request_thunk(void* context, Conn& conn);
    static void on_cqe_thunk(void* context, const io_uring_cqe& cqe);
    static void on_client_gone_thunk(void* context, Conn& conn);
    static void on_client_writable_thunk(void* context, Conn& conn);
    static void on_turn_end_thunk(void* context);

    // Request admission (gateway.cc).
    void on_request(Conn& conn);
    void serve_models(ProxyRequest& request);
    bool admit(ProxyRequest& request, const ParsedRequest& http);
    bool route(ProxyRequest& request, const Snapshot& snapshot);

    // Attempts and upstream connections (upstream.cc).
    void attempt_start(ProxyRequest& request);
    void attempt_failed(ProxyRequest& request, UpstreamConn& upstream, bool is_retry_safe,
                        EndReason reason, uint16_t status, std::string_view code,
                        std::string_view message);
    bool attempt_build(ProxyRequest& request);
    UpstreamConn* upstream_take_pooled(int64_t channel_id);
    UpstreamConn* upstream_open(ProxyRequest& request);
    void upstream_submit_connect(UpstreamConn& upstream);
    void upstream_submit_send(UpstreamConn& upstream);
    void upstream_submit_recv(UpstreamConn& upstream, bool is_socket_empty = false);
    void upstream_close(UpstreamConn& upstream);
    void upstream_release_to_pool(UpstreamConn& upstream);
    void upstream_maybe_finish(UpstreamConn& upstream);
    void on_upstream_connect(UpstreamConn& upstream, int result);
    void on_upstream_send(UpstreamConn& upstream, int result);
    void on_upstream_recv(UpstreamConn& upstream, const io_uring_cqe& cqe);
    void on_upstream_bytes(UpstreamConn& upstream, ProxyRequest& request, char* base,
                           uint32_t length_bytes, uint16_t bid);
    bool tls_flush(UpstreamConn& upstream, ProxyRequest& request);
    void tls_send_request(UpstreamConn& upstream, ProxyRequest& request);
    void tls_failed(UpstreamConn& upstream, ProxyRequest& request, std::string_view reason,
                    bool is_retry_safe);
    void tls_on_recv(UpstreamConn& upstream, uint16_t bid, uint32_t length_bytes);
    void tls_drain(UpstreamConn& upstream, ProxyRequest& request);
    void tls_settle(UpstreamConn& upstream, ProxyRequest& request, const ReadResult& result);
    void on_upstream_eof(UpstreamConn& upstream, ProxyRequest& request, int error);
    void on_upstream_head(UpstreamConn& upstream, ProxyRequest& request);
    void on_upstream_complete(UpstreamConn& upstream, ProxyRequest& request, bool has_extra_bytes);
    bool accumulate(ProxyRequest& request, std::string_view span);
    void on_cqe(const io_uring_cqe& cqe);
    void on_client_gone(Conn& conn);
    void on_client_writable(Conn& conn);
    void on_turn_end();
    void relay_piece(ProxyRequest& request, char* start, uint32_t length_bytes, uint16_t bid);
    void sweep();

    // The single exit of a proxied request (request.cc).
    void request_finish(ProxyRequest& request, EndReason reason);
    void request_record(ProxyRequest& request, EndReason reason);
    void request_maybe_release(ProxyRequest& request);
    void stream_abort(ProxyRequest& request, EndReason reason);

    ChannelState& channel_state(int64_t channel_id);
    void channel_failed(int64_t channel_id);
    void channel_succeeded(int64_t channel_id);

    GatewayShared& shared_;
    Shard& shard_;
    const Config& config_;
    GatewayMetrics metrics_;
    UpstreamConn* upstreams_ = nullptr;  // [config_.upstream_connections_max]
    uint32_t* upstream_free_ = nullptr;
    uint32_t upstream_free_count_ = 0;
    uint32_t upstream_high_water_ = 0;
    ChannelState* channels_ = nullptr;  // [channel_states_max], open addressing by id.
    uint64_t next_sweep_ms_ = 0;
    uint32_t* upstream_rearm_ = nullptr;  // Upstreams whose recv hit -ENOBUFS.
    uint32_t upstream_rearm_count_ = 0;
    bool has_records_pushed_ = false;  // Notify the writer at turn end.
    uint64_t request_sequence_ = 0;
    uint64_t random_state_;
};

}  // namespace rw
