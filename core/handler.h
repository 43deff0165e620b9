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
    // A complete request on a path the core does not serve itself. The handler answers
    // now or later through client_respond / client_stream_*.
    void (*on_request)(void* context, Conn& conn) = nullptr;
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
