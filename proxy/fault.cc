// proxy/fault.cc — the Fault table (see fault.h). One row per enumerator, in enum order;
// the static_asserts below keep the two in step, as http_parse.cc does for ParseError.
#include "proxy/fault.h"

#include <iterator>

#include <cstring>

#include "core/assert.h"
#include "core/text.h"

namespace rw {
namespace {

struct FaultRow {
    Fault fault;
    std::string_view name;
    FaultInfo info;
};

constexpr std::string_view out_of_memory = "The gateway is out of memory.";

// {status, code, anthropic_type, message, end_reason, is_retry_safe, is_close, retry_after,
//  openai_type (empty: by status), is_retry_futile}
// The client's refusals keep the connection (is_close false): the request was well framed
// and, once the core has read or dropped its body, the connection is as good as before
// (nginx answers 401/403/404/429 the same way). The core closes anyway when it could not
// read the body (core/handler.h on_head); malformed requests never reach this table.
constexpr FaultRow fault_rows[] = {
    {Fault::none, "none", {0, "", "", "", EndReason::complete, false, false, 0, "", false}},
    {Fault::client_method_not_allowed,
     "client_method_not_allowed",
     {405, "method_not_allowed", "invalid_request_error", "This method is not allowed here.",
      EndReason::local_error, false, false, 0, "", true}},
    {Fault::client_missing_api_key,
     "client_missing_api_key",
     {401, "missing_api_key", "authentication_error",
      "You didn't provide an API key. Send it as Authorization: Bearer <key>.",
      EndReason::local_error, false, false, 0, "", true}},
    {Fault::client_conflicting_api_keys,
     "client_conflicting_api_keys",
     {401, "invalid_api_key", "authentication_error",
      "Authorization and x-api-key carry different keys.", EndReason::local_error, false, false, 0,
      "", true}},
    {Fault::client_invalid_api_key,
     "client_invalid_api_key",
     {401, "invalid_api_key", "authentication_error", "Incorrect API key provided.",
      EndReason::local_error, false, false, 0, "", true}},
    {Fault::client_expired_api_key,
     "client_expired_api_key",
     {401, "invalid_api_key", "authentication_error",
      "This API key has been revoked or has expired.", EndReason::local_error, false, false, 0, "",
      true}},
    {Fault::client_ip_not_allowed,
     "client_ip_not_allowed",
     {403, "ip_not_allowed", "permission_error",
      "This API key may not be used from this client address.", EndReason::local_error, false,
      false, 0, "", true}},
    {Fault::client_quota_exceeded,
     "client_quota_exceeded",
     {429, "insufficient_quota", "rate_limit_error",
      "You exceeded the token quota of this API key.", EndReason::local_error, false, false, 0,
      "insufficient_quota", true}},
    {Fault::client_quota_too_small,
     "client_quota_too_small",
     {429, "insufficient_quota", "rate_limit_error",
      "This request could use more tokens than this API key has left (its body plus its "
      "max_tokens); lower max_tokens or raise the quota.",
      EndReason::local_error, false, false, 0, "insufficient_quota", true}},
    {Fault::client_budget_exceeded,
     "client_budget_exceeded",
     {429, "insufficient_quota", "rate_limit_error",
      "You exceeded the budget of this API key for its current period.", EndReason::local_error,
      false, false, 0, "insufficient_quota", true}},
    {Fault::client_budget_too_small,
     "client_budget_too_small",
     {429, "insufficient_quota", "rate_limit_error",
      "This request could cost more than this API key has left of its budget (its body plus "
      "its max_tokens at the model's price); lower max_tokens or top the budget up.",
      EndReason::local_error, false, false, 0, "insufficient_quota", true}},
    {Fault::client_model_price_missing,
     "client_model_price_missing",
     {403, "model_price_missing", "permission_error",
      "The model has no price, and this API key has a money budget.", EndReason::local_error, false,
      false, 0, "", true}},
    {Fault::client_invalid_body,
     "client_invalid_body",
     {400, "invalid_request", "invalid_request_error", "The request body is not valid.",
      EndReason::local_error, false, false, 0, "", true}},
    {Fault::client_model_not_allowed,
     "client_model_not_allowed",
     {403, "model_not_allowed", "permission_error",
      "This API key is not allowed to use the requested model.", EndReason::local_error, false,
      false, 0, "", true}},
    {Fault::client_rate_limited,
     "client_rate_limited",
     {429, "rate_limit_exceeded", "rate_limit_error",
      "Rate limit reached for requests per minute on this API key.", EndReason::local_error, false,
      false, 60, "requests", false}},
    {Fault::client_concurrency_limited,
     "client_concurrency_limited",
     {429, "concurrency_limit_exceeded", "rate_limit_error",
      "Too many requests in flight on this API key.", EndReason::local_error, false, false, 1,
      "requests", false}},
    {Fault::client_tokens_limited,
     "client_tokens_limited",
     {429, "rate_limit_exceeded", "rate_limit_error",
      "Rate limit reached for tokens per minute on this API key.", EndReason::local_error, false,
      false, 60, "tokens", false}},
    {Fault::client_tokens_too_large,
     "client_tokens_too_large",
     {429, "rate_limit_exceeded", "rate_limit_error",
      "This request could use more tokens than this API key's tokens per minute (its body "
      "plus its max_tokens); lower max_tokens or raise the tpm.",
      EndReason::local_error, false, false, 0, "tokens", true}},
    {Fault::client_model_not_found,
     "client_model_not_found",
     {404, "model_not_found", "not_found_error",
      "The model does not exist or you do not have access to it.", EndReason::local_error, false,
      false, 0, "", true}},
    // OpenAI's own answer for an id it does not know (or another organisation's).
    {Fault::client_response_not_found,
     "client_response_not_found",
     {404, "response_not_found", "not_found_error", "No response with this id was found.",
      EndReason::local_error, false, false, 0, "", true}},
    {Fault::client_length_required,
     "client_length_required",
     {411, "length_required", "invalid_request_error",
      "An upload needs a Content-Length (chunked uploads are not relayed).", EndReason::local_error,
      false, true, 0, "", true}},
    {Fault::client_upload_too_large,
     "client_upload_too_large",
     {413, "upload_too_large", "invalid_request_error",
      "The upload is larger than the gateway allows (RINGWAY_MAX_UPLOAD_BYTES).",
      EndReason::local_error, false, true, 0, "", true}},
    {Fault::client_gone,
     "client_gone",
     {0, "", "", "", EndReason::client_gone, false, true, 0, "", false}},
    {Fault::local_no_channel,
     "local_no_channel",
     {503, "no_channel_available", "overloaded_error",
      "No upstream channel for the model is reachable right now.", EndReason::local_error, false,
      true, 0, "", false}},
    {Fault::local_log_full,
     "local_log_full",
     {503, "overloaded", "overloaded_error",
      "The gateway is overloaded: its usage log is behind. Retry shortly.", EndReason::local_error,
      false, false, 1, "", false}},
    {Fault::local_log_stalled,
     "local_log_stalled",
     {503, "usage_log_unavailable", "overloaded_error",
      "The gateway cannot record usage right now (its database is failing). Retry later.",
      EndReason::local_error, false, false, 5, "", false}},
    {Fault::local_out_of_memory,
     "local_out_of_memory",
     {503, "overloaded", "overloaded_error", out_of_memory, EndReason::local_error, false, true, 1,
      "", false}},
    {Fault::local_no_upstream_slot,
     "local_no_upstream_slot",
     {503, "overloaded", "overloaded_error", "The gateway has no free upstream connection.",
      EndReason::local_error, true, false, 1, "", false}},
    {Fault::local_shutdown,
     "local_shutdown",
     {0, "", "", "", EndReason::shutdown, false, true, 0, "", false}},
    {Fault::upstream_unreachable,
     "upstream_unreachable",
     {502, "upstream_unreachable", "api_error", "The upstream could not be reached.",
      EndReason::upstream_error, true, true, 0, "", false}},
    {Fault::upstream_tls_handshake_failed,
     "upstream_tls_handshake_failed",
     {502, "upstream_tls_failed", "api_error", "The TLS connection to the upstream failed.",
      EndReason::upstream_error, true, true, 0, "", false}},
    {Fault::upstream_tls_failed,
     "upstream_tls_failed",
     {502, "upstream_tls_failed", "api_error", "The TLS connection to the upstream failed.",
      EndReason::upstream_error, false, true, 0, "", false}},
    {Fault::upstream_connect_timeout,
     "upstream_connect_timeout",
     {504, "upstream_timeout", "api_error", "Connecting to the upstream timed out.",
      EndReason::upstream_timeout, true, true, 0, "", false}},
    {Fault::upstream_timeout,
     "upstream_timeout",
     {504, "upstream_timeout", "api_error", "The upstream did not answer in time.",
      EndReason::upstream_timeout, false, true, 0, "", false}},
    {Fault::upstream_refused,
     "upstream_refused",
     {502, "upstream_error", "api_error", "The upstream refused the request.",
      EndReason::upstream_error, true, true, 0, "", false}},
    {Fault::upstream_send_failed,
     "upstream_send_failed",
     {502, "upstream_error", "api_error", "The upstream connection failed while sending.",
      EndReason::upstream_reset, true, true, 0, "", false}},
    {Fault::upstream_send_failed_answered,
     "upstream_send_failed_answered",
     {502, "upstream_error", "api_error", "The upstream connection failed while sending.",
      EndReason::upstream_reset, false, true, 0, "", false}},
    {Fault::upstream_closed_unsent,
     "upstream_closed_unsent",
     {502, "upstream_error", "api_error", "The upstream closed the connection without answering.",
      EndReason::upstream_reset, true, true, 0, "", false}},
    {Fault::upstream_closed_unanswered,
     "upstream_closed_unanswered",
     {502, "upstream_error", "api_error", "The upstream closed the connection without answering.",
      EndReason::upstream_reset, false, true, 0, "", false}},
    {Fault::upstream_reset,
     "upstream_reset",
     {502, "upstream_error", "api_error", "The upstream connection was lost.",
      EndReason::upstream_reset, false, true, 0, "", false}},
    {Fault::upstream_lost,
     "upstream_lost",
     {502, "upstream_error", "api_error", "The upstream connection was lost.",
      EndReason::upstream_error, false, true, 0, "", false}},
    {Fault::upstream_protocol_error,
     "upstream_protocol_error",
     {502, "upstream_protocol_error", "api_error", "The upstream sent a malformed response.",
      EndReason::upstream_protocol_error, false, true, 0, "", false}},
    {Fault::upstream_response_too_large,
     "upstream_response_too_large",
     {502, "upstream_response_too_large", "api_error",
      "The upstream response exceeds RINGWAY_MAX_RESPONSE_BYTES.",
      EndReason::upstream_protocol_error, false, true, 0, "", false}},
    {Fault::upstream_auth_failed,
     "upstream_auth_failed",
     {502, "upstream_auth_failed", "api_error",
      "The upstream rejected the gateway's credentials for this channel.",
      EndReason::upstream_error, true, true, 0, "", false}},
    {Fault::upstream_answered_error,
     "upstream_answered_error",
     {0, "", "", "", EndReason::upstream_error, false, false, 0, "", false}},
    {Fault::upstream_stream_error,
     "upstream_stream_error",
     {0, "", "", "", EndReason::upstream_stream_error, false, false, 0, "", false}},
};

constexpr bool rows_in_enum_order() {
    for (uint32_t i = 0; i < std::size(fault_rows); i++) {
        if (static_cast<uint32_t>(fault_rows[i].fault) != i) {
            return false;
        }
    }
    return true;
}

// Every enumerator has its row, in order; answering faults have a code and a message,
// silent ones (status 0) neither; only a fault that reached no upstream is retry-safe
// or answers before an upstream could.
constexpr bool rows_are_consistent() {
    for (const FaultRow& row : fault_rows) {
        const FaultInfo& info = row.info;
        const bool answers = info.status != 0;
        if (answers != !info.code.empty() || answers != !info.message.empty() ||
            answers != !info.anthropic_type.empty()) {
            return false;
        }
        if (answers && (info.status < 400 || info.status > 599)) {
            return false;
        }
    }
    return true;
}

static_assert(std::size(fault_rows) == static_cast<size_t>(Fault::count_));
static_assert(rows_in_enum_order());
static_assert(rows_are_consistent());

}  // namespace

const FaultInfo& fault_info(Fault fault) {
    const auto index = static_cast<uint32_t>(fault);
    RW_ASSERT(index < std::size(fault_rows));
    return fault_rows[index].info;
}

std::string_view fault_name(Fault fault) {
    const auto index = static_cast<uint32_t>(fault);
    RW_ASSERT(index < std::size(fault_rows));
    return fault_rows[index].name;
}

std::string_view fault_openai_type(uint16_t status) {
    return status >= 500 ? "server_error" : "invalid_request_error";
}

uint32_t fault_body_write(char* out, uint32_t capacity, Fault fault, ErrorShape shape,
                          std::string_view code, std::string_view message) {
    const FaultInfo& info = fault_info(fault);
    RW_ASSERT(info.status != 0);  // Silent faults have no body.
    const std::string_view body_code = code.empty() ? info.code : code;
    const std::string_view body_message = message.empty() ? info.message : message;
    if (capacity < fault_body_bytes_max(body_code, body_message)) {
        return 0;
    }
    char* cursor = out;
    auto put = [&cursor](std::string_view text) {
        std::memcpy(cursor, text.data(), text.size());
        cursor += text.size();
    };
    if (shape == ErrorShape::anthropic) {
        put(R"({"type":"error","error":{"type":")");
        put(info.anthropic_type);
        put(R"(","message":")");
        cursor = json_escape_write(cursor, body_message);
        put(R"("}})");
    } else {
        put(R"({"error":{"message":")");
        cursor = json_escape_write(cursor, body_message);
        put(R"(","type":")");
        put(info.openai_type.empty() ? fault_openai_type(info.status) : info.openai_type);
        put(R"(","param":null,"code":")");
        cursor = json_escape_write(cursor, body_code);
        put(R"("}})");
    }
    const auto length = static_cast<uint32_t>(cursor - out);
    RW_ASSERT(length <= capacity);
    return length;
}

}  // namespace rw
