// core/conn_cap.cc — the client connection table's edges: the connection cap (idle
// keep-alive connections, oldest first, make room for new ones; a counted, logged refusal
// when none is idle) and the turn's end (recv re-arms, deadlines, the drain's first sweep).
// The state machine itself is conn.cc. Shard thread only.
#include <unistd.h>

#include <cstring>

#include "core/conn.h"
#include "core/log.h"

namespace rw {

void ClientConns::idle_link(Conn& conn) {
    if (conn.is_idle_listed) {
        return;
    }
    conn.is_idle_listed = true;
    conn.idle_prev = idle_tail_;
    conn.idle_next = UINT32_MAX;
    if (idle_tail_ != UINT32_MAX) {
        conns_[idle_tail_].idle_next = conn.slot;
    } else {
        idle_head_ = conn.slot;
    }
    idle_tail_ = conn.slot;
}

void ClientConns::idle_unlink(Conn& conn) {
    if (!conn.is_idle_listed) {
        return;
    }
    conn.is_idle_listed = false;
    if (conn.idle_prev != UINT32_MAX) {
        conns_[conn.idle_prev].idle_next = conn.idle_next;
    } else {
        idle_head_ = conn.idle_next;
    }
    if (conn.idle_next != UINT32_MAX) {
        conns_[conn.idle_next].idle_prev = conn.idle_prev;
    } else {
        idle_tail_ = conn.idle_prev;
    }
    conn.idle_prev = UINT32_MAX;
    conn.idle_next = UINT32_MAX;
}

// Closes the connection idle the longest (between requests, nothing received) and parks fd
// until its slot is free. False when none is idle or too many already wait.
bool ClientConns::evict_oldest_idle(int fd) {
    if (idle_head_ == UINT32_MAX || waiting_count_ == accept_waiting_max || shard_.is_draining()) {
        return false;
    }
    Conn& oldest = conns_[idle_head_];
    RW_ASSERT(oldest.state == ConnState::reading && oldest.deadline == Deadline::keepalive);
    metrics_.connections_evicted.add();
    waiting_fds_[waiting_count_++] = fd;
    conn_close(oldest);  // Unlinks it; its close CQE hands the slot to fd (on_close).
    return true;
}

void ClientConns::refuse(int fd) {
    metrics_.connections_refused.add();
    ::close(fd);
    refusals_unlogged_ += 1;
    const uint64_t now_ms = shard_.now_ms();
    if (refusal_logged_ms_ == 0 || now_ms >= refusal_logged_ms_ + 1000) {
        RW_LOG_WARN(
            "event=connections_refused shard=%u count=%lu max_connections=%u "
            "reason=\"every connection is busy (none idle to close)\"",
            shard_.index(), static_cast<unsigned long>(refusals_unlogged_),
            config_.max_connections);
        refusals_unlogged_ = 0;
        refusal_logged_ms_ = now_ms;
    }
}

// ---------------------------------------------------------------------------------------
// Turn end: re-arms and deadlines.

void ClientConns::rearm_listed() {
    const uint32_t count = rearm_count_;
    rearm_count_ = 0;
    for (uint32_t i = 0; i < count; i++) {
        Conn& conn = conns_[rearm_list_[i]];
        conn.is_rearm_listed = false;
        conn_maybe_rearm_recv(conn);
    }
}

void ClientConns::sweep(uint64_t now_ms, bool is_drain_overdue) {
    for (uint32_t i = 0; i < slots_high_water_; i++) {
        Conn& conn = conns_[i];
        if (conn.state == ConnState::free || conn.state == ConnState::closing) {
            continue;
        }
        if (is_drain_overdue) {
            conn.is_closed_by_drain = true;
            conn_close(conn);
        } else if (conn.deadline != Deadline::none && now_ms >= conn.deadline_ms) {
            conn_on_deadline(conn);
        }
    }
}

void ClientConns::drain_begin() {
    for (uint32_t i = 0; i < waiting_count_; i++) {
        ::close(waiting_fds_[i]);  // Accepted but never served: the drain refuses them.
    }
    waiting_count_ = 0;
    for (uint32_t i = 0; i < slots_high_water_; i++) {
        Conn& conn = conns_[i];
        // Idle between keep-alive requests. A connection accepted but whose first request
        // has not arrived is served once (the header deadline bounds it): its client just
        // connected, to a socket a reload's new process may share, and expects an answer.
        const bool is_idle = conn.state == ConnState::reading && !conn.parser.in_message() &&
                             conn.pending_count == 0 && conn.requests_count > 0;
        if (is_idle) {
            conn_close(conn);
        }
    }
}

}  // namespace rw
