// proxy/gateway_types.h — the gateway's per-request and per-upstream-connection state.
// ProxyRequest lives in the client request's arena (trivially destructible, released with
// it); UpstreamConn slots live in a fixed per-shard array and outlive requests (pooled).
// Everything a request needs from the key/channel snapshot is copied in at admission,
// so no pointer into a snapshot is held across loop turns.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <time.h>

#include <cstdint>
#include <string_view>

#include "core/conn.h"
#include "proxy/json_fields.h"
#include "proxy/sse_scan.h"
#include "proxy/tls.h"
#include "proxy/upstream_parse.h"
#include "proxy/usage.h"
#include "storage/records.h"
#include "storage/snapshot.h"

namespace rw {

// The request path's clock for latency figures (a vDSO read, no syscall).
inline uint64_t proxy_clock_us() {
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return uint64_t(now.tv_sec) * 1000000 + uint64_t(now.tv_nsec) / 1000;
}

enum class Endpoint : uint8_t { chat, completions, embeddings, responses, messages };

// An IPv4 or IPv6 address, without sockaddr_storage's 100 spare bytes.
union SocketAddress {
    sockaddr any;
    sockaddr_in v4;
    sockaddr_in6 v6;
};

// One channel the request may go to, resolved and copied at admission.
struct Candidate {
    int64_t channel_id;
    ChannelKind kind;
    bool is_tls;
    SocketAddress address;  // Checked against the SSRF rules at admission.
    socklen_t address_bytes;
    std::string_view host_header;  // "host[:port]" (arena).
    std::string_view path_prefix;  // Base URL path without a trailing slash (arena).
    std::string_view api_key;      // The channel's secret (arena); never logged.
    std::string_view model_sent;   // After the channel's model map (arena).
    TlsContext* tls_context;       // https: lives as long as the process.
    std::string_view tls_host;     // Name checked against the certificate (arena).
};

struct ProxyRequest;

enum class UpstreamState : uint8_t { free, connecting, sending, receiving, idle, closing };

struct UpstreamConn {
    int fd = -1;
    uint32_t gen = 0;
    uint32_t slot = 0;
    uint32_t inflight_sqes = 0;
    UpstreamState state = UpstreamState::free;
    bool is_reused = false;  // Served an earlier request (keep-alive race possible).
    bool is_recv_inflight = false;
    bool is_send_inflight = false;
    bool is_close_submitted = false;
    bool has_response_bytes = false;  // Any byte of the current response arrived.
    bool is_tls = false;
    bool is_handshake_done = false;
    TlsSession tls;  // OpenSSL over memory BIOs; io_uring moves the bytes.
    int64_t channel_id = 0;
    uint64_t deadline_ms = 0;  // 0: none.
    uint64_t idle_since_ms = 0;
    uint32_t next_idle = UINT32_MAX;      // Pool list link (by slot).
    ProxyRequest* request = nullptr;      // While attached to a request.
    ProxyRequest* closing_for = nullptr;  // Closing; its SQEs may still read this request.
    bool is_rearm_listed = false;
    uint32_t send_remaining_bytes = 0;
    iovec iov[2];  // Request head + body (arena memory of the request).
    msghdr message{};
};

struct ProxyRequest {
    Conn* conn;
    uint32_t conn_gen;
    Endpoint endpoint;
    UsageFormat usage_format;
    bool is_streaming;        // The client asked for a stream.
    bool is_relaying_stream;  // The upstream answered with SSE and the head went out.
    bool is_finished;
    bool is_released;
    bool is_client_gone;
    bool is_recv_wanted;  // Relay paused for a full client queue.
    bool holds_concurrency;
    bool has_queue_reservation;
    bool is_quota_checked;
    std::string_view request_id;
    std::string_view body;  // Client body (padded, arena).
    RequestFields fields;
    std::string_view model_requested;  // (arena)
    std::string_view anthropic_version;
    std::string_view upstream_head;  // Built per attempt (arena).
    std::string_view upstream_body;
    int64_t key_id;
    uint32_t quota_slot;
    uint8_t candidate_count;
    uint8_t attempt_index;  // Current candidate.
    uint8_t attempts_made;
    uint32_t upstream_slot;  // UINT32_MAX: none attached.
    uint32_t upstream_gen;
    uint32_t upstreams_closing;  // Closed upstream conns whose SQEs may still read the arena.
    EndReason end_reason;
    uint16_t status_sent;
    int64_t started_unix_ms;
    uint64_t started_ms;  // Shard clock (ms).
    uint64_t started_us;  // Monotonic us.
    uint64_t first_byte_us;
    uint64_t bytes_in;
    uint64_t stream_payload_bytes;
    char* response_body;  // Whole-body accumulation (arena), padded.
    uint64_t response_bytes;
    uint64_t response_capacity;
    UsageCounts usage;
    UsageSource usage_source;
    UpstreamParser parser;
    SseUsageScanner scanner;
    Candidate candidates[attempts_max];
};

// A request's state must stay a small arena allocation (a large one takes a 64 KiB block).
static_assert(sizeof(ProxyRequest) <= chunk_payload_bytes / 4);

struct ChannelState {
    int64_t channel_id;  // 0: empty slot.
    uint32_t failures;   // Consecutive.
    uint64_t unhealthy_until_ms;
    uint32_t idle_head;  // Pooled upstream connections (slot list), UINT32_MAX: none.
    uint32_t idle_count;
};

}  // namespace rw
