// storage/records.h — UsageRecord, the one message a shard sends the writer per request
// that reached an upstream (RULES.md "exactly one usage record"). A fixed-size POD with
// no pointers: it is copied out of the request arena into the shard's SPSC queue and
// read by the writer thread, so nothing in it may refer to shard memory. Text fields are
// NUL-terminated fixed arrays, truncated on copy (record_set_text).
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "core/limits.h"

namespace rw {

enum class UsageSource : uint8_t { reported, estimated, unknown };

enum class EndReason : uint8_t {
    complete,
    client_gone,
    upstream_reset,
    upstream_timeout,
    upstream_protocol_error,
    upstream_error,  // Upstream answered with an error status (4xx/5xx) before any byte.
    local_error,     // The gateway failed the request itself (no channel, overload, ...).
    shutdown,
    upstream_stream_error,  // The provider ended a started stream with its own error event.
};

// Text stored in usage_logs.usage_source / end_reason (stable: admin queries show it).
[[nodiscard]] constexpr std::string_view usage_source_name(UsageSource source) {
    switch (source) {
        case UsageSource::reported: return "reported";
        case UsageSource::estimated: return "estimated";
        case UsageSource::unknown: return "unknown";
    }
    return "unknown";
}

[[nodiscard]] constexpr std::string_view end_reason_name(EndReason reason) {
    switch (reason) {
        case EndReason::complete: return "complete";
        case EndReason::client_gone: return "client_gone";
        case EndReason::upstream_reset: return "upstream_reset";
        case EndReason::upstream_timeout: return "upstream_timeout";
        case EndReason::upstream_protocol_error: return "upstream_protocol_error";
        case EndReason::upstream_error: return "upstream_error";
        case EndReason::local_error: return "local_error";
        case EndReason::shutdown: return "shutdown";
        case EndReason::upstream_stream_error: return "upstream_stream_error";
    }
    return "local_error";
}

// The system key's id (storage/migrations.cc, 11): the rows of the admin thread's channel
// probes (proxy/probe.h) are its. Client keys start at 1.
constexpr int64_t record_system_key_id = 0;

struct UsageRecord {
    int64_t ts_ms;        // Request start, Unix epoch milliseconds (UTC).
    int64_t key_id;       // keys.id; record_system_key_id for a channel probe's row.
    int64_t channel_id;   // channels.id of the last attempt; 0 when none.
    uint64_t latency_us;  // Accept of the request head to the last byte sent.
    uint64_t ttfb_us;     // To the first response byte sent to the client.
    uint64_t bytes_in;    // Client request bytes received.
    uint64_t bytes_out;   // Response bytes sent to the client.
    int64_t cost_nano;    // The row's cost in nano-USD (proxy/cost.h); 0 when unpriced.
    int64_t price_id;     // prices.id the cost used; 0 = unpriced (no price in force).
    uint32_t prompt_tokens;
    uint32_t completion_tokens;
    uint32_t total_tokens;  // What quota_used is charged (billing rule is the proxy's).
    // Token kinds, each a part of the total above it, never added to it (proxy/usage.h).
    uint32_t cached_input_tokens;  // Of prompt_tokens.
    uint32_t cache_write_tokens;   // Of prompt_tokens.
    uint32_t reasoning_tokens;     // Of completion_tokens.
    uint16_t status;               // HTTP status sent to the client.
    uint16_t attempts;             // Upstream attempts made (1 = no retry).
    UsageSource usage_source;
    EndReason end_reason;
    char model_requested[record_model_bytes_max + 1];
    char model_sent[record_model_bytes_max + 1];
    char endpoint[record_endpoint_bytes_max + 1];
    char request_id[record_request_id_bytes_max + 1];
    char client_request_id[record_foreign_id_bytes_max + 1];    // The client's x-request-id.
    char traceparent[traceparent_bytes + 1];                    // The client's traceparent.
    char upstream_request_id[record_foreign_id_bytes_max + 1];  // x-request-id / request-id.
    // The stored response a /v1/responses answer created (proxy/stored_response.h).
    char response_id[record_foreign_id_bytes_max + 1];
};

static_assert(std::is_trivially_copyable_v<UsageRecord>, "copied through the SPSC ring");
static_assert(std::is_standard_layout_v<UsageRecord>);
static_assert(sizeof(UsageRecord) <= 640, "keep the ring's slots small");

// Copies text into a fixed array, truncating to N - 1 bytes, always NUL-terminated.
// Truncation may split a UTF-8 sequence; SQLite stores the bytes as given.
template <size_t N>
void record_set_text(char (&target)[N], std::string_view text) {
    static_assert(N > 1);
    const size_t length = text.size() < N - 1 ? text.size() : N - 1;
    if (length > 0) {  // An empty view may carry a null pointer: no memcpy from it.
        std::memcpy(target, text.data(), length);
    }
    target[length] = '\0';
}

// The stored length of a fixed text field (bounded strlen).
template <size_t N>
[[nodiscard]] std::string_view record_text(const char (&source)[N]) {
    return {source, strnlen(source, N - 1)};
}

}  // namespace rw
