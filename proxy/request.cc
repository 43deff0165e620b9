// proxy/request.cc — a proxied request's start and its one exit (see request.h). The
// billing rule and the record's content are usage_record.cc's; here they are applied to
// the request and the record is pushed into the queue slot reserved at admission, which
// cannot fail. Shard thread only.
#include "proxy/request.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "core/http_write.h"
#include "core/log.h"
#include "core/text.h"
#include "core/wall_clock.h"
#include "proxy/budget.h"
#include "proxy/gateway.h"
#include "proxy/usage_record.h"

namespace rw {
namespace {

// The one usage record of a request that reached an upstream, pushed into the slot
// reserved at admission; the token counters follow it. Returns the tokens it charges.
int64_t request_record(Gateway& gateway, ProxyRequest& request, EndReason reason,
                       int64_t& charged_nano) {
    RW_ASSERT(request.attempts_made > 0);
    RW_ASSERT(request.has_queue_reservation);  // Admission reserved it before any attempt.
    const Candidate& candidate = request.candidates[request.attempt_index];
    const uint64_t now_us = proxy_clock_us();
    const Conn& conn = *request.conn;
    // The price in force at the request's start for the model and channel that served it
    // (cost.h says why the shard prices the row). The snapshot is held for this call
    // only: nothing of it is kept, the record copies the cost and the price id. No other
    // hold is live here: request_finish never runs inside admission's.
    SnapshotPublisher& publisher = *gateway.shared.snapshots;
    const Snapshot* snapshot = publisher.acquire(gateway.shard.index());
    const PriceEntry* price =
        snapshot != nullptr ? snapshot->prices().find(candidate.model_sent, candidate.channel_id,
                                                      request.started_unix_ms)
                            : nullptr;
    const UsageRecordInput input{
        request.started_unix_ms,
        request.key_id,
        candidate.channel_id,
        now_us - request.started_us,
        request.first_byte_us != 0 ? request.first_byte_us - request.started_us : 0,
        request.bytes_in,
        // Written when the response is queued, before its sends complete: a client still
        // there gets everything queued; a gone one got what was sent.
        request.is_client_gone ? client_bytes_sent(conn) : client_bytes_queued(conn),
        request.usage,
        request.parser.head().status,
        request.status_sent,
        request.body.size(),
        request.scanner.events_count(),
        static_cast<uint16_t>(request.attempts_made),
        reason,
        request.model_requested,
        candidate.model_sent,
        endpoint_path(request.endpoint),
        request.request_id,
        request.client_request_id,
        request.traceparent,
        request.parser.head().request_id,
        price,
    };
    const UsageRecord record = usage_record_build(input);
    publisher.quiesce(gateway.shard.index());  // `price` is not used past this line.
    if (record.price_id == 0) {
        gateway.metrics.unpriced_requests.add();
    }
    gateway.shared.writer->queue(gateway.shard.index()).push(record);  // Reserved: cannot fail.
    request_attempt_over(request);
    const uint64_t duration_us = now_us - request.started_us;
    metrics_observe(
        gateway.metrics, *gateway.shared.metrics_shared,
        {request.endpoint, duration_us, std::min(request.upstream_us, duration_us), request.ttft_us,
         request.model_requested, candidate.channel_id, record.prompt_tokens,
         record.completion_tokens, static_cast<uint64_t>(std::max<int64_t>(record.cost_nano, 0))});
    request.has_queue_reservation = false;
    gateway.has_records_pushed = true;
    gateway.metrics.records_pushed.add();
    gateway.metrics.tokens_prompt.add(record.prompt_tokens);
    gateway.metrics.tokens_completion.add(record.completion_tokens);
    RW_LOG_DEBUG(
        "event=request_done key_id=%ld channel_id=%ld status=%u end=%.*s tokens=%u "
        "source=%.*s attempts=%u cost_nano=%ld price_id=%ld",
        static_cast<long>(record.key_id), static_cast<long>(record.channel_id), record.status,
        int(end_reason_name(reason).size()), end_reason_name(reason).data(), record.total_tokens,
        int(usage_source_name(record.usage_source).size()),
        usage_source_name(record.usage_source).data(), record.attempts,
        static_cast<long>(record.cost_nano), static_cast<long>(record.price_id));
    charged_nano = record.cost_nano;
    return record.total_tokens;
}

// The key's in-memory quota word follows the record: a reservation is replaced by what
// was charged (0 when the request never reached an upstream), an unlimited key is charged.
void request_settle_quota(Gateway& gateway, ProxyRequest& request, int64_t charged_tokens) {
    if (!request.holds_quota) {
        if (charged_tokens > 0) {
            gateway.shared.quotas->add_tokens(request.quota_slot, charged_tokens);
        }
        return;
    }
    const int64_t reserved = request.quota_reserved_tokens;
    gateway.shared.quotas->settle(request.quota_slot, reserved, charged_tokens);
    quota_reservation_close(gateway, reserved, charged_tokens);
    request.holds_quota = false;
}

// A started stream cannot carry an error status any more: RULES §7, an SSE error event the
// SDKs raise, then no terminating chunk, so an HTTP client sees an incomplete body. The
// event is in the client's protocol: OpenAI's SDK raises on a data: {"error":…} event,
// Anthropic's on `event: error` (its documented mid-stream error).
void request_stream_abort(Gateway& gateway, ProxyRequest& request) {
    gateway.metrics.streams_aborted.add();
    if (request.is_client_gone) {
        return;
    }
    if (request.is_relaying_binary) {
        client_stream_end(*request.conn, false);  // No event in audio: the body stays short.
        return;
    }
    static constexpr std::string_view openai_event =
        "data: {\"error\":{\"message\":\"upstream connection lost\",\"type\":"
        "\"upstream_error\"}}\n\n";
    static constexpr std::string_view anthropic_event =
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\","
        "\"message\":\"upstream connection lost\"}}\n\n";
    const std::string_view error_event =
        request.error_shape == ErrorShape::anthropic ? anthropic_event : openai_event;
    [[maybe_unused]] const bool is_queued = client_stream_piece(*request.conn, error_event, no_bid);
    client_stream_end(*request.conn, false);
}

// The stream head went out early (keep-alive) and no channel answered with a stream: the
// fault's error becomes one event in the client's protocol (its error body as data, after
// `event: error` on Anthropic's), and the stream ends without its terminating chunk. The
// row's status is the fault's, as the answer would have had without the early head.
void request_early_stream_abort(Gateway& gateway, ProxyRequest& request, Fault fault) {
    const FaultInfo& info = fault_info(fault);
    request.is_response_started = true;
    if (info.status == 0 || request.is_client_gone) {
        return;
    }
    gateway.metrics.streams_aborted.add();
    request.status_sent = info.status;
    const std::string_view code = request.fault_code.empty() ? info.code : request.fault_code;
    const std::string_view message =
        request.fault_message.empty() ? info.message : request.fault_message;
    constexpr std::string_view anthropic_prefix = "event: error\ndata: ";
    constexpr std::string_view openai_prefix = "data: ";
    const std::string_view prefix =
        request.error_shape == ErrorShape::anthropic ? anthropic_prefix : openai_prefix;
    const uint32_t capacity = fault_body_bytes_max(code, message) + uint32_t(prefix.size()) + 2;
    auto* event = static_cast<char*>(client_arena(*request.conn).alloc(capacity, 1));
    if (event != nullptr) {
        std::memcpy(event, prefix.data(), prefix.size());
        const uint32_t length =
            fault_body_write(event + prefix.size(), capacity - uint32_t(prefix.size()) - 2, fault,
                             request.error_shape, code, message);
        std::memcpy(event + prefix.size() + length, "\n\n", 2);
        [[maybe_unused]] const bool is_queued =
            client_stream_piece(*request.conn, {event, prefix.size() + length + 2}, no_bid);
    }
    client_stream_end(*request.conn, false);
}

// What the client gets, if anything, for the fault the request ends with.
void request_answer(Gateway& gateway, ProxyRequest& request, Fault fault) {
    if (request.is_head_early && !request.is_relaying_stream) {
        if (!request.is_response_started) {
            request_early_stream_abort(gateway, request, fault);
        }
        return;
    }
    if (request.is_relaying_stream) {
        // The provider's own error event already went out as it came (upstream_stream_error).
        if (fault != Fault::none && fault != Fault::client_gone && fault != Fault::local_shutdown &&
            fault != Fault::upstream_stream_error) {
            request_stream_abort(gateway, request);
        }
        request.usage = request.scanner.usage();
        return;
    }
    const FaultInfo& info = fault_info(fault);
    if (info.status == 0 || request.is_client_gone || request.is_response_started) {
        return;
    }
    fault_respond(*request.conn, fault,
                  {request.error_shape, request.fault_code, request.fault_message,
                   request.retry_after_s, request.request_id, &request.rate});
    request.is_response_started = true;
    request.status_sent = info.status;
}

bool is_lower_hex(std::string_view text) {
    for (const char c : text) {
        if ((c < '0' || c > '9') && (c < 'a' || c > 'f')) {
            return false;
        }
    }
    return true;
}

}  // namespace

std::string_view request_id_make(Gateway& gateway, char (&out)[request_id_bytes_max]) {
    char* cursor = out;
    char* const end = out + sizeof(out);
    auto put = [&](std::string_view text) {
        RW_ASSERT(cursor + text.size() <= end);
        std::memcpy(cursor, text.data(), text.size());
        cursor += text.size();
    };
    // No snprintf: no format parsing per request. 3+10+1+16+1+16 bytes at most.
    put("rw-");
    cursor = decimal_write(cursor, gateway.shard.index());
    put("-");
    cursor = std::to_chars(cursor, end, static_cast<uint64_t>(wall_clock_unix_ms()), 16).ptr;
    put("-");
    cursor = std::to_chars(cursor, end, ++gateway.request_sequence, 16).ptr;
    RW_ASSERT(cursor <= end);
    return {out, static_cast<size_t>(cursor - out)};
}

std::string_view request_id_header(char (&out)[request_id_header_bytes_max],
                                   std::string_view request_id) {
    constexpr std::string_view name = "x-request-id: ";
    if (request_id.empty()) {
        return {};
    }
    RW_ASSERT(name.size() + request_id.size() + 2 <= sizeof(out));
    std::memcpy(out, name.data(), name.size());
    std::memcpy(out + name.size(), request_id.data(), request_id.size());
    std::memcpy(out + name.size() + request_id.size(), "\r\n", 2);
    return {out, name.size() + request_id.size() + 2};
}

void request_client_ids(const ParsedRequest& http, std::string_view& client_request_id,
                        std::string_view& traceparent) {
    client_request_id = http.find_header("x-request-id");
    bool is_visible =
        !client_request_id.empty() && client_request_id.size() <= record_foreign_id_bytes_max;
    for (const char c : client_request_id) {
        is_visible = is_visible && c > ' ' && c <= '~';
    }
    if (!is_visible) {
        client_request_id = {};
    }
    // version "-" trace-id "-" parent-id "-" flags: 2-32-16-2 lower-case hex digits.
    traceparent = http.find_header("traceparent");
    const bool is_shaped =
        traceparent.size() == traceparent_bytes && traceparent[2] == '-' &&
        traceparent[35] == '-' && traceparent[52] == '-' &&
        is_lower_hex(traceparent.substr(0, 2)) && is_lower_hex(traceparent.substr(3, 32)) &&
        is_lower_hex(traceparent.substr(36, 16)) && is_lower_hex(traceparent.substr(53, 2));
    if (!is_shaped) {
        traceparent = {};
    }
}

ProxyRequest* request_create(Gateway& gateway, Conn& conn, std::string_view request_id) {
    Arena& arena = client_arena(conn);
    auto* request = arena.make<ProxyRequest>();
    const char* id_copy = request != nullptr ? arena.copy(request_id) : nullptr;
    if (id_copy == nullptr) {
        return nullptr;
    }
    request->request_id = {id_copy, request_id.size()};
    request->conn = &conn;
    request->upstream_slot = UINT32_MAX;
    request->started_ms = gateway.shard.now_ms();
    request->started_unix_ms = wall_clock_unix_ms();  // Admission's clock (expiry, rpm minute).
    request->fault = Fault::none;
    return request;
}

void request_start(Gateway& gateway, ProxyRequest& request) {
    RW_ASSERT(!request.is_finished);
    RW_ASSERT(request.conn != nullptr);
    Conn& conn = *request.conn;
    // Latency and the row's time count from the complete request, as before the head
    // hook: the upload is the client's time, not the gateway's.
    request.started_ms = gateway.shard.now_ms();
    request.started_us = proxy_clock_us();
    request.started_unix_ms = wall_clock_unix_ms();
    request.bytes_in = client_request(conn).body.size();
    // Views into the request's headers, read now as admission_body reads them.
    request_client_ids(client_request(conn), request.client_request_id, request.traceparent);
    client_take(conn, &request);
    gateway.metrics.requests_started.add();
}

void request_refuse_head(Gateway& gateway, ProxyRequest& request, Fault fault) {
    RW_ASSERT(fault != Fault::none);
    RW_ASSERT(request.attempts_made == 0);
    request_abandon(gateway, request);
    gateway.metrics.faults[static_cast<uint32_t>(fault)].add();  // request_finish counts the rest.
    fault_respond(*request.conn, fault,
                  {request.error_shape, request.fault_code, request.fault_message,
                   request.retry_after_s, request.request_id, &request.rate});
}

void request_abandon(Gateway& gateway, ProxyRequest& request) {
    RW_ASSERT(!request.has_queue_reservation);  // Reserved only once the body is in.
    rate_limit_release(gateway, request, false, 0);
    if (request.holds_concurrency) {
        gateway.shared.key_limits->concurrency_release(request.quota_slot);
        request.holds_concurrency = false;
    }
}

void request_finish(Gateway& gateway, ProxyRequest& request, Fault fault) {
    if (request.is_finished) {
        return;  // A timeout may race an upstream error or the client going away.
    }
    request.is_finished = true;
    request.is_in_finish = true;
    request.fault = fault;
    gateway.metrics.faults[static_cast<uint32_t>(fault)].add();  // [none] is never rendered.
    if (request.trial_channel_id != 0) {
        // The trial ended without an outcome on its channel (cut, client gone): give it back.
        gateway.shared.health->trial_abandoned(request.trial_channel_id);
        request.trial_channel_id = 0;
    }
    if (request.upstream_slot != UINT32_MAX) {
        gateway.pool.close(gateway.pool.at(request.upstream_slot));  // Detaches the request.
    }
    request_answer(gateway, request, fault);
    int64_t charged_nano = 0;
    const int64_t charged_tokens =
        request.attempts_made > 0
            ? request_record(gateway, request, fault_info(fault).end_reason, charged_nano)
            : 0;
    request_settle_quota(gateway, request, charged_tokens);
    rate_limit_release(gateway, request, request.attempts_made > 0, charged_tokens);
    budget_settle(gateway, request, charged_tokens, charged_nano);
    // Counted finished only once its record and tokens are counted, and published with
    // release: a scrape that reads the in-flight gauge at 0 (acquire) reads every record.
    gateway.metrics.requests_finished.add_release();
    // A request that never reached an upstream (refused at admission, no free connection)
    // spent nothing: no record, and request_maybe_release gives its queue slot back.
    if (request.holds_concurrency) {
        gateway.shared.key_limits->concurrency_release(request.quota_slot);
        request.holds_concurrency = false;
    }
    request.is_in_finish = false;
    request_maybe_release(gateway, request);
}

void request_maybe_release(Gateway& gateway, ProxyRequest& request) {
    if (!request.is_finished || request.is_in_finish || request.is_released ||
        request.is_retry_queued || request.upstream_slot != UINT32_MAX ||
        request.upstreams_closing > 0) {
        return;
    }
    RW_ASSERT(!request.holds_concurrency);  // request_finish released it.
    RW_ASSERT(!request.holds_quota);        // ... and settled its reservation.
    RW_ASSERT(!request.holds_budget_nano && !request.holds_budget_tokens);
    if (request.has_queue_reservation) {
        gateway.shared.writer->queue(gateway.shard.index()).cancel_reservation();
        request.has_queue_reservation = false;
    }
    request.is_released = true;
    client_release(*request.conn);  // The request's memory may go after this.
}

// The client went away (reset, deadline, forced shutdown) while the request was ours:
// the upstream stops at once (its buffers come back as its SQEs complete) and what is
// known is recorded. Closed by the drain deadline rather than by the client, it is
// end_reason=shutdown (RULES §8); a client that leaves while the gateway drains is still
// client_gone. An already finished request is released once its upstream let go.
void request_on_client_gone(Gateway& gateway, ProxyRequest& request, ClientGone why) {
    request.is_client_gone = true;
    request_finish(gateway, request,
                   why == ClientGone::drain_deadline ? Fault::local_shutdown : Fault::client_gone);
    request_maybe_release(gateway, request);
}

void fault_respond(Conn& conn, Fault fault, const FaultAnswer& answer) {
    const FaultInfo& info = fault_info(fault);
    RW_ASSERT(info.status != 0);
    const std::string_view code = answer.code.empty() ? info.code : answer.code;
    const std::string_view message = answer.message.empty() ? info.message : answer.message;
    const uint32_t capacity = fault_body_bytes_max(code, message);
    auto* body = static_cast<char*>(client_arena(conn).alloc(capacity, 1));
    const uint32_t length =
        body != nullptr ? fault_body_write(body, capacity, fault, answer.shape, code, message) : 0;
    // Ringway's "x-request-id: <id>\r\n", then Retry-After and x-should-retry as the fault says.
    char headers[request_id_header_bytes_max + 64 + rate_headers_bytes_max];
    char id_header[request_id_header_bytes_max];
    const std::string_view id_line = request_id_header(id_header, answer.request_id);
    char* cursor = headers;
    auto put = [&cursor](std::string_view text) {
        if (!text.empty()) {
            std::memcpy(cursor, text.data(), text.size());
            cursor += text.size();
        }
    };
    put(id_line);
    const uint32_t retry_after_s =
        answer.retry_after_s != 0 ? answer.retry_after_s : info.retry_after_s;
    if (retry_after_s != 0) {
        put("Retry-After: ");
        cursor = decimal_write(cursor, retry_after_s);
        put("\r\n");
    }
    if (info.is_retry_futile) {
        put("x-should-retry: false\r\n");  // Honoured by the OpenAI and Anthropic SDKs.
    }
    if (answer.rate != nullptr) {
        char rate[rate_headers_bytes_max];
        put({rate, rate_headers_write(*answer.rate, rate)});
    }
    RW_ASSERT(cursor <= headers + sizeof(headers));
    // Without memory for a body, the status and headers still go out (an empty body).
    client_respond(conn, {info.status,
                          "application/json",
                          {body, length},
                          {headers, static_cast<size_t>(cursor - headers)},
                          info.is_close});
}

}  // namespace rw
