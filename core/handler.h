// core/handler.h — the seam between the shard runtime (core/) and the gateway (proxy/).
// core never includes proxy: a shard calls the handler through these function pointers
// (a context plus plain functions, not a virtual hierarchy), all on the shard's thread.
// While a handler owns a connection's request (Shard::handler_take), the connection is
// not closed or recycled until the handler calls Shard::handler_release: upstream SQEs
// may still point into the request's arena.
#pragma once

#include <liburing.h>

namespace rw {

struct Conn;

struct RequestHandler {
    void* context = nullptr;  // One per shard.
    // A complete request on a path the core does not serve itself. The handler answers
    // now or later through Shard::respond / respond_error / stream_*.
    void (*on_request)(void* context, Conn& conn) = nullptr;
    // Completion of an operation the handler submitted (tags with Op::handler_*).
    void (*on_cqe)(void* context, const io_uring_cqe& cqe) = nullptr;
    // The client is gone (reset, deadline, forced shutdown) while the handler owns the
    // request: stop producing output, cancel upstream work, then handler_release().
    void (*on_client_gone)(void* context, Conn& conn) = nullptr;
    // Room again in the connection's send queue (a client send completed).
    void (*on_client_writable)(void* context, Conn& conn) = nullptr;
    // Once per loop turn, after completions (flushes, health, timeouts of its own).
    void (*on_turn_end)(void* context) = nullptr;
};

}  // namespace rw
