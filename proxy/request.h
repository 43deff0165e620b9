// proxy/request.h — a proxied request's state and its one exit. ProxyRequest lives in the
// client request's arena (trivially destructible, released with it). Everything it needs
// from the key/channel snapshot is copied in at admission, so no pointer into a snapshot
// is held across loop turns. request_finish() is the single exit (STYLE P4): whatever
// ended the request, it answers the client if nothing was sent yet (or ends a started
// stream with the error event), closes the upstream, records the usage and releases the
// key's slots; the client connection goes back to the core only once no upstream SQE can
// still read the arena (request_maybe_release). Shard thread only.
#pragma once

#include <time.h>

#include <cstdint>
#include <string_view>

#include "core/client.h"
#include "core/limits.h"
#include "proxy/endpoint.h"
#include "proxy/fault.h"
#include "proxy/json_fields.h"
#include "proxy/rate_limit.h"
#include "proxy/route.h"
#include "proxy/sse_scan.h"
#include "proxy/stream_cut.h"
#include "proxy/upstream_parse.h"
#include "proxy/usage.h"
#include "storage/records.h"

namespace rw {

struct Gateway;
struct Upload;

// The request path's clock for latency figures (a vDSO read, no syscall).
inline uint64_t proxy_clock_us() {
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return uint64_t(now.tv_sec) * 1000000 + uint64_t(now.tv_nsec) / 1000;
}

struct ProxyRequest {
    Conn* conn;
    Endpoint endpoint;
    UsageFormat usage_format;
    bool is_streaming;         // The client asked for a stream.
    bool is_usage_cut;         // Cut the usage chunk ringway injected (stream_cut.h).
    bool is_counted_locally;   // count_tokens answered by the gateway (count_tokens.h).
    bool is_response_started;  // An answer (whole or a stream's head) is queued.
    bool is_relaying_stream;   // The upstream answered with SSE and the head went out.
    bool is_relaying_binary;   // ... with bytes (audio; is_relaying_stream too): no SSE scan.
    // RINGWAY_SSE_KEEPALIVE_MS: the 200 stream head went out before the upstream answered
    // (relay_keepalive_tick). Retries stay possible (is_response_started is still false);
    // a failure with no channel left ends the stream with an error event.
    bool is_head_early;
    bool is_finished;
    bool is_in_finish;  // request_finish is running: no release from a nested callback.
    bool is_released;
    bool is_client_gone;
    bool is_recv_wanted;   // Relay paused for a full client queue.
    bool is_retry_queued;  // In the gateway's retry list (see attempt_failed).
    bool holds_concurrency;
    bool holds_quota;  // quota_reserved_tokens are reserved in the key's QuotaTable slot.
    bool has_queue_reservation;
    Translation translation;       // The current attempt's (translate.h); none: passthrough.
    StreamTranslator* translator;  // A translated stream's state (arena), once it started.
    Fault fault;
    ErrorShape error_shape;          // The client's protocol (its endpoint's).
    uint32_t retry_after_s;          // Replaces the table's Retry-After when set.
    std::string_view fault_code;     // Replaces the table's code when set (arena or static).
    std::string_view fault_message;  // Replaces the table's message when set.
    std::string_view body;           // Client body (padded, arena).
    Upload* upload;                  // A multipart upload's state (upload.h); else nullptr.
    RequestFields fields;
    std::string_view model_requested;  // (arena)
    std::string_view anthropic_version;
    std::string_view request_id;         // Ringway's id (arena), sent on every answer.
    std::string_view client_request_id;  // The client's x-request-id, if usable.
    std::string_view traceparent;        // The client's traceparent, if well formed.
    std::string_view upstream_head;      // Built per attempt (arena).
    std::string_view upstream_body;
    // A /v1/responses answer's stored response id (arena), learnt from the whole body or
    // the stream's response.created (stored_response.h); empty: none.
    std::string_view response_id;
    char* relayed_headers;  // upstream_relayed_headers_bytes_max (arena), for the parser.
    int64_t key_id;
    uint32_t quota_slot;
    int64_t quota_reserved_tokens;  // The bound reserved at admission (holds_quota).
    RateHold rate;                  // Its rpm/tpm takes and headers (rate_limit.h).
    // Per-period budget words (proxy/budget.h): what admission reserved in the key's
    // BudgetTable slot and the period tags it was counted under.
    bool holds_budget_nano;
    bool holds_budget_tokens;
    uint16_t budget_nano_tag;
    uint16_t budget_tokens_tag;
    uint16_t budget_period_tag;  // The request's own period (its start time), for charging.
    bool has_tokens_word;        // Its key's tokens are counted in the tokens word
                                 // (budget_tokens_in_word).
    int64_t budget_reserved_nano;
    int64_t budget_reserved_tokens;
    // Budget leases (PostgreSQL): waiting for the lease thread's answer (budget.cc), until
    // lease_deadline_ms (shard clock) at most; lease_generation: its answers seen so far.
    bool is_lease_waiting;
    bool is_strict_waiting;  // The wait is the strict limit's (admission from it again).
    uint64_t lease_deadline_ms;
    uint64_t lease_generation;
    // A strict key's request that set no output limit: the limit injected into its body
    // (fields.output_tokens_max carries it too); 0: none injected.
    uint32_t output_limit_injected;
    uint8_t candidate_count;
    uint8_t attempt_index;  // Current candidate.
    uint8_t attempts_made;
    uint32_t upstream_slot;      // UINT32_MAX: none attached.
    uint32_t upstreams_closing;  // Closed upstream conns whose SQEs may still read the arena.
    ProxyRequest* retry_next;    // Link in the gateway's retry list.
    uint16_t status_sent;
    int64_t started_unix_ms;
    uint64_t started_ms;  // Shard clock (ms).
    uint64_t started_us;  // Monotonic us.
    uint64_t first_byte_us;
    uint64_t keepalive_due_ms;    // Shard clock: the next keep-alive comment; 0: not armed yet.
    uint64_t attempt_started_us;  // The current attempt's start; 0 once it is over.
    uint64_t upstream_us;         // Time attempts spent upstream (connect to their end).
    uint64_t ttft_us;             // The attempt's start to its first SSE event; 0: none.
    int64_t trial_channel_id;     // This request holds that channel's half-open trial; 0: none.
    uint64_t bytes_in;
    uint64_t stream_payload_bytes;
    char* response_body;  // Whole-body accumulation (arena), padded.
    uint64_t response_bytes;
    uint64_t response_capacity;
    UsageCounts usage;
    UpstreamParser parser;
    SseUsageScanner scanner;
    StreamHold hold;  // (stream_cut.h)
    Candidate candidates[attempts_max];
};

// A request's state must stay a small arena allocation (a large one takes a 64 KiB block).
static_assert(sizeof(ProxyRequest) <= chunk_payload_bytes / 4);

// Ringway's request ids: "rw-<shard>-<start ms, hex>-<sequence, hex>", unique per process
// run and shard, made when the request head is complete so a refusal carries one too.
constexpr uint32_t request_id_bytes_max = 48;  // The longest id is 40 bytes.
constexpr uint32_t request_id_header_bytes_max = request_id_bytes_max + 20;
[[nodiscard]] std::string_view request_id_make(Gateway& gateway, char (&out)[request_id_bytes_max]);
// "x-request-id: <id>\r\n", the answer's header line.
[[nodiscard]] std::string_view request_id_header(char (&out)[request_id_header_bytes_max],
                                                 std::string_view request_id);

// The client's own ids, recorded on the usage row and passed upstream: x-request-id when it
// is 1..record_foreign_id_bytes_max visible ASCII bytes, traceparent when it has the W3C
// version-00 shape (55 bytes, lower-case hex); empty otherwise. Views into http.
void request_client_ids(const ParsedRequest& http, std::string_view& client_request_id,
                        std::string_view& traceparent);

// A new request in conn's arena at its head (core/handler.h on_head), not yet taken from
// the core, with the id made for it (so a refusal at the head carries one too); nullptr
// when the arena refuses memory (the caller answers local_out_of_memory).
[[nodiscard]] ProxyRequest* request_create(Gateway& gateway, Conn& conn,
                                           std::string_view request_id);

// The body arrived (on_request): the gateway takes the request from the core
// (client_take) and its clocks start; request_finish is its exit from now on.
void request_start(Gateway& gateway, ProxyRequest& request);

// Refused at its head: the answer, and the key's slots given back (nothing was sent
// upstream, nothing is recorded).
void request_refuse_head(Gateway& gateway, ProxyRequest& request, Fault fault);

// The request ended before its body did (core/handler.h on_head_abandoned): gives back
// what admission took at the head.
void request_abandon(Gateway& gateway, ProxyRequest& request);

// The current attempt is over (failed, answered whole, or cut): its time is upstream time.
inline void request_attempt_over(ProxyRequest& request) {
    if (request.attempt_started_us != 0) {
        request.upstream_us += proxy_clock_us() - request.attempt_started_us;
        request.attempt_started_us = 0;
    }
}

// The one exit (see above). A second call returns at once: a timeout may race an
// upstream error or the client leaving.
void request_finish(Gateway& gateway, ProxyRequest& request, Fault fault);

// Gives the connection back to the core once the request is finished, out of the retry
// list and free of upstream SQEs. Safe to call at any time.
void request_maybe_release(Gateway& gateway, ProxyRequest& request);

// The client went away while the request was ours (core/handler.h on_client_gone).
void request_on_client_gone(Gateway& gateway, ProxyRequest& request, ClientGone why);

// What a fault's answer says beyond the table: the client's shape, and the table's code,
// message and Retry-After replaced when set.
struct FaultAnswer {
    ErrorShape shape = ErrorShape::openai;
    std::string_view code;
    std::string_view message;
    uint32_t retry_after_s = 0;
    std::string_view request_id;     // Ringway's x-request-id on the answer; empty: none.
    const RateHold* rate = nullptr;  // Its x-ratelimit-* and retry-after-ms; nullptr: none.
};

// Answers the client with a fault's error, before any answer was queued: the body in the
// client's shape, Retry-After where waiting helps, x-should-retry: false where no retry can.
void fault_respond(Conn& conn, Fault fault, const FaultAnswer& answer);

}  // namespace rw
