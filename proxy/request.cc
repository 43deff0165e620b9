// proxy/request.cc — the single exit of a proxied request (STYLE P4). request_finish()
// runs once, whatever ended the request: it fixes the usage and its source by the billing
// rule below, charges the key's in-memory quota, pushes the one usage record into the
// shard's queue slot reserved at admission, and releases the concurrency slot. The
// client connection is released to the core only when no upstream SQE can still read the
// request's arena (request_maybe_release).
//
// Billing rule (explicit, tested): tokens reported by the upstream are charged as
// reported. When a request reached an upstream that answered 2xx but no usage arrived
// (client gone before the usage event, upstream cut off, stream without usage), tokens are
// estimated and marked usage_source=estimated: prompt = ceil(request body bytes / 4),
// completion = content events relayed (about one token each for chat deltas). An upstream
// error answer (4xx/5xx) without usage charges nothing (usage_source=unknown).
#include <time.h>

#include <charconv>
#include <cstdio>
#include <cstring>

#include "core/log.h"
#include "proxy/gateway.h"
#include "proxy/gateway_types.h"

namespace rw {
namespace {

uint32_t clamp32(uint64_t value) {
    return value > UINT32_MAX ? UINT32_MAX : uint32_t(value);
}

std::string_view endpoint_name(Endpoint endpoint) {
    switch (endpoint) {
        case Endpoint::chat: return "/v1/chat/completions";
        case Endpoint::completions: return "/v1/completions";
        case Endpoint::embeddings: return "/v1/embeddings";
        case Endpoint::responses: return "/v1/responses";
        case Endpoint::messages: return "/v1/messages";
    }
    return "";
}

}  // namespace

void Gateway::request_finish(ProxyRequest& request, EndReason reason) {
    if (request.is_finished) {
        return;  // A timeout may race an upstream error or the client going away.
    }
    request.is_finished = true;
    request.end_reason = reason;
    if (request.attempts_made > 0) {
        request_record(request, reason);
    }
    // Counted finished only once its record and tokens are counted, and published with
    // release: a scrape that reads the in-flight gauge at 0 (acquire) reads every record.
    metrics_.requests_finished.add_release();
    // A request that never reached an upstream (refused at admission, no free connection)
    // spent nothing: no record, and request_maybe_release gives its queue slot back.
    if (request.holds_concurrency) {
        shared_.key_limits->concurrency_release(request.quota_slot);
        request.holds_concurrency = false;
    }
    request_maybe_release(request);
}

// The one usage record of a request that reached an upstream: usage by the billing rule
// above, the key's in-memory quota, and a push into the slot reserved at admission.
void Gateway::request_record(ProxyRequest& request, EndReason reason) {
    RW_ASSERT(request.attempts_made > 0);
    RW_ASSERT(request.has_queue_reservation);  // Admission reserved it before any attempt.
    if (request.usage.has_usage) {
        request.usage_source = UsageSource::reported;
        if (request.usage.total_tokens == 0) {
            request.usage.total_tokens =
                request.usage.prompt_tokens + request.usage.completion_tokens;
        }
    } else if (request.parser.head().status >= 200 && request.parser.head().status < 300) {
        request.usage_source = UsageSource::estimated;
        request.usage.prompt_tokens = (request.body.size() + 3) / 4;
        request.usage.completion_tokens = request.scanner.events_count();
        request.usage.total_tokens = request.usage.prompt_tokens + request.usage.completion_tokens;
    } else {
        request.usage_source = UsageSource::unknown;
        request.usage = UsageCounts{};
    }
    const Candidate& candidate = request.candidates[request.attempt_index];
    UsageRecord record{};
    record.ts_ms = request.started_unix_ms;
    record.key_id = request.key_id;
    record.channel_id = candidate.channel_id;
    const uint64_t now_us = proxy_clock_us();
    record.latency_us = now_us - request.started_us;
    record.ttfb_us = request.first_byte_us != 0 ? request.first_byte_us - request.started_us : 0;
    record.bytes_in = request.bytes_in;
    // The record is written when the response is queued, before its sends complete: a
    // client still there gets everything queued; a gone one got what was sent.
    record.bytes_out = request.is_client_gone ? request.conn->response_bytes_sent
                                              : request.conn->response_bytes_queued;
    record.prompt_tokens = clamp32(request.usage.prompt_tokens);
    record.completion_tokens = clamp32(request.usage.completion_tokens);
    record.total_tokens = clamp32(request.usage.total_tokens);
    record.status = request.status_sent != 0 ? request.status_sent : request.parser.head().status;
    record.attempts = static_cast<uint16_t>(request.attempts_made);
    record.usage_source = request.usage_source;
    record.end_reason = reason;
    record_set_text(record.model_requested, request.model_requested);
    record_set_text(record.model_sent, candidate.model_sent);
    record_set_text(record.endpoint, endpoint_name(request.endpoint));
    // "rw-<shard>-<start ms, hex>-<sequence, hex>": unique per process run and shard.
    // Built with to_chars (no format parsing per request); at most 3+10+1+16+1+16 bytes.
    char shard_text[12];
    char start_text[17];
    char sequence_text[17];
    const std::string_view parts[] = {
        "rw-",
        {shard_text,
         static_cast<size_t>(
             std::to_chars(shard_text, shard_text + sizeof(shard_text), shard_.index()).ptr -
             shard_text)},
        "-",
        {start_text,
         static_cast<size_t>(std::to_chars(start_text, start_text + sizeof(start_text),
                                           static_cast<uint64_t>(request.started_unix_ms), 16)
                                 .ptr -
                             start_text)},
        "-",
        {sequence_text,
         static_cast<size_t>(std::to_chars(sequence_text, sequence_text + sizeof(sequence_text),
                                           ++request_sequence_, 16)
                                 .ptr -
                             sequence_text)},
    };
    char request_id[64];
    size_t id_bytes = 0;
    for (const std::string_view part : parts) {
        RW_ASSERT(id_bytes + part.size() <= sizeof(request_id));
        std::memcpy(request_id + id_bytes, part.data(), part.size());
        id_bytes += part.size();
    }
    record_set_text(record.request_id, {request_id, id_bytes});
    shared_.writer->queue(shard_.index()).push(record);  // Cannot fail: reserved at admission.
    request.has_queue_reservation = false;
    has_records_pushed_ = true;
    metrics_.records_pushed.add();
    if (record.total_tokens > 0) {
        shared_.quotas->add_tokens(request.quota_slot, record.total_tokens);
        metrics_.tokens_prompt.add(record.prompt_tokens);
        metrics_.tokens_completion.add(record.completion_tokens);
    }
    RW_LOG_DEBUG(
        "event=request_done key_id=%ld channel_id=%ld status=%u end=%.*s tokens=%u "
        "source=%.*s attempts=%u",
        static_cast<long>(record.key_id), static_cast<long>(record.channel_id), record.status,
        int(end_reason_name(reason).size()), end_reason_name(reason).data(), record.total_tokens,
        int(usage_source_name(record.usage_source).size()),
        usage_source_name(record.usage_source).data(), record.attempts);
}

// Gives the client connection back to the core once the request is finished and no
// upstream SQE can still read its arena. A reservation still held means no record was
// pushed: it is given back here.
void Gateway::request_maybe_release(ProxyRequest& request) {
    if (!request.is_finished || request.is_released || request.upstream_slot != UINT32_MAX ||
        request.upstreams_closing > 0) {
        return;
    }
    RW_ASSERT(!request.holds_concurrency);  // request_finish released it.
    if (request.has_queue_reservation) {
        shared_.writer->queue(shard_.index()).cancel_reservation();
        request.has_queue_reservation = false;
    }
    request.is_released = true;
    shard_.handler_release(*request.conn);  // The request's memory may go after this.
}

void Gateway::on_client_gone_thunk(void* context, Conn& conn) {
    static_cast<Gateway*>(context)->on_client_gone(conn);
}

// The client went away (reset, deadline, forced shutdown) while the request was ours:
// stop the upstream at once (its buffers come back as its SQEs complete) and record
// what is known, with end_reason=client_gone.
void Gateway::on_client_gone(Conn& conn) {
    auto* request = static_cast<ProxyRequest*>(conn.handler_request);
    RW_ASSERT(request != nullptr);
    request->is_client_gone = true;
    if (request->upstream_slot != UINT32_MAX) {
        UpstreamConn& upstream = upstreams_[request->upstream_slot];
        upstream_close(upstream);
    }
    if (request->is_relaying_stream && !request->is_finished) {
        request->usage = request->scanner.usage();
    }
    // Closed by the drain deadline rather than by the client (RULES §8). A client that
    // leaves while the gateway drains is still client_gone. An already finished request
    // is left as it is; it is released once its upstream let go.
    request_finish(*request,
                   conn.is_closed_by_drain ? EndReason::shutdown : EndReason::client_gone);
    request_maybe_release(*request);
}

}  // namespace rw
