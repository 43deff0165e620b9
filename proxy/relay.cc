// proxy/relay.cc — the answer's way from the upstream to the client (see relay.h).
// Shard thread only.
#include "proxy/relay.h"

#include <cerrno>
#include <cstring>

#include "core/log.h"
#include "proxy/attempt.h"
#include "proxy/gateway.h"
#include "proxy/request.h"
#include "proxy/stored_response.h"
#include "proxy/upload.h"
#include "proxy/upstream_tls.h"

namespace rw {
namespace {

// Whether the answer may create a stored response: /v1/responses passed through to an
// openai channel (a translated answer's id names no stored object).
bool relay_learns_response_id(const ProxyRequest& request) {
    return request.endpoint == Endpoint::responses && request.translation == Translation::none &&
           request.candidates[request.attempt_index].kind == ChannelKind::openai;
}

// The id (a view into a buffer about to be reused) copied into the request's arena.
void relay_keep_response_id(ProxyRequest& request, std::string_view id) {
    if (id.empty() || !request.response_id.empty()) {
        return;
    }
    const char* copy = client_arena(*request.conn).copy(id);
    if (copy != nullptr) {
        request.response_id = {copy, id.size()};
    }
}

constexpr std::string_view json_type = "application/json";

// A piece that was a recv buffer and is not relayed goes back to the ring.
void relay_give_back(Gateway& gateway, uint16_t bid) {
    if (bid != no_bid) {
        gateway.shard.buf_ring().give_back(bid);
    }
}

enum class Accumulated : uint8_t { ok, too_large, no_memory };

// Appends a span of a whole body to the request's response buffer (arena, padded for
// simdjson). The buffer grows by doubling up to RINGWAY_MAX_RESPONSE_BYTES (plus padding)
// and Arena::grow_large gives the outgrown block back, so a request holds one buffer.
Accumulated relay_accumulate(Gateway& gateway, ProxyRequest& request, std::string_view span) {
    const uint64_t needed = request.response_bytes + span.size();
    if (needed > gateway.config.max_response_bytes) {
        return Accumulated::too_large;
    }
    if (needed + json_padding_bytes > request.response_capacity) {
        const uint64_t capacity_max = gateway.config.max_response_bytes + json_padding_bytes;
        uint64_t capacity =
            request.response_capacity == 0 ? large_block_bytes_min : request.response_capacity * 2;
        while (capacity < needed + json_padding_bytes) {
            capacity *= 2;
        }
        capacity = capacity < capacity_max ? capacity : capacity_max;
        Arena& arena = client_arena(*request.conn);
        auto* grown = static_cast<char*>(
            request.response_body == nullptr
                ? arena.alloc(capacity, 16)
                : arena.grow_large(request.response_body, request.response_capacity, capacity));
        if (grown == nullptr) {
            return Accumulated::no_memory;  // The shard's pool is at its cap: 503, retry later.
        }
        request.response_body = grown;
        request.response_capacity = capacity;
    }
    std::memcpy(request.response_body + request.response_bytes, span.data(), span.size());
    request.response_bytes += span.size();
    std::memset(request.response_body + request.response_bytes, 0, json_padding_bytes);
    return Accumulated::ok;
}

// Client bytes made by a translator go out from the arena (the recv buffer goes back).
bool relay_translated(Gateway& gateway, ProxyRequest& request, std::string_view bytes) {
    if (bytes.empty() || request.is_client_gone) {
        return true;
    }
    const char* copy = client_arena(*request.conn).copy(bytes);
    if (copy == nullptr) {
        return false;
    }
    [[maybe_unused]] const bool is_queued =
        client_stream_piece(*request.conn, {copy, bytes.size()}, no_bid);
    (void)gateway;
    return true;
}

// A translated stream's piece: the upstream's events become the client's (translate.h).
// False when the stream could not be translated and the request was finished.
bool relay_piece_translated(Gateway& gateway, ProxyRequest& request, char* start,
                            uint32_t length_bytes, uint16_t bid) {
    thread_local std::string out;
    out.clear();
    const bool is_translated = stream_translate_feed(
        client_arena(*request.conn), *request.translator, {start, length_bytes}, out);
    relay_give_back(gateway, bid);
    if (!is_translated || !relay_translated(gateway, request, out)) {
        request_finish(gateway, request,
                       is_translated ? Fault::local_out_of_memory : Fault::upstream_protocol_error);
        return false;
    }
    return true;
}

// False when the request was finished (a translated stream that could not go on).
bool relay_piece(Gateway& gateway, ProxyRequest& request, char* start, uint32_t length_bytes,
                 uint16_t bid) {
    const uint64_t piece_offset = request.stream_payload_bytes;
    if (request.is_relaying_binary) {
        request.stream_payload_bytes += length_bytes;
        if (request.is_client_gone ||
            !client_stream_piece(*request.conn, {start, length_bytes}, bid)) {
            relay_give_back(gateway, bid);
        }
        return true;
    }
    request.scanner.feed({start, length_bytes});
    if (request.response_id.empty() && !request.scanner.response_id().empty() &&
        relay_learns_response_id(request)) {
        relay_keep_response_id(request, request.scanner.response_id());
    }
    if (request.ttft_us == 0 && request.scanner.events_count() > 0 &&
        request.attempt_started_us != 0) {
        request.ttft_us = proxy_clock_us() - request.attempt_started_us;  // First whole event.
    }
    request.stream_payload_bytes += length_bytes;
    if (request.translator != nullptr) {
        return relay_piece_translated(gateway, request, start, length_bytes, bid);
    }
    if (request.is_usage_cut) {
        stream_cut_relay(gateway, request, start, length_bytes, bid, piece_offset);
        return true;
    }
    if (request.is_client_gone || !client_stream_piece(*request.conn, {start, length_bytes}, bid)) {
        // Cannot happen while recv is armed only with room (checked before each recv);
        // the buffer is not lost either way.
        relay_give_back(gateway, bid);
    }
    return true;
}

// The extra head lines of a relayed answer: fixed ones; the upstream's Content-Encoding
// with the body it describes (never stripped; the parser bounds it); the provider's headers
// clients act on (upstream_header_is_relayed: its Retry-After as sent; less the
// x-ratelimit-* lines the key's own limits replace, which the parser dropped: attempt.cc);
// and a Retry-After of 1 s on a 429 or 503 only when the provider gave none. In the arena;
// the fixed lines alone when it refuses memory.
std::string_view relay_extra_headers(ProxyRequest& request, std::string_view fixed) {
    constexpr std::string_view made_up_retry_after = "Retry-After: 1\r\n";
    constexpr std::string_view encoding_name = "Content-Encoding: ";
    const UpstreamHead& head = request.parser.head();
    const std::string_view coding = head.content_encoding;
    const std::string_view relayed = request.parser.relayed_headers();
    const bool needs_retry_after =
        (head.status == 429 || head.status == 503) && !head.has_retry_after;
    char id_header[request_id_header_bytes_max];  // Ringway's x-request-id, on every answer.
    const std::string_view id_line = request_id_header(id_header, request.request_id);
    char rate[rate_headers_bytes_max];  // The key's own limits (rate_limit.h), if it has any.
    const std::string_view rate_lines(rate, rate_headers_write(request.rate, rate));
    const std::string_view parts[] = {
        fixed,
        id_line,
        coding.empty() ? std::string_view() : encoding_name,
        coding,
        coding.empty() ? std::string_view() : std::string_view("\r\n"),
        relayed,
        needs_retry_after ? made_up_retry_after : std::string_view(),
        rate_lines,
    };
    size_t length = 0;
    for (const std::string_view part : parts) {
        length += part.size();
    }
    auto* out = static_cast<char*>(client_arena(*request.conn).alloc(length, 1));
    if (out == nullptr) {
        return fixed;
    }
    char* cursor = out;
    for (const std::string_view part : parts) {
        if (!part.empty()) {  // An empty view may hold nullptr, which memcpy must not get.
            std::memcpy(cursor, part.data(), part.size());
            cursor += part.size();
        }
    }
    RW_ASSERT(cursor <= out + length);
    return {out, static_cast<size_t>(cursor - out)};
}

// A binary answer (audio/speech): relayed as it arrives, re-chunked to the client like a
// stream but never scanned for events, whatever its framing upstream (chunked, length, close).
bool relay_binary_begin(Gateway& gateway, ProxyRequest& request, const UpstreamHead& head) {
    const std::string_view content_type =
        head.content_type[0] != '\0' ? head.content_type : "application/octet-stream";
    if (!client_stream_begin(*request.conn, head.status, content_type,
                             relay_extra_headers(request, {}))) {
        request_finish(gateway, request, Fault::local_out_of_memory);
        return false;
    }
    request.is_response_started = true;
    request.is_relaying_stream = true;
    request.is_relaying_binary = true;
    request.status_sent = head.status;
    return true;
}

constexpr std::string_view stream_fixed_headers =
    "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n";

bool relay_stream_begin(Gateway& gateway, ProxyRequest& request, const UpstreamHead& head) {
    attempt_relayed_headers_trim(request);  // Before the stream head: it follows on the page.
    // A keep-alive head already went out (relay_keepalive_tick): the stream goes on under it.
    if (!request.is_head_early &&
        !client_stream_begin(*request.conn, head.status, head.content_type,
                             relay_extra_headers(request, stream_fixed_headers))) {
        request_finish(gateway, request, Fault::local_out_of_memory);
        return false;
    }
    if (request.translation != Translation::none) {
        request.translator = stream_translator_create(
            client_arena(*request.conn), request.translation, request.fields.include_usage,
            request.model_requested, static_cast<uint64_t>(request.started_unix_ms / 1000));
        if (request.translator == nullptr) {
            request_finish(gateway, request, Fault::local_out_of_memory);
            return false;
        }
    }
    request.is_response_started = true;
    request.is_relaying_stream = true;
    request.status_sent = head.status;
    request.scanner.start(request.usage_format, client_arena(*request.conn), request.is_usage_cut);
    return true;
}

// The response head arrived. True while the attempt goes on.
bool relay_head(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request) {
    const UpstreamHead& head = request.parser.head();
    if (head.status == 401 || head.status == 403) {
        // The provider refused the channel's own key ("Incorrect API key provided: sk-…"):
        // the channel goes down, and the request (refused, so not acted on) tries the next
        // one; without one the client gets a generic 502, never the body naming the key.
        RW_LOG_ERROR("event=upstream_auth_failed channel_id=%ld status=%u",
                     static_cast<long>(upstream.channel_id), head.status);
        attempt_failed(gateway, request, upstream, Fault::upstream_auth_failed);
        return false;
    }
    // An upload that cannot be sent again whole (more than its kept prefix went upstream)
    // is not retried: the provider's refusal, with its Retry-After, is the client's answer,
    // as on the last channel (a client can resend its upload; ringway kept no copy).
    const bool is_refusal = head.status == 429 || head.status >= 500;
    if (is_refusal && request.attempt_index + 1 < request.candidate_count &&
        upload_can_retry(request)) {
        attempt_failed(gateway, request, upstream, Fault::upstream_refused);
        return false;
    }
    request.first_byte_us = proxy_clock_us();
    if (head.status >= 200 && head.status < 300 && head.is_event_stream) {
        return relay_stream_begin(gateway, request, head);
    }
    if (head.status >= 200 && head.status < 300 && head.status != 204 &&
        endpoint_info(request.endpoint).is_binary && !head.has_skipped_body) {
        return relay_binary_begin(gateway, request, head);
    }
    if (head.has_content_length && head.content_length > gateway.config.max_response_bytes) {
        attempt_failed(gateway, request, upstream, Fault::upstream_response_too_large);
        return false;
    }
    if (head.has_content_length && head.content_length > 0 && !head.has_skipped_body) {
        // The whole body's size is known: one buffer of exactly that size (plus simdjson's
        // padding), instead of growing by doubling and copying what arrived so far.
        const uint64_t capacity = head.content_length + json_padding_bytes;
        auto* body = static_cast<char*>(client_arena(*request.conn).alloc(capacity, 16));
        if (body == nullptr) {
            // The shard's memory is at its cap: refused with 503 and Retry-After (the answer
            // may fit in a moment), never a silent close nor a false "too large".
            request_finish(gateway, request, Fault::local_out_of_memory);
            return false;
        }
        request.response_body = body;
        request.response_capacity = capacity;
    }
    return true;
}

// A translated whole answer: the body replaced by the client's format (an error body by the
// client's error shape). False when the request was finished instead.
bool relay_whole_translate(Gateway& gateway, ProxyRequest& request) {
    const UpstreamHead& head = request.parser.head();
    thread_local std::string out;
    out.clear();
    static const char no_body[json_padding_bytes + 1] = {};
    const std::string_view body{request.response_body != nullptr ? request.response_body : no_body,
                                request.response_bytes};
    if (head.status >= 200 && head.status < 300) {
        if (!translate_response(request.translation, body, request.model_requested,
                                static_cast<uint64_t>(request.started_unix_ms / 1000), out)) {
            request_finish(gateway, request, Fault::upstream_protocol_error);
            return false;
        }
    } else {
        translate_error(request.translation, body, head.status, out);
    }
    auto* copy = static_cast<char*>(client_arena(*request.conn).alloc(out.size() + 1, 16));
    if (copy == nullptr) {
        request_finish(gateway, request, Fault::local_out_of_memory);
        return false;
    }
    std::memcpy(copy, out.data(), out.size());
    request.response_body = copy;
    request.response_bytes = out.size();
    return true;
}

// The stream's head went out early (keep-alive) and the upstream answered whole: its error
// body (a JSON object, the last channel's) becomes the client protocol's error event, each
// of its lines one data: line (SSE joins them back), after `event: error` on Anthropic's;
// the stream ends without its terminating chunk. A 2xx whole answer to a streamed request,
// or an error body that is not an object, ends with the gateway's own error event
// (request_early_stream_abort). The row's status is the upstream's.
void relay_whole_in_stream(Gateway& gateway, ProxyRequest& request) {
    const UpstreamHead& head = request.parser.head();
    std::string_view body{request.response_body, request.response_bytes};
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r' || body.back() == ' ')) {
        body.remove_suffix(1);
    }
    if (head.status < 300 || body.empty() || body.front() != '{') {
        request_finish(
            gateway, request,
            head.status < 300 ? Fault::upstream_protocol_error : Fault::upstream_refused);
        return;
    }
    const std::string_view prefix =
        request.error_shape == ErrorShape::anthropic ? "event: error\ndata: " : "data: ";
    // Every '\n' may become "\ndata: " (7 bytes), plus the prefix and the blank line.
    auto* event = static_cast<char*>(
        client_arena(*request.conn).alloc(prefix.size() + body.size() * 7 + 2, 1));
    if (event == nullptr) {
        request_finish(gateway, request, Fault::local_out_of_memory);
        return;
    }
    char* cursor = event;
    std::memcpy(cursor, prefix.data(), prefix.size());
    cursor += prefix.size();
    for (const char c : body) {
        if (c == '\n') {
            std::memcpy(cursor, "\ndata: ", 7);
            cursor += 7;
        } else if (c != '\r') {
            *cursor++ = c;
        }
    }
    std::memcpy(cursor, "\n\n", 2);
    cursor += 2;
    request.is_response_started = true;
    request.status_sent = head.status;
    if (!request.is_client_gone) {
        gateway.metrics.streams_aborted.add();
        [[maybe_unused]] const bool is_queued = client_stream_piece(
            *request.conn, {event, static_cast<size_t>(cursor - event)}, no_bid);
        client_stream_end(*request.conn, false);
    }
    request_finish(gateway, request, Fault::upstream_answered_error);
}

// A whole (non-streamed) answer: the upstream's status and body, relayed as they came,
// except a refusal of the channel's own key, whose body names that key.
void relay_whole(Gateway& gateway, ProxyRequest& request) {
    const UpstreamHead& head = request.parser.head();
    RW_ASSERT(head.status != 401 && head.status != 403);  // relay_head failed the attempt.
    if (head.status >= 200 && head.status < 300 && endpoint_info(request.endpoint).is_free) {
        request.usage = UsageCounts{0, 0, 0, true};  // Reported free by the provider.
    } else if (head.status >= 200 && head.status < 300 && request.response_bytes > 0) {
        const std::string_view body(request.response_body, request.response_bytes);
        UsageCounts counts{};
        std::string_view response_id;
        // A Responses answer's id is read in the usage walk: the body is parsed once.
        const bool is_learning = relay_learns_response_id(request);
        if (is_learning
                ? usage_and_response_id_from_json(body, request.usage_format, counts, response_id)
                : usage_from_json(body, request.usage_format, counts)) {
            request.usage = counts;
        }
        if (is_learning) {
            relay_keep_response_id(request, response_id);
        }
    }
    if (request.translation != Translation::none && !relay_whole_translate(gateway, request)) {
        return;
    }
    if (request.is_head_early) {
        relay_whole_in_stream(gateway, request);
        return;
    }
    const bool has_no_content = head.status == 204 || head.status == 304;
    const std::string_view content_type = request.translation != Translation::none ? json_type
                                          : head.content_type[0] != '\0' ? head.content_type
                                          : has_no_content               ? ""
                                                                         : json_type;
    request.status_sent = head.status;
    request.is_response_started = true;
    // Sent from the arena buffer it was read into: a large answer is not copied again.
    client_respond_borrowed(*request.conn, {head.status,
                                            content_type,
                                            {request.response_body, request.response_bytes},
                                            relay_extra_headers(request, {}),
                                            false});
    request_finish(gateway, request,
                   head.status < 400 ? Fault::none : Fault::upstream_answered_error);
}

void relay_complete(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request,
                    bool has_extra_bytes) {
    const UpstreamHead& head = request.parser.head();
    // The last candidate's refusal is relayed, and still counts against its channel.
    attempt_health_report(
        gateway, request, upstream.channel_id,
        head.status == 429 || head.status >= 500 ? Fault::upstream_refused : Fault::none);
    request_attempt_over(request);
    // RULES §2: reused only after a completely framed response with no extra bytes.
    // Pieces still held came after the answer's end: extra bytes too.
    attempt_release_upstream(gateway, upstream,
                             request.parser.is_reusable() && !has_extra_bytes &&
                                 upstream.held_count == 0 && !upstream.is_end_held);
    if (request.is_relaying_stream) {
        if (request.is_usage_cut) {
            stream_cut_flush(request);
        }
        if (request.translator != nullptr) {
            thread_local std::string out;
            out.clear();
            stream_translate_finish(*request.translator, out);
            if (!relay_translated(gateway, request, out)) {
                request_finish(gateway, request, Fault::local_out_of_memory);
                return;
            }
        }
        client_stream_end(*request.conn, true);
        // A provider error event inside the stream (data: {"error":…}, event: error,
        // response.failed) ended it: an upstream error, billed as one.
        request_finish(
            gateway, request,
            request.scanner.had_error_event() ? Fault::upstream_stream_error : Fault::none);
        return;
    }
    relay_whole(gateway, request);
}

// The body spans of one parse call: accumulated (whole answers), or compacted in place into
// one run at the start of the first span (streams). False when the body outgrew its limit
// or the shard's memory (fault says which).
bool relay_spans(Gateway& gateway, ProxyRequest& request, char*& run_start, char*& run_end,
                 Fault& fault) {
    for (uint32_t i = 0; i < request.parser.span_count(); i++) {
        const std::string_view span = request.parser.spans()[i];
        if (!request.is_relaying_stream) {
            const Accumulated accumulated = relay_accumulate(gateway, request, span);
            if (accumulated != Accumulated::ok) {
                request.parser.spans_clear();
                fault = accumulated == Accumulated::too_large ? Fault::upstream_response_too_large
                                                              : Fault::local_out_of_memory;
                return false;
            }
        } else if (run_start == nullptr) {
            run_start = const_cast<char*>(span.data());
            run_end = run_start + span.size();
        } else {
            std::memmove(run_end, span.data(), span.size());
            run_end += span.size();
        }
    }
    request.parser.spans_clear();
    return true;
}

void relay_protocol_error(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request) {
    RW_LOG_WARN("event=upstream_protocol_error channel_id=%ld reason=\"%s\"",
                static_cast<long>(upstream.channel_id), request.parser.error_reason());
    if (request.is_relaying_stream) {
        request_finish(gateway, request, Fault::upstream_protocol_error);
    } else {
        attempt_failed(gateway, request, upstream, Fault::upstream_protocol_error);
    }
}

// A recv that ended without bytes nor a verdict on the connection: the pause's cancel
// (-ECANCELED), or a kernel without the multishot byte cap (-EINVAL). True when so.
bool relay_recv_stopped(Gateway& gateway, UpstreamConn& upstream, int result) {
    if (result == -EINVAL && upstream.is_recv_multishot) {
        gateway.pool.multishot_off();
        return true;
    }
    return result == -ECANCELED;
}

void relay_on_idle_recv(Gateway& gateway, UpstreamConn& upstream, const io_uring_cqe& cqe,
                        uint16_t bid) {
    if (bid != no_bid && upstream.is_tls) {
        tls_on_recv(gateway, upstream, bid, static_cast<uint32_t>(cqe.res));
        return;
    }
    // Bytes or EOF on an idle pooled connection: it cannot serve another request.
    if (bid != no_bid) {
        gateway.shard.buf_ring().give_back(bid);
    }
    if (cqe.res == -ENOBUFS || relay_recv_stopped(gateway, upstream, cqe.res)) {
        if (!upstream.is_recv_inflight) {
            gateway.pool.submit_recv(upstream);  // The idle watch goes on.
        }
        return;
    }
    gateway.pool.close(upstream);
}

// A piece (or the recv's end) that came while the stream is paused or pieces wait before
// it: kept in order for relay_on_client_writable. The multishot's byte cap bounds what can
// come (upstream_held_max); should more come all the same, the stream ends as the shard's
// memory running out would end it, never with a piece left out.
void relay_hold(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request,
                const io_uring_cqe& cqe, uint16_t bid) {
    if (cqe.res <= 0) {
        upstream.is_end_held = true;
        upstream.end_error = -cqe.res;
        return;
    }
    BufRing& ring = gateway.shard.buf_ring();
    const auto length_bytes = static_cast<uint32_t>(cqe.res);
    if (upstream.held_count > 0) {
        HeldPiece& last = upstream.held[upstream.held_count - 1];
        if (last.length_bytes + length_bytes <= ring.buf_bytes()) {
            std::memcpy(ring.data(last.bid) + last.length_bytes, ring.data(bid), length_bytes);
            last.length_bytes += length_bytes;
            ring.give_back(bid);
            return;
        }
    }
    if (upstream.held_count == upstream_held_max) {
        ring.give_back(bid);
        RW_LOG_ERROR("event=upstream_held_overflow channel_id=%ld",
                     static_cast<long>(upstream.channel_id));
        request_finish(gateway, request, Fault::local_out_of_memory);
        return;
    }
    upstream.held[upstream.held_count++] = {bid, length_bytes};
}

// After a piece: a paused stream's multishot is cancelled (what it read meanwhile is held);
// otherwise the next read is armed unless one still is.
void relay_read_on(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request) {
    if (request.is_recv_wanted) {
        if (upstream.is_recv_inflight && upstream.is_recv_multishot &&
            !upstream.is_recv_cancel_pending) {
            gateway.pool.cancel_recv(upstream);
        }
        return;
    }
    if (!upstream.is_recv_inflight && upstream.held_count == 0 && !upstream.is_end_held) {
        gateway.pool.submit_recv(upstream);
    }
}

// The client caught up: held pieces go through the parser in order, then the held end.
// False when the request was finished or its answer completed on the way.
bool relay_held_drain(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request) {
    BufRing& ring = gateway.shard.buf_ring();
    while (upstream.held_count > 0 && !request.is_recv_wanted) {
        const HeldPiece piece = upstream.held[0];
        upstream.held_count -= 1;
        std::memmove(upstream.held, upstream.held + 1, upstream.held_count * sizeof(HeldPiece));
        if (!relay_bytes(gateway, upstream, request, reinterpret_cast<char*>(ring.data(piece.bid)),
                         piece.length_bytes, piece.bid)) {
            return false;
        }
    }
    if (upstream.held_count == 0 && upstream.is_end_held && !request.is_recv_wanted) {
        upstream.is_end_held = false;
        relay_on_eof(gateway, upstream, request, upstream.end_error);
        return false;
    }
    return true;
}

}  // namespace

