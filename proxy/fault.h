// proxy/fault.h — every way a proxied request can fail, as one enum with one table: the
// HTTP status and OpenAI error code and message the client gets, the Anthropic error type
// for /v1/messages clients, the end_reason its usage record carries, whether another
// channel may be tried (the upstream cannot have acted on the request, RULES §6), and
// whether the client connection closes after the answer. Enumerators start with their
// side (STYLE §4): client_ (its mistake or a policy refusal), local_ (the gateway's own
// failure), upstream_ (the provider's). request_finish() is the one place that reads it.
#pragma once

#include <cstdint>
#include <string_view>

#include "storage/records.h"

namespace rw {

enum class Fault : uint8_t {
    none,  // Finished as it should: the answer (the upstream's, or ours) went out.
    // The client's side. Refused at admission: no upstream was reached, no record.
    client_method_not_allowed,
    client_missing_api_key,
    client_conflicting_api_keys,
    client_invalid_api_key,
    client_expired_api_key,
    client_ip_not_allowed,  // The key's allowed_cidrs do not hold the client address.
    client_quota_exceeded,
    client_quota_too_small,      // What is left cannot cover this request's bound.
    client_budget_exceeded,      // The key's money budget for its period is spent.
    client_budget_too_small,     // What is left of it cannot cover this request's bound.
    client_model_price_missing,  // A key with a money budget and a model without a price.
    client_invalid_body,         // The field parser's own code and message go with it.
    client_model_not_allowed,
    client_rate_limited,
    client_concurrency_limited,
    client_tokens_limited,    // The key's (or key and model's) tpm has no room now.
    client_tokens_too_large,  // The request's token bound exceeds the tpm itself.
    client_model_not_found,
    client_response_not_found,  // A stored response this key did not create (or unknown).
    client_length_required,     // A chunked upload: 411 (an upload is relayed with its length).
    client_upload_too_large,    // Content-Length over RINGWAY_MAX_UPLOAD_BYTES: 413.
    client_gone,                // Reset or closed while the request was open: nobody to answer.
    // The gateway's side.
    local_no_channel,
    local_log_full,     // The usage queue has no room: refuse rather than lose a record.
    local_log_stalled,  // Usage commits have failed for RINGWAY_WRITER_STALL_MS: refuse.
    local_out_of_memory,
    local_no_upstream_slot,
    local_shutdown,  // The shutdown deadline closed the request.
    // The upstream's side.
    upstream_unreachable,
    upstream_tls_handshake_failed,
    upstream_tls_failed,
    upstream_connect_timeout,
    upstream_timeout,
    upstream_refused,  // 429 or 5xx head while another channel is left.
    upstream_send_failed,
    upstream_send_failed_answered,
    upstream_closed_unsent,  // A reused connection closed before the request left whole.
    upstream_closed_unanswered,
    upstream_reset,  // Cut (FIN or RST) in the middle of a response.
    upstream_lost,   // Failed in the middle of a response for another reason (TLS, errno).
    upstream_protocol_error,
    upstream_response_too_large,
    upstream_auth_failed,     // The provider refused the channel's own key (401/403).
    upstream_answered_error,  // The provider's own 4xx/5xx, relayed as it came.
    upstream_stream_error,    // The provider's error event inside a 2xx stream, relayed.
    count_,
};

struct FaultInfo {
    uint16_t status;                  // 0: no answer of the gateway's (see above).
    std::string_view code;            // OpenAI "code".
    std::string_view anthropic_type;  // Anthropic error.type for /v1/messages clients.
    std::string_view message;         // One sentence; never names a secret.
    EndReason end_reason;
    bool is_retry_safe;
    bool is_close;                 // The client connection closes after the answer.
    uint32_t retry_after_s;        // Retry-After on the answer (at most, when computed); 0: none.
    std::string_view openai_type;  // OpenAI "type" when not the status's (fault_openai_type).
    bool is_retry_futile;          // x-should-retry: false (no retry can change the answer).
};

// The error body's shape: the client's protocol. /v1/messages clients (the Anthropic SDK,
// Claude Code) read {"type":"error","error":{"type","message"}}; everyone else OpenAI's
// {"error":{"message","type","param","code"}}.
enum class ErrorShape : uint8_t { openai, anthropic };

[[nodiscard]] const FaultInfo& fault_info(Fault fault);
[[nodiscard]] std::string_view fault_name(Fault fault);  // The enumerator, for logs and tests.

// OpenAI's error "type" for an answer of this status: invalid_request_error for 4xx,
// server_error for 5xx.
[[nodiscard]] std::string_view fault_openai_type(uint16_t status);

// Bytes fault_body_write needs at most for this code and message.
[[nodiscard]] constexpr uint32_t fault_body_bytes_max(std::string_view code,
                                                      std::string_view message) {
    return static_cast<uint32_t>(128 + code.size() * 6 + message.size() * 6);
}

// The JSON error body of an answering fault in the client's shape into out; code and
// message replace the table's when not empty (message is escaped). Returns the bytes
// written, 0 when capacity is short.
[[nodiscard]] uint32_t fault_body_write(char* out, uint32_t capacity, Fault fault, ErrorShape shape,
                                        std::string_view code, std::string_view message);

}  // namespace rw
