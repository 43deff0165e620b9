// core/conn_send.cc — the client connection's output side: the queue of send segments
// (heads, chunk framing, arena memory, recv buffers lent by the handler) sent with one
// send or sendmsg at a time, whole responses and chunked streams built on it, and the
// handler's interface (core/client.h). Shard thread only. Contracts relied on:
// - a msghdr and its iovecs must stay valid until the sendmsg completes [sendmsg(2)]:
//   they live in the Conn;
// - a buffer lent to a send goes back to the ring only when its bytes have been sent
//   (or the queue is dropped), never earlier (BufRing owner states).
#include <charconv>
#include <cstdio>
#include <cstring>

#include "core/conn.h"
#include "core/http_write.h"
#include "core/text.h"

namespace rw {
namespace {

constexpr std::string_view continue_response = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace

void ClientConns::submit_send(Conn& conn) {
    RW_ASSERT(!conn.is_send_inflight);
    RW_ASSERT(conn.segment_count > 0);
    io_uring_sqe* sqe = shard_.sqe_get();
    const uint8_t count = conn.segment_count;
    if (count == 1) {
        // One piece (every whole response): a plain send, no msghdr to copy in.
        const SendSegment& only = conn.segments[conn.segment_head];
        const char* data = only.data != nullptr ? only.data : only.inline_text;
        io_uring_prep_send(sqe, conn.fd, data, only.length_bytes, MSG_NOSIGNAL);
    } else {
        for (uint8_t i = 0; i < count; i++) {
            SendSegment& segment = conn.segments[(conn.segment_head + i) % conn_send_segments_max];
            conn.iov[i].iov_base =
                const_cast<char*>(segment.data != nullptr ? segment.data : segment.inline_text);
            conn.iov[i].iov_len = segment.length_bytes;
        }
        std::memset(&conn.message, 0, sizeof(conn.message));
        conn.message.msg_iov = conn.iov;
        conn.message.msg_iovlen = count;
        io_uring_prep_sendmsg(sqe, conn.fd, &conn.message, MSG_NOSIGNAL);
    }
    io_uring_sqe_set_data64(sqe, tag_pack({Op::send, conn.gen, conn.slot}));
    conn.is_send_inflight = true;
    conn.segment_inflight_count = count;
    conn.inflight_sqes += 1;
    conn_set_deadline(conn, Deadline::send, config_.send_timeout_ms);
}

void ClientConns::submit_send_continue(Conn& conn) {
    io_uring_sqe* sqe = shard_.sqe_get();
    io_uring_prep_send(sqe, conn.fd, continue_response.data(),
                       static_cast<uint32_t>(continue_response.size()), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, tag_pack({Op::send_continue, conn.gen, conn.slot}));
    conn.inflight_sqes += 1;
}

// A send completed: retire the segments it covered (giving lent buffers back), keep
// the rest of a partially sent segment, and send what is queued next.
void ClientConns::on_send(Conn& conn, const io_uring_cqe& cqe) {
    RW_ASSERT(conn.is_send_inflight);
    conn.inflight_sqes -= 1;
    conn.is_send_inflight = false;
    const uint8_t covered = conn.segment_inflight_count;
    conn.segment_inflight_count = 0;
    if (conn.state == ConnState::closing) {
        conn_segments_drop(conn);  // Nothing references the lent buffers any more.
    } else if (cqe.res <= 0) {
        RW_ASSERT(conn.state == ConnState::handling);
        conn_close(conn);  // EPIPE, ECONNRESET, ECANCELED by the send deadline.
    } else {
        RW_ASSERT(conn.state == ConnState::handling);
        conn.response_bytes_sent += static_cast<uint32_t>(cqe.res);
        const uint32_t left = conn_segments_retire(conn, covered, static_cast<uint32_t>(cqe.res));
        RW_ASSERT(left == 0);
        bool has_room = true;  // The queue drained or moved: the handler may queue more.
        if (conn.segment_count > 0) {
            submit_send(conn);
        } else if (conn.response_phase == ResponsePhase::complete) {
            conn_response_sent(conn);
            has_room = false;
        } else if (conn.response_phase == ResponsePhase::aborting) {
            conn_close(conn);
            has_room = false;
        } else {
            conn_set_deadline(conn, Deadline::none, 0);  // Streaming: the handler times upstream.
        }
        if (has_room && conn.is_handler_owned && handler_.on_client_writable != nullptr) {
            handler_.on_client_writable(handler_.context, conn.handler_request);
        }
    }
    after_cqe(conn);
}

// Retires the first `covered` segments by `sent_bytes`; a segment sent in part keeps its
// rest at the head of the queue. Returns the bytes not accounted for (0 when consistent).
uint32_t ClientConns::conn_segments_retire(Conn& conn, uint8_t covered, uint32_t sent_bytes) {
    for (uint8_t i = 0; i < covered && sent_bytes > 0; i++) {
        SendSegment& segment = conn.segments[conn.segment_head];
        if (sent_bytes < segment.length_bytes) {
            // A short send: the rest of this segment goes first next time.
            if (segment.data == nullptr) {
                std::memmove(segment.inline_text, segment.inline_text + sent_bytes,
                             segment.length_bytes - sent_bytes);
            } else {
                segment.data += sent_bytes;
            }
            segment.length_bytes -= sent_bytes;
            return 0;
        }
        sent_bytes -= segment.length_bytes;
        if (segment.bid != no_bid) {
            buf_ring_.give_back_sent(segment.bid);  // Lent by the handler; its bytes are out.
            conn_lent_note(conn, -1);
        }
        conn.segment_head = static_cast<uint8_t>((conn.segment_head + 1) % conn_send_segments_max);
        conn.segment_count -= 1;
    }
    return sent_bytes;
}

void ClientConns::conn_response_sent(Conn& conn) {
    RW_ASSERT(conn.segment_count == 0);
    if (conn.is_handler_owned) {
        return;  // Upstream work may still read the arena; release() finishes.
    }
    if (conn.is_close_after_send || shard_.is_draining()) {
        if (conn.is_peer_closed) {  // Nothing more can arrive: no need to linger.
            conn_close(conn);
        } else {
            conn_linger(conn);
        }
        return;
    }
    if (conn.is_body_discarded) {
        // Refused at its head: the answer is out, the small body is still to be read and
        // dropped before the next request is parsed (conn_request_complete).
        conn.state = ConnState::reading;
        conn_body_deadline_start(conn);
        conn_process_input(conn);
        return;
    }
    conn.arena.release();  // The send completed: nothing references the request now.
    conn_start_request(conn);
    if (conn.pending_count > 0 || conn.is_peer_closed) {
        conn_process_input(conn);  // The next pipelined request, answered in order.
    } else {
        conn_maybe_rearm_recv(conn);
    }
}

// Connection: close when this is the last response the connection will carry. A client
// that half-closed after pipelining still gets every request it sent answered.
bool ClientConns::conn_response_is_close(const Conn& conn) const {
    return conn.is_error_response || shard_.is_draining() ||
           (conn.is_peer_closed && conn.pending_count == 0) || !conn.parser.request().keep_alive ||
           (conn.is_in_head_hook && !conn_body_is_discardable(conn)) ||
           conn.body_stream_left > 0 ||  // A streamed body not read whole: nothing follows it.
           conn.spill_offset_bytes < conn.spill_bytes;  // Bytes past it were copied: dropped.
}

void ClientConns::conn_respond(Conn& conn, uint16_t status, std::string_view content_type,
                               std::string_view body, bool is_head_only,
                               std::string_view extra_headers, bool is_body_borrowed) {
    RW_ASSERT(conn.state == ConnState::handling);
    RW_ASSERT(conn.response_phase == ResponsePhase::none);
    const bool is_close = conn_response_is_close(conn);
    // A borrowed body is queued as a segment of its own after the head: a large answer is
    // sent from where it lies, never copied a second time.
    const uint64_t copied_body_bytes = is_body_borrowed ? 0 : body.size();
    const uint64_t capacity = response_head_bytes_max + extra_headers.size() + copied_body_bytes;
    auto* out = static_cast<char*>(conn.arena.alloc(capacity, 1));
    if (out == nullptr) {
        conn_respond_overloaded(conn);  // Not even room for a head: the pool is exhausted.
        return;
    }
    // An HTTP/1.0 client keeps the connection only when told so explicitly.
    const bool is_http10_keepalive = !is_close && conn.parser.request().version_minor == 0;
    const std::string_view keepalive_line = is_http10_keepalive ? "Connection: keep-alive\r\n" : "";
    const uint32_t length =
        write_response(out, static_cast<uint32_t>(capacity),
                       {status, content_type, body, is_close, is_head_only || is_body_borrowed,
                        extra_headers, shard_.date_line(), keepalive_line});
    RW_ASSERT(length > 0);
    conn.is_close_after_send = is_close;
    conn.response_status = status;
    conn.response_phase = ResponsePhase::complete;
    metrics_.requests_by_class[status / 100 - 1].add();
    bool is_queued = conn_queue(conn, out, length, no_bid);
    if (is_body_borrowed && !is_head_only && !body.empty() && status != 204 && status != 304) {
        RW_ASSERT(body.size() <= UINT32_MAX);  // RINGWAY_MAX_RESPONSE_BYTES is at most 1 GiB.
        is_queued =
            is_queued && conn_queue(conn, body.data(), static_cast<uint32_t>(body.size()), no_bid);
    }
    RW_ASSERT(is_queued);  // The queue is empty before the first response bytes.
    conn_flush(conn);
}

// The answer when the shard's memory cannot hold even a response head: a static 503 with
// Retry-After that closes the connection, rather than a silent close.
void ClientConns::conn_respond_overloaded(Conn& conn) {
    static constexpr std::string_view overloaded =
        "HTTP/1.1 503 Service Unavailable\r\nServer: ringway\r\n"
        "Content-Type: application/json\r\nContent-Length: 108\r\nRetry-After: 1\r\n"
        "Connection: close\r\n\r\n"
        "{\"error\":{\"message\":\"The gateway is out of memory.\",\"type\":\"server_error\","
        "\"param\":null,\"code\":\"overloaded\"}}";
    conn.is_error_response = true;
    conn_pending_drop(conn);
    conn.is_close_after_send = true;
    conn.response_status = 503;
    conn.response_phase = ResponsePhase::complete;
    metrics_.requests_by_class[4].add();
    const bool is_queued =
        conn_queue(conn, overloaded.data(), static_cast<uint32_t>(overloaded.size()), no_bid);
    RW_ASSERT(is_queued);
    conn_flush(conn);
}

static_assert(std::string_view("{\"error\":{\"message\":\"The gateway is out of memory.\",\"type\":"
                               "\"server_error\",\"param\":null,\"code\":\"overloaded\"}}")
                  .size() == 108);

void ClientConns::respond(Conn& conn, const ClientResponse& response, bool is_body_borrowed) {
    if (conn.state == ConnState::reading) {
        RW_ASSERT(conn.is_in_head_hook);  // A refusal at the head, before the body.
        conn.state = ConnState::handling;
    }
    if (response.is_close) {
        conn.is_error_response = true;  // Closes after it; later pipelined input is dropped.
        conn_pending_drop(conn);
    }
    // A response to HEAD carries no body [RFC 9110 9.3.2].
    const bool is_head = conn.parser.request().method == Method::head;
    conn_respond(conn, response.status, response.content_type, response.body, is_head,
                 response.extra_headers, is_body_borrowed);
}

void ClientConns::respond_error(Conn& conn, uint16_t status, std::string_view code,
                                std::string_view message) {
    conn_head_abandon(conn);        // A request that ends before its body (408, 400).
    conn.is_error_response = true;  // The core's errors close the connection afterwards.
    conn_pending_drop(conn);        // A pipelined request after an error is never processed.
    conn_respond_json_error(conn, status, code, message);
}

// An OpenAI-style JSON error; whether the connection closes is conn_response_is_close's.
void ClientConns::conn_respond_json_error(Conn& conn, uint16_t status, std::string_view code,
                                          std::string_view message) {
    const uint32_t capacity = error_body_bytes_max(code, message);
    auto* body = static_cast<char*>(conn.arena.alloc(capacity, 1));
    if (body == nullptr) {
        conn_close(conn);
        return;
    }
    const uint32_t length = write_error_body(body, capacity, status, code, message);
    RW_ASSERT(length > 0);
    if (conn.state == ConnState::reading) {
        conn.state = ConnState::handling;
    }
    const bool is_head = conn.parser.request().method == Method::head;
    conn_respond(conn, status, "application/json", {body, length}, is_head, {});
}

void ClientConns::respond_unknown_url(Conn& conn) {
    const ParsedRequest& request = conn.parser.request();
    const std::string_view path = request.path;
    char message[128];
    const int length = std::snprintf(
        message, sizeof(message), "Invalid URL (%.*s %.*s)",
        int(request.method_text.size() > 16 ? 16 : request.method_text.size()),
        request.method_text.data(), int(path.size() > 80 ? 80 : path.size()), path.data());
    // A well-framed request for an unknown path keeps its connection (nginx does too).
    conn_respond_json_error(conn, 404, "unknown_url",
                            {message, static_cast<size_t>(length > 0 ? length : 0)});
}

// --- Streaming responses (chunked transfer coding) for the handler. ---

bool ClientConns::stream_begin(Conn& conn, uint16_t status, std::string_view content_type,
                               std::string_view extra_headers) {
    RW_ASSERT(conn.state == ConnState::handling);
    RW_ASSERT(conn.response_phase == ResponsePhase::none);
    // HTTP/1.0 has no chunked coding: its stream is delimited by closing the connection.
    conn.is_stream_raw = conn.parser.request().version_minor == 0;
    const bool is_close = conn.is_stream_raw || conn_response_is_close(conn);
    const uint32_t capacity = response_head_bytes_max + static_cast<uint32_t>(extra_headers.size());
    auto* out = static_cast<char*>(conn.arena.alloc(capacity, 1));
    if (out == nullptr) {
        return false;
    }
    // The head announces chunked coding; write_response adds Content-Length only for
    // whole bodies, so the head is written by hand here: copies, no format parsing (the
    // head of every streamed answer).
    const std::string_view reason = status_reason(status);
    const std::string_view date = shard_.date_line();
    constexpr std::string_view chunked = "Transfer-Encoding: chunked\r\n";
    constexpr std::string_view close = "Connection: close\r\n";
    const uint64_t needed = 64 + decimal_bytes_max + reason.size() + date.size() +
                            content_type.size() + chunked.size() + close.size() +
                            extra_headers.size();
    RW_ASSERT(needed < capacity);  // 64: the fixed text below.
    char* cursor = out;
    const auto put = [&cursor](std::string_view text) {
        if (!text.empty()) {  // An empty view may hold nullptr, which memcpy must not get.
            std::memcpy(cursor, text.data(), text.size());
            cursor += text.size();
        }
    };
    put("HTTP/1.1 ");
    cursor = decimal_write(cursor, status);
    put(" ");
    put(reason);
    put("\r\nServer: ringway\r\n");
    put(date);
    put("Content-Type: ");
    put(content_type);
    put("\r\n");
    put(conn.is_stream_raw ? std::string_view() : chunked);
    put(is_close ? close : std::string_view());
    put(extra_headers);
    put("\r\n");
    const auto length = static_cast<uint32_t>(cursor - out);
    conn.is_close_after_send = is_close;
    conn.response_status = status;
    conn.response_phase = ResponsePhase::streaming;
    metrics_.requests_by_class[status / 100 - 1].add();
    const bool is_queued = conn_queue(conn, out, length, no_bid);
    RW_ASSERT(is_queued);
    conn_flush(conn);
    return true;
}

bool ClientConns::stream_piece(Conn& conn, std::string_view piece, uint16_t bid) {
    RW_ASSERT(conn.response_phase == ResponsePhase::streaming);
    if (piece.empty()) {
        return true;  // A zero-length chunk would end the body.
    }
    if (conn.is_stream_raw) {
        if (!conn_queue(conn, piece.data(), static_cast<uint32_t>(piece.size()), bid)) {
            return false;
        }
        conn_flush(conn);
        return true;
    }
    if (conn_send_segments_max - conn.segment_count < 3) {
        return false;
    }
    // "<hex size>\r\n" for every relayed piece: to_chars, not snprintf (hot path).
    char size_line[segment_inline_bytes_max];
    const auto [size_end, size_error] =
        std::to_chars(size_line, size_line + sizeof(size_line) - 2, piece.size(), 16);
    RW_ASSERT(size_error == std::errc());
    size_end[0] = '\r';
    size_end[1] = '\n';
    const auto size_length = static_cast<uint32_t>(size_end + 2 - size_line);
    if (bid != no_bid && is_framed_in_buffer(piece, bid, {size_line, size_length})) {
        // The piece is one upstream chunk whose framing, still around it in the lent
        // buffer, is byte for byte what would be written: one segment, so a lone piece
        // goes out with a plain send instead of a sendmsg of three iovecs (the msghdr and
        // iovec copies and their checks in the kernel, per relayed event).
        const bool is_queued =
            conn_queue(conn, piece.data() - size_length,
                       static_cast<uint32_t>(piece.size()) + size_length + 2, bid);
        RW_ASSERT(is_queued);
        conn_flush(conn);
        return true;
    }
    const bool is_queued =
        conn_queue_inline(conn, size_line, size_length) &&
        conn_queue(conn, piece.data(), static_cast<uint32_t>(piece.size()), bid) &&
        conn_queue(conn, "\r\n", 2, no_bid);
    RW_ASSERT(is_queued);  // Room for three was checked above.
    conn_flush(conn);
    return true;
}

// True when the lent buffer holds `size_line` just before the piece and "\r\n" just after
// it, both inside the buffer. Bytes past what the recv delivered are compared too: the
// buffer is the app's until given back, so whatever equal bytes lie there are what the
// three segments would have sent.
bool ClientConns::is_framed_in_buffer(std::string_view piece, uint16_t bid,
                                      std::string_view size_line) const {
    const auto base = reinterpret_cast<uintptr_t>(buf_ring_.data(bid));
    const auto start = reinterpret_cast<uintptr_t>(piece.data());
    if (start < base + size_line.size() || start > base + buf_ring_.buf_bytes() ||
        piece.size() + 2 > base + buf_ring_.buf_bytes() - start) {
        return false;
    }
    const char* after = piece.data() + piece.size();
    return after[0] == '\r' && after[1] == '\n' &&
           std::memcmp(piece.data() - size_line.size(), size_line.data(), size_line.size()) == 0;
}

void ClientConns::stream_end(Conn& conn, bool is_complete) {
    RW_ASSERT(conn.response_phase == ResponsePhase::streaming);
    if (is_complete && conn.is_stream_raw) {
        conn.response_phase = ResponsePhase::complete;  // Ends with the close.
    } else if (is_complete) {
        if (!conn_queue(conn, "0\r\n\r\n", 5, no_bid)) {
            conn.response_phase = ResponsePhase::aborting;  // Cannot end it cleanly.
        } else {
            conn.response_phase = ResponsePhase::complete;
        }
    } else {
        conn.response_phase = ResponsePhase::aborting;
    }
    if (conn.segment_count == 0 && !conn.is_send_inflight) {
        if (conn.response_phase == ResponsePhase::aborting) {
            conn_close(conn);
        } else {
            conn_response_sent(conn);  // Everything already went out.
        }
        return;
    }
    conn_flush(conn);
}

// Queues a piece; a recv buffer it points into (bid) is lent to the send until its bytes
// are out. False when the queue is full (nothing lent).
bool ClientConns::conn_queue(Conn& conn, const char* data, uint32_t length_bytes, uint16_t bid) {
    if (conn.segment_count == conn_send_segments_max) {
        return false;
    }
    SendSegment& segment =
        conn.segments[(conn.segment_head + conn.segment_count) % conn_send_segments_max];
    segment.data = data;
    segment.length_bytes = length_bytes;
    segment.bid = bid;
    segment.inline_bytes = 0;
    if (bid != no_bid) {
        buf_ring_.lend_to_send(bid);  // Paired with give_back_sent in retire or drop.
        conn_lent_note(conn, +1);
    }
    conn.segment_count += 1;
    conn.response_bytes_queued += length_bytes;
    return true;
}

bool ClientConns::conn_queue_inline(Conn& conn, const char* text, uint32_t length_bytes) {
    RW_ASSERT(length_bytes <= segment_inline_bytes_max);
    if (!conn_queue(conn, nullptr, length_bytes, no_bid)) {
        return false;
    }
    SendSegment& segment =
        conn.segments[(conn.segment_head + conn.segment_count - 1) % conn_send_segments_max];
    std::memcpy(segment.inline_text, text, length_bytes);
    segment.inline_bytes = static_cast<uint8_t>(length_bytes);
    return true;
}

// Starts a send of everything queued unless one is in flight (its completion sends
// the rest): one send per connection at a time keeps the bytes in order.
void ClientConns::conn_flush(Conn& conn) {
    if (!conn.is_send_inflight && conn.segment_count > 0 && conn.state == ConnState::handling) {
        submit_send(conn);
    }
}

// Recv buffers lent to this connection's sends: per connection (the relay's bound on a
// slow client, client_lent_bytes) and per shard (ringway_stream_buffer_bytes).
void ClientConns::conn_lent_note(Conn& conn, int delta) {
    RW_ASSERT(delta > 0 || conn.lent_buffers > 0);
    conn.lent_buffers = static_cast<uint32_t>(int64_t(conn.lent_buffers) + delta);
    lent_buffers_ = static_cast<uint32_t>(int64_t(lent_buffers_) + delta);
    metrics_.stream_buffer_bytes.set(uint64_t(lent_buffers_) * buf_ring_.buf_bytes());
}

void ClientConns::conn_segments_drop(Conn& conn) {
    RW_ASSERT(!conn.is_send_inflight);
    while (conn.segment_count > 0) {
        const SendSegment& segment = conn.segments[conn.segment_head];
        if (segment.bid != no_bid) {
            buf_ring_.give_back_sent(segment.bid);
            conn_lent_note(conn, -1);
        }
        conn.segment_head = static_cast<uint8_t>((conn.segment_head + 1) % conn_send_segments_max);
        conn.segment_count -= 1;
    }
    conn.segment_head = 0;
}

// ---------------------------------------------------------------------------------------
// core/client.h: the handler's view of a connection.

Arena& client_arena(Conn& conn) {
    return conn.arena;
}

void* client_head_state(const Conn& conn) {
    return conn.head_state_dispatched;
}

const ParsedRequest& client_request(const Conn& conn) {
    return conn.parser.request();
}

uint64_t client_bytes_queued(const Conn& conn) {
    return conn.response_bytes_queued;
}

uint64_t client_bytes_sent(const Conn& conn) {
    return conn.response_bytes_sent;
}

void client_take(Conn& conn, void* request) {
    conn.table->take(conn, request);
}

void client_release(Conn& conn) {
    conn.table->release(conn);
}

void client_respond(Conn& conn, const ClientResponse& response) {
    conn.table->respond(conn, response, false);
}

void client_respond_borrowed(Conn& conn, const ClientResponse& response) {
    conn.table->respond(conn, response, true);
}

void client_respond_unknown_url(Conn& conn) {
    conn.table->respond_unknown_url(conn);
}

bool client_stream_begin(Conn& conn, uint16_t status, std::string_view content_type,
                         std::string_view extra_headers) {
    return conn.table->stream_begin(conn, status, content_type, extra_headers);
}

bool client_stream_piece(Conn& conn, std::string_view piece, uint16_t bid) {
    return conn.table->stream_piece(conn, piece, bid);
}

void client_stream_end(Conn& conn, bool is_complete) {
    conn.table->stream_end(conn, is_complete);
}

uint32_t client_send_room(const Conn& conn) {
    return conn_send_segments_max - conn.segment_count;
}

uint64_t client_lent_bytes(const Conn& conn) {
    return uint64_t(conn.lent_buffers) * conn.table->buf_bytes();
}

}  // namespace rw