void relay_on_recv(Gateway& gateway, UpstreamConn& upstream, const io_uring_cqe& cqe) {
    if ((cqe.flags & IORING_CQE_F_MORE) == 0) {
        upstream.is_recv_inflight = false;  // A single-shot recv, or a multishot's last CQE.
        upstream.is_recv_cancel_pending = false;
    }
    uint16_t bid = no_bid;
    if (cqe.res > 0) {
        RW_ASSERT((cqe.flags & IORING_CQE_F_BUFFER) != 0);
        bid = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
        gateway.shard.buf_ring().take(bid, static_cast<uint32_t>(cqe.res));
    }
    if (upstream.state == UpstreamState::closing) {
        if (bid != no_bid) {
            gateway.shard.buf_ring().give_back(bid);
        }
        return;
    }
    if (upstream.state == UpstreamState::idle) {
        relay_on_idle_recv(gateway, upstream, cqe, bid);
        return;
    }
    RW_ASSERT(upstream.request != nullptr);
    ProxyRequest& request = *upstream.request;
    if (cqe.res == -ENOBUFS) {
        gateway.shard.metrics().recv_buffer_exhausted.add();
        gateway.pool.rearm_later(upstream);  // Back-pressure: re-armed when buffers return.
        return;
    }
    if (relay_recv_stopped(gateway, upstream, cqe.res)) {
        relay_read_on(gateway, upstream, request);  // Re-armed unless still paused.
        return;
    }
    // (A TLS connection's recv is single-shot: never armed while paused.)
    if (!upstream.is_tls &&
        (request.is_recv_wanted || upstream.held_count > 0 || upstream.is_end_held)) {
        relay_hold(gateway, upstream, request, cqe, bid);  // Read before the pause landed.
        return;
    }
    if (cqe.res <= 0) {
        if (upstream.is_tls && upstream.is_handshake_done && cqe.res == 0) {
            upstream.tls.feed_end_of_stream();  // close_notify or truncation decides.
        }
        relay_on_eof(gateway, upstream, request, -cqe.res);
        return;
    }
    if (upstream.is_tls) {
        tls_on_recv(gateway, upstream, bid, static_cast<uint32_t>(cqe.res));
        return;
    }
    char* data = reinterpret_cast<char*>(gateway.shard.buf_ring().data(bid));
    if (relay_bytes(gateway, upstream, request, data, static_cast<uint32_t>(cqe.res), bid)) {
        relay_read_on(gateway, upstream, request);
    }
}

