// core/handler.h — the seam between the shard runtime (core/) and the gateway (proxy/).
// core never includes proxy: a shard calls the handler through these function pointers
// (a context plus plain functions, not a virtual hierarchy), all on the shard's thread.
// While a handler owns a connection's request (client_take), the connection is not
// closed or recycled until the handler calls client_release: upstream SQEs may still
// point into the request's arena. What the handler may do with a connection is in
// core/client.h.
#pragma once

#include <liburing.h>

#include "core/client.h"

namespace rw {

struct RequestHandler {
    void* context = nullptr;  // One per shard.
    // A request's head is complete, before any of its body, on a path the core does not
    // serve itself: the checks that need no body run here, so a stranger is refused
    // before it uploads. Either the handler refuses with client_respond (and returns
    // nullptr): the core sends the answer at once and never stores the body — it reads
    // and drops a small one (Content-Length up to RINGWAY_DISCARD_BODY_MAX_BYTES, no
    // Expect: 100-continue) and keeps the connection, or closes after the answer (RULES
    // §1). Or it accepts and returns its state for the request (in the connection's
    // arena, or nullptr): the core sends 100 Continue if asked, reads the body, and hands
    // the state to on_request (client_head_state), or to on_head_abandoned if the request
    // ends first (timeout, malformed body, client gone, shutdown). Exactly one of the two
    // runs for every accepted head.
    void* (*on_head)(void* context, Conn& conn) = nullptr;
    void (*on_head_abandoned)(void* context, void* head_state) = nullptr;
    // A complete request on a path the core does not serve itself. The handler answers
    // now or later through client_respond / client_stream_*.
    void (*on_request)(void* context, Conn& conn) = nullptr;
    // A piece of a streamed body (client_body_stream) for `request` (what the handler passed
    // to client_take). Returns the bytes taken, from the front; fewer than piece.size()
    // pauses the body until client_body_resume. is_last: the piece ends the body.
    uint32_t (*on_body)(void* context, void* request, std::string_view piece,
                        bool is_last) = nullptr;
    // Completion of an operation the handler submitted (tags with Op::handler_*).
    void (*on_cqe)(void* context, const io_uring_cqe& cqe) = nullptr;
    // The client is gone while the handler owns `request` (what it passed to
    // client_take): stop producing output, cancel upstream work, then client_release().
    void (*on_client_gone)(void* context, void* request, ClientGone why) = nullptr;
    // Room again in the connection's send queue (a client send completed).
    void (*on_client_writable)(void* context, void* request) = nullptr;
    // Once per loop turn, after completions (flushes, health, timeouts of its own).
    void (*on_turn_end)(void* context) = nullptr;
};

}  // namespace rw
