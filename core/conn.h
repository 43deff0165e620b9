// core/conn.h — a client connection slot. Slots live in a fixed array owned by one shard
// and are recycled only when no operation can still complete for them (inflight_sqes is
// zero, no handler owns the request, and the close CQE has come back); the generation in
// every tag proves a completion belongs to the current occupant. A connection serves one
// request at a time: pipelined bytes wait in `pending` (recv buffers still owned by the
// app) until the previous response has been sent, so responses leave in request order.
// Outgoing bytes wait in `segments`, a queue sent with one send/sendmsg at a time.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>

#include "arena/arena.h"
#include "core/http_parse.h"
#include "core/limits.h"

namespace rw {

enum class ConnState : uint8_t {
    free,       // Slot unused.
    reading,    // Waiting for or parsing a request.
    handling,   // Request complete; its response is being produced and/or sent.
    lingering,  // Last response sent, half-closed; input discarded until EOF.
    closing,    // Cancel issued; the fd is closed once nothing is in flight.
};

// How far the response of the current request has come.
enum class ResponsePhase : uint8_t {
    none,       // Nothing queued yet.
    streaming,  // Head queued; the handler queues more (chunked body).
    complete,   // Everything queued; when the queue drains the request is done.
    aborting,   // Queue the rest, then close without completing the response.
};

enum class Deadline : uint8_t { none, keepalive, header, body, send, linger };

// Received bytes not yet parsed: a recv buffer the app still owns.
struct PendingBuf {
    uint16_t bid;
    uint32_t offset_bytes;  // Bytes of the buffer already fed to the parser.
    uint32_t length_bytes;  // Bytes the recv delivered.
};

constexpr uint16_t no_bid = 0xFFFF;

// One piece of output. data points into the request arena, static memory, a recv
// buffer lent to this send (bid != no_bid: given back when its bytes are sent) or, when
// data is nullptr, into inline_text (chunk-size lines).
struct SendSegment {
    const char* data;
    uint32_t length_bytes;
    uint16_t bid;
    uint8_t inline_bytes;
    char inline_text[segment_inline_bytes_max];
};

struct Conn {
    explicit Conn(const ParserLimits& limits) : parser(limits) {}

    RequestParser parser;
    Arena arena;  // The current request's memory; released between requests.
    int fd = -1;
    uint32_t gen = 0;
    uint32_t slot = 0;
    uint32_t inflight_sqes = 0;
    ConnState state = ConnState::free;
    ResponsePhase response_phase = ResponsePhase::none;
    Deadline deadline = Deadline::none;
    bool is_recv_armed = false;
    bool is_peer_closed = false;       // recv returned 0.
    bool is_close_after_send = false;  // Response carries Connection: close.
    bool is_error_response = false;
    bool is_close_submitted = false;
    bool is_rearm_listed = false;         // In the shard's re-arm list (after -ENOBUFS).
    bool is_recv_cancel_pending = false;  // Recv paused: too many pending buffers.
    bool is_send_inflight = false;
    bool is_handler_owned = false;    // The handler may still touch this request.
    bool is_closed_by_drain = false;  // Closed by the drain deadline, not by the client.
    bool is_stream_raw = false;       // HTTP/1.0 client: close-delimited, no chunking.
    uint8_t pending_head = 0;
    uint8_t pending_count = 0;
    uint8_t segment_head = 0;
    uint8_t segment_count = 0;
    uint8_t segment_inflight_count = 0;  // Segments covered by the send in flight.
    uint16_t response_status = 0;
    uint64_t deadline_ms = 0;
    uint64_t linger_bytes = 0;
    uint64_t requests_count = 0;
    uint64_t response_bytes_sent = 0;    // Completed by sends.
    uint64_t response_bytes_queued = 0;  // Handed to the send queue (head, framing, body).
    void* handler_request = nullptr;     // The handler's per-request state (in the arena).
    PendingBuf pending[conn_pending_bufs_max];
    SendSegment segments[conn_send_segments_max];
    iovec iov[conn_send_segments_max];  // Built per send from segments; stable while in flight.
    msghdr message{};
};

}  // namespace rw