// Parses one piece of the response. Stream spans are lent to the client send as a single
// chunk: zero-copy when the piece holds one upstream chunk, an in-buffer memmove (no new
// memory) when it holds several.
bool relay_bytes(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request, char* base,
                 uint32_t length_bytes, uint16_t bid) {
    upstream.has_response_bytes = true;
    upstream.deadline_ms = gateway.shard.now_ms() + gateway.config.upstream_idle_timeout_ms;
    char* run_start = nullptr;
    char* run_end = nullptr;
    uint32_t offset = 0;
    for (;;) {
        const UpstreamFeed feed = request.parser.feed({base + offset, length_bytes - offset});
        offset += feed.consumed_bytes;
        Fault fault = Fault::none;
        if (!relay_spans(gateway, request, run_start, run_end, fault)) {
            relay_give_back(gateway, bid);
            if (fault == Fault::local_out_of_memory) {
                request_finish(gateway, request, fault);  // Local: no other channel helps.
            } else {
                attempt_failed(gateway, request, upstream, fault);
            }
            return false;
        }
        if (feed.event == UpstreamEvent::head_complete) {
            if (!relay_head(gateway, upstream, request)) {
                relay_give_back(gateway, bid);  // Retried, refused or finished.
                return false;
            }
            continue;
        }
        if (feed.event == UpstreamEvent::spans_full) {
            continue;
        }
        if (run_start != nullptr) {
            if (!relay_piece(gateway, request, run_start,
                             static_cast<uint32_t>(run_end - run_start), bid)) {
                return false;  // Finished: the upstream connection went with it.
            }
        } else {
            relay_give_back(gateway, bid);
        }
        if (feed.event == UpstreamEvent::message_complete) {
            relay_complete(gateway, upstream, request, offset < length_bytes);
            return false;
        }
        if (feed.event == UpstreamEvent::error) {
            relay_protocol_error(gateway, upstream, request);
            return false;
        }
        break;  // need_more: the piece is used up.
    }
    // Back-pressure: read the next piece only when the client can take it.
    if (request.is_relaying_stream && !request.is_recv_wanted &&
        relay_is_client_behind(gateway, request)) {
        request.is_recv_wanted = true;
        gateway.shard.metrics().stream_reads_paused.add();
    }
    return true;
}

