// core/conn.h — a client connection slot. Slots live in a fixed array owned by one shard
// and are recycled only when no operation can still complete for them (inflight_sqes is
// zero and the close CQE has come back); the generation in every tag proves a completion
// belongs to the current occupant. A connection serves one request at a time: pipelined
// bytes wait in `pending` (recv buffers still owned by the app) until the response to the
// previous request has been sent, so responses leave in request order.
#pragma once

#include <cstdint>

#include "arena/arena.h"
#include "core/http_parse.h"
#include "core/limits.h"

namespace rw {

enum class ConnState : uint8_t {
    free,       // Slot unused.
    reading,    // Waiting for or parsing a request.
    handling,   // Request complete; its response is being produced.
    sending,    // A response send is in flight.
    lingering,  // Error or close response sent, half-closed; input discarded until EOF.
    closing,    // Cancel issued; the fd is closed once inflight_sqes reaches zero.
};

enum class Deadline : uint8_t { none, keepalive, header, body, send, linger };

// Received bytes not yet parsed: a recv buffer the app still owns.
struct PendingBuf {
    uint16_t bid;
    uint32_t offset_bytes;  // Bytes of the buffer already fed to the parser.
    uint32_t length_bytes;  // Bytes the recv delivered.
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
    Deadline deadline = Deadline::none;
    bool is_recv_armed = false;
    bool is_peer_closed = false;        // recv returned 0.
    bool is_close_after_send = false;   // Response carries Connection: close.
    bool is_error_response = false;
    bool is_close_submitted = false;
    bool is_rearm_listed = false;       // In the shard's re-arm list (after -ENOBUFS).
    bool is_recv_cancel_pending = false;  // Recv paused: too many pending buffers.
    uint8_t pending_head = 0;
    uint8_t pending_count = 0;
    uint16_t response_status = 0;
    uint64_t deadline_ms = 0;
    uint64_t linger_bytes = 0;
    uint64_t requests_count = 0;
    const char* send_data = nullptr;  // Arena memory of the response being sent.
    uint32_t send_remaining_bytes = 0;
    PendingBuf pending[conn_pending_bufs_max];
};

}  // namespace rw
