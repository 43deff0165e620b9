// core/conn_body.cc — a streamed request body (client_body_stream): the request is
// dispatched at its head and its body handed to the handler's on_body piece by piece from
// the connection's unread recv buffers, never stored. The handler's back-pressure is the
// unread buffers themselves: when it takes less than a piece, the buffers stay parked and
// the recv stops at the pause mark (conn.cc) until client_body_resume. The parser never
// sees a streamed body: the next request starts it afresh (conn_start_request).
// Shard thread only.
#include "core/conn.h"

#include <algorithm>

#include <cstring>

namespace rw {

// The head was accepted with client_body_stream (and its length checked against the
// upload limit, conn_head_complete): dispatched now.
void ClientConns::conn_body_stream_begin(Conn& conn) {
    const ParsedRequest& request = conn.parser.request();
    RW_ASSERT(conn.is_body_streamed && !request.is_chunked);
    conn.body_stream_left = request.content_length;
    conn.state = ConnState::handling;
    if (conn.body_stream_left == 0) {
        conn_set_deadline(conn, Deadline::none, 0);
    }
    // The body deadline keeps running while the body streams: a stalled upload ends with
    // the connection (on_client_gone), not with a 408 the handler did not give.
    conn_dispatch(conn);
    conn_body_pump(conn);
}

// Hands on_body up to `unread` bytes at `bytes` (no more than the body has left) and counts
// what it took in `taken`; the body deadline ends with the body. false: the handler's
// answer closed the connection (the caller's buffers are dropped). is_full: it took less
// than it was offered, so it resumes the body when it has room.
bool ClientConns::conn_body_offer(Conn& conn, const char* bytes, uint64_t unread, uint32_t& taken,
                                  bool& is_full) {
    const auto available = static_cast<uint32_t>(std::min(unread, conn.body_stream_left));
    conn.is_in_body_hook = true;
    taken = handler_.on_body(handler_.context, conn.handler_request, {bytes, available},
                             available == conn.body_stream_left);
    conn.is_in_body_hook = false;
    if (conn.state != ConnState::handling) {
        return false;
    }
    RW_ASSERT(taken <= available);
    conn.body_stream_left -= taken;
    if (conn.body_stream_left == 0 && conn.deadline == Deadline::body) {
        conn_set_deadline(conn, Deadline::none, 0);
    }
    is_full = taken < available;
    return true;
}

void ClientConns::conn_body_pump(Conn& conn) {
    if (conn.is_in_body_hook) {
        return;  // client_body_resume from inside on_body: the running loop continues.
    }
    conn_body_deadline_resume(conn);
    while (conn.state == ConnState::handling && conn.is_handler_owned &&
           conn.body_stream_left > 0 && conn.pending_count > 0) {
        PendingBuf& pending = conn.pending[conn.pending_head];
        const auto* bytes = reinterpret_cast<const char*>(buf_ring_.data(pending.bid));
        uint32_t taken = 0;
        bool is_full = false;
        if (!conn_body_offer(conn, bytes + pending.offset_bytes,
                             pending.length_bytes - pending.offset_bytes, taken, is_full)) {
            return;
        }
        pending.offset_bytes += taken;
        if (pending.offset_bytes == pending.length_bytes) {
            buf_ring_.give_back(pending.bid);
            conn.pending_head =
                static_cast<uint8_t>((conn.pending_head + 1) % conn_pending_bufs_max);
            conn.pending_count -= 1;
        }
        if (is_full) {
            conn_body_deadline_pause(conn);
            conn_maybe_rearm_recv(conn);
            return;  // The handler is full: it resumes the body when it has room.
        }
    }
    conn_body_pump_spill(conn);
    conn_maybe_rearm_recv(conn);
}

// The handler is full: its upstream is not reading (a slow provider, a connect still on
// its way), so the client is held back by ringway, not idle by its own doing. The body
// deadline is off until the handler resumes the body, and the notes of a burst that still
// arrives do not re-arm it (conn_body_deadline_note).
void ClientConns::conn_body_deadline_pause(Conn& conn) {
    if (conn.deadline != Deadline::body) {
        return;  // The body ended, or another phase's deadline (an answer's send) runs.
    }
    conn.deadline = Deadline::none;
    conn.deadline_ms = 0;
    conn.body_paused_ms = shard_.now_ms();
    RW_ASSERT(conn.body_paused_ms != 0);  // CLOCK_MONOTONIC counts from boot.
}

// The handler took the body again: the body's start moves by the paused time, so neither
// the idle time nor the minimum rate counts it, and the deadline is re-armed from now.
void ClientConns::conn_body_deadline_resume(Conn& conn) {
    if (conn.body_paused_ms == 0) {
        return;
    }
    RW_ASSERT(conn.deadline == Deadline::none);
    conn.body_started_ms += shard_.now_ms() - conn.body_paused_ms;
    conn.body_paused_ms = 0;
    conn.deadline = Deadline::body;
    conn_body_deadline_note(conn, 0);
}

// The copied burst, after the pending buffers (conn_body_spill).
void ClientConns::conn_body_pump_spill(Conn& conn) {
    while (conn.state == ConnState::handling && conn.is_handler_owned &&
           conn.body_stream_left > 0 && conn.pending_count == 0 &&
           conn.spill_offset_bytes < conn.spill_bytes) {
        uint32_t taken = 0;
        bool is_full = false;
        if (!conn_body_offer(conn, conn.spill + conn.spill_offset_bytes,
                             conn.spill_bytes - conn.spill_offset_bytes, taken, is_full)) {
            return;
        }
        conn.spill_offset_bytes += taken;
        if (conn.spill_offset_bytes == conn.spill_bytes) {
            conn.spill_offset_bytes = 0;
            conn.spill_bytes = 0;
        }
        if (is_full) {
            conn_body_deadline_pause(conn);
            return;
        }
    }
}

// A recv buffer of a streamed body that cannot wait in a pending slot (all taken, or
// earlier bytes already copied): copied after the others and given back. False: it goes
// to a pending slot as usual.
bool ClientConns::conn_body_spill(Conn& conn, uint16_t bid, uint32_t length_bytes) {
    if (conn.pending_count < conn_pending_bufs_max && conn.spill_offset_bytes == conn.spill_bytes) {
        return false;
    }
    const uint32_t live = conn.spill_bytes - conn.spill_offset_bytes;
    if (live + length_bytes > conn.spill_capacity_bytes) {
        const uint32_t capacity = std::max(2 * conn.spill_capacity_bytes, live + length_bytes);
        auto* grown = static_cast<char*>(conn.arena.alloc(capacity, 1));
        if (grown == nullptr) {
            buf_ring_.give_back(bid);
            conn_close(conn);  // No memory for the burst: the upload cannot go on.
            return true;
        }
        if (live > 0) {
            std::memcpy(grown, conn.spill + conn.spill_offset_bytes, live);
        }
        conn.spill = grown;
        conn.spill_capacity_bytes = capacity;
        conn.spill_offset_bytes = 0;
        conn.spill_bytes = live;
    } else if (conn.spill_offset_bytes > 0) {
        std::memmove(conn.spill, conn.spill + conn.spill_offset_bytes, live);
        conn.spill_offset_bytes = 0;
        conn.spill_bytes = live;
    }
    std::memcpy(conn.spill + conn.spill_bytes, buf_ring_.data(bid), length_bytes);
    conn.spill_bytes += length_bytes;
    buf_ring_.give_back(bid);
    conn_body_deadline_note(conn, length_bytes);
    conn_body_pump(conn);
    return true;
}

void ClientConns::body_stream(Conn& conn) {
    RW_ASSERT(conn.is_in_head_hook);
    RW_ASSERT(handler_.on_body != nullptr);
    conn.is_body_streamed = true;
}

void ClientConns::body_resume(Conn& conn) {
    if (conn.state == ConnState::handling) {
        conn_body_pump(conn);
    }
}

void client_body_stream(Conn& conn) {
    conn.table->body_stream(conn);
}

void client_body_resume(Conn& conn) {
    conn.table->body_resume(conn);
}

uint64_t client_body_left(const Conn& conn) {
    return conn.body_stream_left;
}

}  // namespace rw