void relay_on_eof(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request, int error) {
    if (!upstream.has_response_bytes) {
        // Nothing came back. Retried only when the request cannot have reached the
        // upstream whole: a reused connection whose send had not completed (the keep-alive
        // race; RULES §6). Once the request was sent, the upstream may have executed it,
        // and a retry could bill twice at the provider. The idle watch on pooled
        // connections drops most closed ones before they are reused.
        const bool is_unsent =
            upstream.is_reused && (upstream.is_send_inflight || upstream.send_remaining_bytes > 0);
        attempt_failed(
            gateway, request, upstream,
            is_unsent ? Fault::upstream_closed_unsent : Fault::upstream_closed_unanswered);
        return;
    }
    if (request.parser.finish_on_eof()) {
        // A close-delimited body. A stream that ends so is complete only when its end was
        // seen ([DONE], the final event, or chat's usage chunk); otherwise the upstream
        // was cut, and the client must not see a finished answer (RULES §7).
        const bool is_stream_ended =
            request.is_relaying_binary || request.scanner.is_done() ||
            (request.usage_format == UsageFormat::chat && request.scanner.usage().has_usage);
        if (!request.is_relaying_stream || is_stream_ended) {
            relay_complete(gateway, upstream, request, false);
            return;
        }
    }
    request_finish(
        gateway, request,
        error == 0 || error == ECONNRESET ? Fault::upstream_reset : Fault::upstream_lost);
}

void relay_keepalive_tick(Gateway& gateway, ProxyRequest& request, uint64_t now_ms) {
    const uint32_t interval_ms = gateway.config.sse_keepalive_ms;
    if (interval_ms == 0 || !request.is_streaming || request.is_finished ||
        request.is_client_gone || request.stream_payload_bytes > 0 ||
        endpoint_info(request.endpoint).is_binary) {
        return;  // Off, not a stream, or its first bytes went out: events keep it alive.
    }
    if (!request.is_head_early && !request.is_relaying_stream &&
        (request.is_response_started || request.parser.head().status != 0)) {
        return;  // A whole answer is coming, with its own status.
    }
    if (request.keepalive_due_ms == 0) {
        request.keepalive_due_ms = request.started_ms + interval_ms;
    }
    if (now_ms < request.keepalive_due_ms ||
        client_send_room(*request.conn) < relay_room_needed(request)) {
        return;  // Not yet, or a client that reads nothing: tried again next sweep.
    }
    if (!request.is_head_early && !request.is_relaying_stream) {
        if (!client_stream_begin(*request.conn, 200, "text/event-stream",
                                 relay_extra_headers(request, stream_fixed_headers))) {
            return;  // No memory for the head now: the request goes on without keep-alive.
        }
        request.is_head_early = true;
    }
    static constexpr std::string_view comment = ": keep-alive\n\n";
    if (client_stream_piece(*request.conn, comment, no_bid)) {
        gateway.metrics.sse_keepalives.add();
    }
    request.keepalive_due_ms = now_ms + interval_ms;
}

uint32_t relay_room_needed(const ProxyRequest& request) {
    return request.is_usage_cut ? stream_cut_room_needed : 3;
}

// A slow client holds at most RINGWAY_STREAM_BUFFER_BYTES of recv buffers (at least one):
// past that its upstream is not read, the provider's sends back up over TCP, and the
// shard's ring stays free for the other streams.
bool relay_is_client_behind(const Gateway& gateway, const ProxyRequest& request) {
    if (client_send_room(*request.conn) < relay_room_needed(request)) {
        return true;
    }
    const uint64_t lent_bytes = client_lent_bytes(*request.conn);
    return lent_bytes > 0 &&
           lent_bytes + gateway.shard.buf_ring().buf_bytes() > gateway.config.stream_buffer_bytes;
}

void relay_on_client_writable(Gateway& gateway, ProxyRequest& request) {
    if (!request.is_recv_wanted || relay_is_client_behind(gateway, request)) {
        return;
    }
    request.is_recv_wanted = false;
    if (request.upstream_slot == UINT32_MAX) {
        return;
    }
    UpstreamConn& upstream = gateway.pool.at(request.upstream_slot);
    if (upstream.is_tls && upstream.is_handshake_done) {
        tls_drain(gateway, upstream, request);  // Plaintext may wait in OpenSSL, not the socket.
    } else if (relay_held_drain(gateway, upstream, request)) {
        relay_read_on(gateway, upstream, request);
    }
}

}  // namespace rw
