// core/conn.cc — the client connection state machine, input side: slots, accept → recv
// (multishot, provided buffers) → llhttp → dispatch to the core's own paths or the
// handler, keep-alive and pipelining, deadlines, lingering close. The connection cap and
// the turn's end are conn_cap.cc; the output side (send queue, responses, streams) is
// conn_send.cc. Shard thread only. Contracts relied on:
// - -ENOBUFS on a buffer-select recv is back-pressure, not an error (liburing recv_enobufs);
// - a multishot recv without IORING_CQE_F_MORE has ended and must be re-armed
//   [io_uring_prep_recv_multishot(3)];
// - views into a recv buffer are valid only until it is given back: the parser copies
//   what it keeps into the request arena before conn_process_input gives it back.
#include "core/conn.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/log.h"

namespace rw {
namespace {

// Memory one request may hold: its body (plus simdjson padding), its header copies and
// the response the core or the handler writes, up to a whole answer of
// RINGWAY_MAX_RESPONSE_BYTES (plus padding) that is sent from where it lies.
uint64_t arena_bytes_per_request_max(const Config& config) {
    // A chunked body grows by doubling and the arena frees nothing before release, so it
    // may hold up to ~4x the body limit in blocks on its way to the final size. A whole
    // answer grows with Arena::grow_large, which gives the old block back: 1x.
    return 4 * (config.max_body_bytes + large_block_bytes_min) + 2ull * config.max_header_bytes +
           config.max_response_bytes + body_padding_bytes + 256 * 1024;
}

constexpr std::string_view json_ok = "{\"status\":\"ok\"}";

// The paths the core answers itself; every other path goes to the handler.
bool is_builtin_path(std::string_view path) {
    return path == "/healthz" || path == "/readyz" || path == "/metrics";
}
constexpr std::string_view json_ready = "{\"status\":\"ready\"}";

}  // namespace

ClientConns::ClientConns(Shard& shard, ServerShared& shared, ShardMetrics& metrics,
                         BufRing& buf_ring, ChunkPool& chunk_pool)
    : shard_(shard),
      shared_(shared),
      config_(*shared.config),
      metrics_(metrics),
      buf_ring_(buf_ring),
      chunk_pool_(chunk_pool),
      parser_limits_{config_.max_request_line_bytes,
                     config_.max_header_bytes,
                     config_.max_headers,
                     config_.max_body_bytes,
                     config_.max_chunk_ext_bytes,
                     std::max(config_.max_body_bytes, config_.max_upload_bytes)} {}

ClientConns::~ClientConns() {
    if (conns_ != nullptr) {
        for (uint32_t i = 0; i < slots_high_water_; i++) {  // Constructed slots only.
            conns_[i].arena.release();
            conns_[i].~Conn();
        }
        std::free(conns_);
    }
    for (uint32_t i = 0; i < waiting_count_; i++) {
        ::close(waiting_fds_[i]);
    }
    std::free(free_slots_);
    std::free(rearm_list_);
}

bool ClientConns::setup(std::string& error) {
    const uint32_t slots = config_.max_connections;
    conns_ = static_cast<Conn*>(std::aligned_alloc(64, (sizeof(Conn) * slots + 63) / 64 * 64));
    free_slots_ = static_cast<uint32_t*>(std::malloc(sizeof(uint32_t) * slots));
    rearm_list_ = static_cast<uint32_t*>(std::malloc(sizeof(uint32_t) * slots));
    if (conns_ == nullptr || free_slots_ == nullptr || rearm_list_ == nullptr) {
        error = "out of memory for connection slots (lower RINGWAY_MAX_CONNECTIONS)";
        return false;
    }
    // Slots are constructed when first used (open): the table is sized by the descriptor
    // limit, and memory a shard never needed must not be resident.
    for (uint32_t i = 0; i < slots; i++) {
        free_slots_[slots - 1 - i] = i;  // Pop order: slot 0 first.
    }
    free_slot_count_ = slots;
    chunk_pool_.reserve_small(slots < pool_small_chunks_floor ? slots : pool_small_chunks_floor);
    return true;
}

Conn& ClientConns::at(uint32_t slot, uint32_t gen) {
    RW_ASSERT(slot < slots_high_water_);
    Conn& conn = conns_[slot];
    // A slot is recycled only after its last CQE, so a stale tag is a bug.
    RW_ASSERT((conn.gen & 0xFFFFFFu) == gen);
    RW_ASSERT(conn.state != ConnState::free);
    return conn;
}

// ---------------------------------------------------------------------------------------
// Submission. Every SQE that names a connection counts in its inflight_sqes until its
// final CQE; the slot is reused only at zero.

void ClientConns::submit_recv(Conn& conn) {
    RW_ASSERT(!conn.is_recv_armed);
    RW_ASSERT(conn.state != ConnState::closing);
    io_uring_sqe* sqe = shard_.sqe_get();
    if (conn.body_stream_left > 0) {
        // A streamed body: one buffer per recv, so what the handler has not taken stays
        // in the socket (TCP back-pressure), not in the ring (conn_body.cc).
        io_uring_prep_recv(sqe, conn.fd, nullptr, 0, 0);
    } else {
        io_uring_prep_recv_multishot(sqe, conn.fd, nullptr, 0, 0);
    }
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = buf_ring_.group_id();
    io_uring_sqe_set_data64(sqe, tag_pack({Op::recv, conn.gen, conn.slot}));
    conn.is_recv_armed = true;
    conn.inflight_sqes += 1;
}

void ClientConns::submit_cancel_recv(Conn& conn) {
    io_uring_sqe* sqe = shard_.sqe_get();
    io_uring_prep_cancel64(sqe, tag_pack({Op::recv, conn.gen, conn.slot}), 0);
    io_uring_sqe_set_data64(sqe, tag_pack({Op::cancel, conn.gen, conn.slot}));
    conn.inflight_sqes += 1;
}

void ClientConns::submit_cancel_all(Conn& conn) {
    io_uring_sqe* sqe = shard_.sqe_get();
    io_uring_prep_cancel_fd(sqe, conn.fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, tag_pack({Op::cancel, conn.gen, conn.slot}));
    conn.inflight_sqes += 1;
}

void ClientConns::submit_shutdown(Conn& conn) {
    io_uring_sqe* sqe = shard_.sqe_get();
    io_uring_prep_shutdown(sqe, conn.fd, SHUT_WR);
    io_uring_sqe_set_data64(sqe, tag_pack({Op::shutdown, conn.gen, conn.slot}));
    conn.inflight_sqes += 1;
}

void ClientConns::submit_close(Conn& conn) {
    RW_ASSERT(conn.inflight_sqes == 0);
    RW_ASSERT(!conn.is_close_submitted);
    io_uring_sqe* sqe = shard_.sqe_get();
    io_uring_prep_close(sqe, conn.fd);
    io_uring_sqe_set_data64(sqe, tag_pack({Op::close, conn.gen, conn.slot}));
    conn.is_close_submitted = true;
    conn.inflight_sqes += 1;
}

// ---------------------------------------------------------------------------------------
// Completions (called from Shard::on_cqe).

void ClientConns::on_advisory(Conn& conn) {
    RW_ASSERT(conn.inflight_sqes > 0);
    conn.inflight_sqes -= 1;
    after_cqe(conn);
}

void ClientConns::after_cqe(Conn& conn) {
    if (conn.state == ConnState::closing && conn.inflight_sqes == 0 && !conn.is_handler_owned &&
        !conn.is_close_submitted) {
        submit_close(conn);
    }
}

void ClientConns::on_recv(Conn& conn, const io_uring_cqe& cqe) {
    if ((cqe.flags & IORING_CQE_F_MORE) == 0) {
        conn.is_recv_armed = false;  // The multishot recv has ended.
        conn.is_recv_cancel_pending = false;
        conn.inflight_sqes -= 1;
    }
    if (cqe.res < 0) {
        on_recv_error(conn, -cqe.res);
    } else if (cqe.res == 0) {
        on_recv_eof(conn);
    } else {
        RW_ASSERT((cqe.flags & IORING_CQE_F_BUFFER) != 0);
        const auto bid = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
        buf_ring_.take(bid, static_cast<uint32_t>(cqe.res));
        on_recv_bytes(conn, bid, static_cast<uint32_t>(cqe.res));
    }
    after_cqe(conn);
}

void ClientConns::on_recv_eof(Conn& conn) {
    conn.is_peer_closed = true;
    if (conn.state == ConnState::reading) {
        conn_process_input(conn);  // Answers complete requests already received.
    } else if (conn.state == ConnState::lingering) {
        conn_close(conn);
    } else if (conn.state == ConnState::handling && conn.is_handler_owned &&
               (conn.response_phase == ResponsePhase::none ||
                conn.response_phase == ResponsePhase::streaming)) {
        // The client closed while its request waits on an upstream: it has gone, as nginx
        // (proxy_ignore_client_abort off) and Go's net/http judge it too. The handler stops
        // the upstream now instead of at the next byte it would relay, which may be
        // minutes away while a reasoning model thinks. A response already queued whole (or
        // ending) still goes out to a half-closed client, and so do the answers the core
        // gives itself.
        conn_close(conn);
    }
}

void ClientConns::on_recv_bytes(Conn& conn, uint16_t bid, uint32_t length_bytes) {
    if (conn.state == ConnState::lingering || conn.state == ConnState::closing) {
        conn.linger_bytes += length_bytes;
        buf_ring_.give_back(bid);  // Discarded: nothing more is read from this client.
        if (conn.state == ConnState::lingering && conn.linger_bytes > linger_bytes_max) {
            conn_close(conn);
        }
        return;
    }
    if (conn.state == ConnState::handling && conn.body_stream_left > 0 &&
        conn_body_spill(conn, bid, length_bytes)) {
        return;
    }
    if (on_recv_merge(conn, bid, length_bytes)) {
        return;
    }
    if (conn.pending_count == conn_pending_bufs_max) {
        // More unanswered input than the pause mark lets through: a client pipelining far
        // ahead of its answers. Closing is the bounded answer.
        buf_ring_.give_back(bid);
        conn_close(conn);
        return;
    }
    const uint32_t tail = (conn.pending_head + conn.pending_count) % conn_pending_bufs_max;
    conn.pending[tail] = {bid, 0, length_bytes};
    conn.pending_count += 1;
    if (conn.pending_count >= pending_pause() && conn.is_recv_armed &&
        !conn.is_recv_cancel_pending) {
        conn.is_recv_cancel_pending = true;
        submit_cancel_recv(conn);
    }
    conn_body_deadline_note(conn, length_bytes);
    if (conn.state == ConnState::reading) {
        conn_process_input(conn);
    } else if (conn.state == ConnState::handling && conn.body_stream_left > 0) {
        conn_body_pump(conn);
    }
}

// Small pieces (a client writing byte by byte) are appended to the last parked buffer
// while it has room, so a trickle cannot use up the pending slots. True when merged (the
// new buffer went back to the kernel).
bool ClientConns::on_recv_merge(Conn& conn, uint16_t bid, uint32_t length_bytes) {
    if (conn.pending_count == 0 || length_bytes > pending_merge_bytes_max) {
        return false;
    }
    PendingBuf& last =
        conn.pending[(conn.pending_head + conn.pending_count - 1) % conn_pending_bufs_max];
    if (last.length_bytes + length_bytes > buf_ring_.buf_bytes()) {
        return false;
    }
    std::memcpy(buf_ring_.data(last.bid) + last.length_bytes, buf_ring_.data(bid), length_bytes);
    last.length_bytes += length_bytes;
    buf_ring_.give_back(bid);
    conn_body_deadline_note(conn, length_bytes);
    if (conn.state == ConnState::reading) {
        conn_process_input(conn);
    } else if (conn.state == ConnState::handling && conn.body_stream_left > 0) {
        conn_body_pump(conn);
    }
    return true;
}

[[gnu::cold]] void ClientConns::on_recv_error(Conn& conn, int error) {
    switch (error) {
        case ENOBUFS:
            // Every buffer is held by the app or a send: back-pressure. Re-armed at the
            // end of a turn that has buffers again.
            metrics_.recv_buffer_exhausted.add();
            if (!conn.is_rearm_listed && conn.state != ConnState::closing) {
                conn.is_rearm_listed = true;
                rearm_list_[rearm_count_++] = conn.slot;
            }
            return;
        case ECANCELED:
            // We paused it (or are closing). The parked input may have drained before
            // this completion arrived, in which case nobody else re-arms it.
            conn_maybe_rearm_recv(conn);
            return;
        default:
            conn_close(conn);  // ECONNRESET, ETIMEDOUT, …: the client is gone.
            return;
    }
}

void ClientConns::on_send_continue(Conn& conn, int result) {
    RW_ASSERT(conn.inflight_sqes > 0);
    conn.inflight_sqes -= 1;
    if (result != static_cast<int>(std::string_view("HTTP/1.1 100 Continue\r\n\r\n").size())) {
        conn_close(conn);  // Short or failed 25-byte send: the peer is gone.
    }
    after_cqe(conn);
}

void ClientConns::on_close(Conn& conn) {
    RW_ASSERT(conn.state == ConnState::closing);
    RW_ASSERT(conn.inflight_sqes == 1);  // The close itself.
    RW_ASSERT(!conn.is_handler_owned);
    conn.inflight_sqes = 0;
    RW_ASSERT(conn.pending_count == 0);
    RW_ASSERT(conn.segment_count == 0);
    conn.arena.release();  // No SQE can reference the request's memory any more.
    conn.state = ConnState::free;
    conn.fd = -1;
    conn.gen = (conn.gen + 1) & 0xFFFFFFu;
    free_slots_[free_slot_count_++] = conn.slot;
    RW_ASSERT(open_count_ > 0);
    open_count_ -= 1;
    metrics_.connections_active.set(open_count_);
    if (waiting_count_ > 0) {
        // The slot an eviction freed goes to the connection that waited for it (oldest).
        const int fd = waiting_fds_[0];
        waiting_count_ -= 1;
        std::memmove(waiting_fds_, waiting_fds_ + 1, waiting_count_ * sizeof(int));
        open_in_slot(fd);
    }
}

// ---------------------------------------------------------------------------------------
// Connection state machine.

// The peer is read lazily: only a key limited to some addresses needs it, and the multishot
// accept cannot hand over one sockaddr per connection (every accept of one submission
// writes the same addr buffer) [io_uring_prep_multishot_accept(3)]. getpeername on an
// accepted socket fails only once the peer reset it (ENOTCONN).
bool client_peer_address(Conn& conn, IpAddress& address) {
    RW_ASSERT(conn.fd >= 0);
    if (conn.peer_address_state == PeerAddressState::unread) {
        sockaddr_storage peer{};
        socklen_t peer_bytes = sizeof(peer);
        const bool is_read =
            ::getpeername(conn.fd, reinterpret_cast<sockaddr*>(&peer), &peer_bytes) == 0 &&
            ip_from_sockaddr(&peer, peer_bytes, conn.peer_address);
        conn.peer_address_state = is_read ? PeerAddressState::known : PeerAddressState::unavailable;
    }
    if (conn.peer_address_state != PeerAddressState::known) {
        return false;
    }
    address = conn.peer_address;
    return true;
}

void ClientConns::open(int fd) {
    metrics_.connections_accepted.add();
    if (free_slot_count_ == 0) {
        // At RINGWAY_MAX_CONNECTIONS: the oldest idle keep-alive connection makes room and
        // this one waits for its slot (a close CQE away); with none idle, refuse at once
        // rather than queue.
        if (!evict_oldest_idle(fd)) {
            refuse(fd);
        }
        return;
    }
    open_in_slot(fd);
}

void ClientConns::open_in_slot(int fd) {
    RW_ASSERT(free_slot_count_ > 0);
    const uint32_t slot = free_slots_[--free_slot_count_];
    if (slot >= slots_high_water_) {
        // Free slots are popped lowest first, so a new one is always the next unused.
        RW_ASSERT(slot == slots_high_water_);
        Conn* constructed = new (&conns_[slot]) Conn(parser_limits_);
        constructed->slot = slot;
        constructed->table = this;
        constructed->arena.bind(&chunk_pool_, arena_bytes_per_request_max(config_));
        slots_high_water_ = slot + 1;
    }
    Conn& conn = conns_[slot];
    RW_ASSERT(conn.state == ConnState::free);
    RW_ASSERT(conn.inflight_sqes == 0);
    RW_ASSERT(conn.arena.is_empty());
    conn.fd = fd;
    conn.is_recv_armed = false;
    conn.is_peer_closed = false;
    conn.is_close_submitted = false;
    conn.is_rearm_listed = false;
    conn.is_recv_cancel_pending = false;
    conn.pending_head = 0;
    conn.pending_count = 0;
    conn.linger_bytes = 0;
    conn.requests_count = 0;
    conn.segment_count = 0;
    conn.segment_inflight_count = 0;
    conn.is_send_inflight = false;
    conn.is_handler_owned = false;
    conn.is_closed_by_drain = false;
    conn.is_idle_listed = false;
    conn.lent_buffers = 0;
    conn.peer_address_state = PeerAddressState::unread;
    open_count_ += 1;
    metrics_.connections_active.set(open_count_);
    conn_start_request(conn);
    // A new connection gets the header deadline at once: one that never sends a byte
    // must not hold a slot for the keep-alive time (nginx client_header_timeout).
    conn_set_deadline(conn, Deadline::header, config_.header_timeout_ms);
    submit_recv(conn);
}

void ClientConns::conn_start_request(Conn& conn) {
    RW_ASSERT(conn.arena.is_empty());
    RW_ASSERT(conn.segment_count == 0);
    RW_ASSERT(!conn.is_handler_owned);
    RW_ASSERT(conn.head_state == nullptr);  // Handed to on_request or abandoned.
    conn.state = ConnState::reading;
    conn.is_body_discarded = false;
    conn.is_body_streamed = false;
    conn.body_stream_left = 0;
    conn.spill = nullptr;  // Arena memory: released with the request.
    conn.spill_offset_bytes = 0;
    conn.spill_bytes = 0;
    conn.spill_capacity_bytes = 0;
    conn.response_phase = ResponsePhase::none;
    conn.is_close_after_send = false;
    conn.is_error_response = false;
    conn.response_status = 0;
    conn.response_bytes_sent = 0;
    conn.response_bytes_queued = 0;
    conn.handler_request = nullptr;
    conn.is_stream_raw = false;
    conn.segment_head = 0;
    conn.parser.start(conn.arena);
    conn_set_deadline(conn, Deadline::keepalive, config_.keepalive_timeout_ms);
}

// Feeds parked input to the parser until a request is complete, the input runs out, or
// the request is refused. Buffers fully consumed go back to the kernel here: the parser
// has copied what it keeps into the request arena ("views into a recv buffer are valid
// only until give-back").
void ClientConns::conn_process_input(Conn& conn) {
    RW_ASSERT(conn.state == ConnState::reading);
    bool is_head_just_complete = false;  // A body-less message completes on the next call.
    while (conn.state == ConnState::reading && conn.pending_count > 0) {
        if (conn.deadline == Deadline::keepalive) {
            // The first byte of a request: its whole header block must arrive in time.
            conn_set_deadline(conn, Deadline::header, config_.header_timeout_ms);
        }
        PendingBuf& pending = conn.pending[conn.pending_head];
        const auto* bytes = reinterpret_cast<const char*>(buf_ring_.data(pending.bid));
        const ParseResult result = conn.parser.feed(
            {bytes + pending.offset_bytes, pending.length_bytes - pending.offset_bytes});
        RW_ASSERT(result.consumed_bytes <= pending.length_bytes - pending.offset_bytes);
        pending.offset_bytes += result.consumed_bytes;
        if (pending.offset_bytes == pending.length_bytes) {
            buf_ring_.give_back(pending.bid);
            conn.pending_head =
                static_cast<uint8_t>((conn.pending_head + 1) % conn_pending_bufs_max);
            conn.pending_count -= 1;
        }
        is_head_just_complete = result.event == ParseEvent::head_complete;
        switch (result.event) {
            case ParseEvent::need_more: break;
            case ParseEvent::head_complete: conn_head_complete(conn); break;
            case ParseEvent::message_complete: conn_request_complete(conn); break;
            case ParseEvent::error:
                if (conn.is_body_discarded) {
                    conn_close(conn);  // Already answered; a broken body ends the connection.
                } else {
                    conn_respond_parse_error(conn, result.error);
                }
                return;
        }
    }
    if (conn.state == ConnState::reading && conn.pending_count == 0 && is_head_just_complete) {
        // The input ended right after a head: a message without a body completes only on
        // the parser's next call, so give it one with no bytes.
        const ParseResult result = conn.parser.feed({});
        if (result.event == ParseEvent::message_complete) {
            conn_request_complete(conn);
        } else if (result.event == ParseEvent::error) {
            conn_respond_parse_error(conn, result.error);
            return;
        }
    }
    if (conn.state == ConnState::reading && conn.pending_count == 0 && conn.is_peer_closed) {
        conn_close(conn);  // Nothing more can arrive; a partial request is abandoned.
        return;
    }
    conn_maybe_rearm_recv(conn);
}

void ClientConns::conn_head_complete(Conn& conn) {
    const ParsedRequest& request = conn.parser.request();
    const bool has_body =
        request.is_chunked || (request.has_content_length && request.content_length > 0);
    if (!conn_head_hook(conn)) {
        return;  // Refused at its head and answered.
    }
    // The parser let Content-Length through up to the larger of the two limits: which one
    // applies is known now (a streamed upload's, or a stored body's). The handler refuses
    // a chunked upload itself (411); refusing it here is the core's own bound.
    const uint64_t body_max =
        conn.is_body_streamed ? config_.max_upload_bytes : config_.max_body_bytes;
    if (request.content_length > body_max || (conn.is_body_streamed && request.is_chunked)) {
        conn_head_abandon(conn);
        conn_respond_parse_error(conn, ParseError::body_too_large);
        return;
    }
    // 100 Continue only once the head's checks passed: a refused client gets its 4xx
    // instead of an invitation to upload [RFC 9110 10.1.1].
    if (has_body && request.expects_continue && conn.pending_count == 0) {
        submit_send_continue(conn);
    }
    conn_body_deadline_start(conn);
    if (conn.is_body_streamed) {
        conn_body_stream_begin(conn);
    }
}

// Runs the handler's on_head for a path the core does not serve. True when the request
// goes on to its body; false when the handler answered (the refusal's response is queued
// and the state is handling). A refused body is never stored: a small one is parsed and
// dropped after the answer (is_body_discarded) so the connection stays usable, a large,
// chunked or 100-continue one closes the connection after the answer (conn_linger drops
// what arrives meanwhile).
bool ClientConns::conn_head_hook(Conn& conn) {
    RW_ASSERT(conn.head_state == nullptr);
    const ParsedRequest& request = conn.parser.request();
    if (handler_.on_head == nullptr || is_builtin_path(request.path)) {
        return true;
    }
    conn.is_in_head_hook = true;
    void* head_state = handler_.on_head(handler_.context, conn);
    conn.is_in_head_hook = false;
    if (conn.response_phase == ResponsePhase::none) {
        RW_ASSERT(conn.state == ConnState::reading);
        conn.head_state = head_state;
        return true;
    }
    RW_ASSERT(head_state == nullptr);  // A refusal keeps no state.
    RW_ASSERT(conn.state == ConnState::handling);
    conn.requests_count += 1;
    metrics_.head_refusals.add();
    const bool has_body =
        request.is_chunked || (request.has_content_length && request.content_length > 0);
    if (has_body && !conn.is_close_after_send) {
        conn.parser.discard_body();
        conn.is_body_discarded = true;
    }
    return false;
}

// A request whose head the handler accepted ended before its body did: the handler
// releases what it took at the head (rate and concurrency slots). Idempotent.
void ClientConns::conn_head_abandon(Conn& conn) {
    void* head_state = conn.head_state;
    if (head_state == nullptr) {
        return;
    }
    conn.head_state = nullptr;
    RW_ASSERT(handler_.on_head_abandoned != nullptr);
    handler_.on_head_abandoned(handler_.context, head_state);
}

// Whether a request refused at its head may keep its connection: its body, if any, is
// read and dropped, which is bounded only for a Content-Length body up to
// RINGWAY_DISCARD_BODY_MAX_BYTES. A chunked body has no known end, and a client that sent
// Expect: 100-continue waits for a 100 it will not get and may never send its body.
bool ClientConns::conn_body_is_discardable(const Conn& conn) const {
    const ParsedRequest& request = conn.parser.request();
    const bool has_body =
        request.is_chunked || (request.has_content_length && request.content_length > 0);
    if (!has_body) {
        return true;
    }
    return !request.is_chunked && !request.expects_continue &&
           request.content_length <= config_.discard_body_max_bytes;
}

// The body deadline is the earlier of two. RINGWAY_BODY_TIMEOUT_MS after the last byte
// (idle), which alone never cuts a body dripping a byte a second: a 16 MiB body at 1 B/s
// would hold its slot and arena for 194 days. And, after RINGWAY_BODY_RATE_GRACE_MS, the
// time by which the bytes received so far would have come at RINGWAY_BODY_MIN_RATE_BYTES_PER_S
// (Apache mod_reqtimeout's MinRate). A minimum rate rather than a total deadline: a fixed
// total either cuts large uploads on slow links or lets small drips run for as long; the
// rate scales with the body's size and still ends every trickle.
void ClientConns::conn_body_deadline_start(Conn& conn) {
    conn.body_started_ms = shard_.now_ms();
    conn.body_received_bytes = 0;
    conn.body_paused_ms = 0;
    conn.deadline = Deadline::body;
    conn_body_deadline_note(conn, 0);
}

void ClientConns::conn_body_deadline_note(Conn& conn, uint32_t length_bytes) {
    if (conn.body_paused_ms != 0) {
        // Paused: the bytes a burst brings still count toward the rate, but nothing re-arms
        // the deadline until the handler resumes the body.
        RW_ASSERT(conn.deadline == Deadline::none);
        conn.body_received_bytes += length_bytes;
        return;
    }
    if (conn.deadline != Deadline::body) {
        return;
    }
    conn.body_received_bytes += length_bytes;
    conn.body_idle_deadline_ms = shard_.now_ms() + config_.body_timeout_ms;
    uint64_t deadline_ms = conn.body_idle_deadline_ms;
    if (config_.body_min_rate_bytes_per_s > 0) {
        const uint64_t rate_deadline_ms =
            conn.body_started_ms + config_.body_rate_grace_ms +
            conn.body_received_bytes * 1000 / config_.body_min_rate_bytes_per_s;
        deadline_ms = rate_deadline_ms < deadline_ms ? rate_deadline_ms : deadline_ms;
    }
    conn.deadline_ms = deadline_ms;
}

void ClientConns::conn_request_complete(Conn& conn) {
    if (conn.is_body_discarded) {
        // The refused request's body has been read whole and dropped: the connection is
        // reusable (RULES §1) and the next pipelined request is parsed now.
        RW_ASSERT(conn.head_state == nullptr);
        conn.arena.release();
        if (shard_.is_draining()) {
            conn_close(conn);  // Shutting down: no next request on this connection.
            return;
        }
        conn_start_request(conn);
        return;
    }
    conn.state = ConnState::handling;
    conn_set_deadline(conn, Deadline::none, 0);
    conn_dispatch(conn);
}

void ClientConns::conn_dispatch(Conn& conn) {
    RW_ASSERT(conn.state == ConnState::handling);
    const ParsedRequest& request = conn.parser.request();
    conn.requests_count += 1;
    const bool is_get = request.method == Method::get || request.method == Method::head;
    const std::string_view path = request.path;
    if (is_builtin_path(path)) {
        if (!is_get) {
            respond_error(conn, 405, "method_not_allowed",
                          "Only GET and HEAD are allowed on this path.");
            return;
        }
        conn_serve_builtin(conn, path, request.method == Method::head);
        return;
    }
    if (handler_.on_request != nullptr) {
        // The handler owns its head state from here: it is no longer abandoned by a close
        // (which on_request itself may cause), only read through client_head_state.
        conn.head_state_dispatched = conn.head_state;
        conn.head_state = nullptr;
        handler_.on_request(handler_.context, conn);
        conn.head_state_dispatched = nullptr;
        return;
    }
    respond_unknown_url(conn);
}

// The core's own paths: liveness, readiness (the writer's state decides too) and the
// Prometheus text of every shard plus the other subsystems.
void ClientConns::conn_serve_builtin(Conn& conn, std::string_view path, bool is_head) {
    if (path == "/healthz") {
        conn_respond(conn, 200, "application/json", json_ok, is_head, {});
        return;
    }
    if (path == "/readyz") {
        const bool is_ready = shared_.is_ready.load(std::memory_order_acquire) &&
                              !shared_.is_stopping.load(std::memory_order_acquire);
        const char* reason = shared_.not_ready_reason != nullptr
                                 ? shared_.not_ready_reason(shared_.hooks_context)
                                 : nullptr;
        if (is_ready && reason == nullptr) {
            conn_respond(conn, 200, "application/json", json_ready, is_head, {});
        } else {
            respond_error(conn, 503, "not_ready",
                          reason != nullptr ? reason : "The gateway is not ready.");
        }
        return;
    }
    auto* text = static_cast<char*>(conn.arena.alloc(metrics_text_bytes_max, 1));
    if (text == nullptr) {
        respond_error(conn, 503, "overloaded", "The gateway is out of memory.");
        return;
    }
    uint32_t length =
        metrics_render(text, metrics_text_bytes_max, shared_.metrics, shared_.shard_count);
    if (shared_.render_metrics != nullptr) {
        length += shared_.render_metrics(shared_.hooks_context, text + length,
                                         metrics_text_bytes_max - length);
    }
    conn_respond(conn, 200, "text/plain; version=0.0.4", {text, length}, is_head, {});
}

void ClientConns::conn_respond_parse_error(Conn& conn, ParseError error) {
    RW_ASSERT(error != ParseError::none);
    metrics_.parse_errors[static_cast<uint32_t>(error)].add();
    respond_error(conn, parse_error_status(error), parse_error_code(error),
                  parse_error_message(error));
}

// Half-close and discard input for a bounded time, so the client reads our last response
// rather than an RST caused by unread data (nginx lingering_close, RULES §1).
void ClientConns::conn_linger(Conn& conn) {
    RW_ASSERT(!conn.is_handler_owned);
    conn_pending_drop(conn);
    conn.arena.release();  // The response is out: a lingering client holds no memory.
    conn.state = ConnState::lingering;
    conn.linger_bytes = 0;
    submit_shutdown(conn);
    conn_set_deadline(conn, Deadline::linger, linger_ms_max);
    conn_maybe_rearm_recv(conn);
}

void ClientConns::conn_close(Conn& conn) {
    if (conn.state == ConnState::closing) {
        return;  // A deadline may race an error CQE.
    }
    RW_ASSERT(conn.state != ConnState::free);
    conn_head_abandon(conn);
    conn.state = ConnState::closing;
    conn.deadline = Deadline::none;
    idle_unlink(conn);
    conn_pending_drop(conn);
    if (!conn.is_send_inflight) {
        conn_segments_drop(conn);  // Otherwise dropped when the send's CQE comes back.
    }
    if (conn.inflight_sqes > 0) {
        submit_cancel_all(conn);  // Recv, sends: their CQEs still arrive and count down.
    }
    if (conn.is_handler_owned && handler_.on_client_gone != nullptr) {
        // The handler stops its upstream work and calls client_release when its I/O is done.
        handler_.on_client_gone(
            handler_.context, conn.handler_request,
            conn.is_closed_by_drain ? ClientGone::drain_deadline : ClientGone::closed);
    }
    after_cqe(conn);
}

void ClientConns::conn_pending_drop(Conn& conn) {
    while (conn.pending_count > 0) {
        buf_ring_.give_back(conn.pending[conn.pending_head].bid);
        conn.pending_head = static_cast<uint8_t>((conn.pending_head + 1) % conn_pending_bufs_max);
        conn.pending_count -= 1;
    }
    conn.pending_head = 0;
}

void ClientConns::conn_maybe_rearm_recv(Conn& conn) {
    const bool wants_input = conn.state == ConnState::reading ||
                             conn.state == ConnState::handling ||
                             conn.state == ConnState::lingering;
    if (wants_input && !conn.is_recv_armed && !conn.is_peer_closed && !conn.is_rearm_listed &&
        conn.pending_count < pending_pause() && conn.spill_offset_bytes == conn.spill_bytes) {
        submit_recv(conn);
    }
}

void ClientConns::conn_set_deadline(Conn& conn, Deadline deadline, uint32_t timeout_ms) {
    conn.body_paused_ms = 0;  // Another phase (an answer, the body's end): no resume owed.
    conn.deadline = deadline;
    conn.deadline_ms = deadline == Deadline::none ? 0 : shard_.now_ms() + timeout_ms;
    if (deadline == Deadline::keepalive) {
        idle_link(conn);  // Between requests: evictable at the cap.
    } else {
        idle_unlink(conn);
    }
}

void ClientConns::conn_on_deadline(Conn& conn) {
    switch (conn.deadline) {
        case Deadline::none: RW_UNREACHABLE();
        case Deadline::keepalive:
            metrics_.timeouts[static_cast<uint32_t>(TimeoutPhase::keepalive)].add();
            conn_close(conn);
            return;
        case Deadline::header:
            metrics_.timeouts[static_cast<uint32_t>(TimeoutPhase::header)].add();
            if (conn.parser.in_message() || conn.pending_count > 0) {
                respond_error(conn, 408, "request_timeout",
                              "The request headers did not arrive in time.");
            } else {
                conn_close(conn);  // Never sent a byte: nothing to answer.
            }
            return;
        case Deadline::body:
            metrics_.timeouts[static_cast<uint32_t>(TimeoutPhase::body)].add();
            if (conn.is_body_discarded || conn.state == ConnState::handling) {
                // Already answered, or a streamed body the handler is relaying: a body
                // that stalls ends the connection (the handler hears on_client_gone).
                conn_close(conn);
            } else if (shard_.now_ms() >= conn.body_idle_deadline_ms) {
                respond_error(conn, 408, "request_timeout", "The request body stopped arriving.");
            } else {
                respond_error(conn, 408, "request_timeout",
                              "The request body is arriving too slowly.");
            }
            return;
        case Deadline::send:
            metrics_.timeouts[static_cast<uint32_t>(TimeoutPhase::send)].add();
            conn_close(conn);  // The client stopped reading; cancel_all ends the send.
            return;
        case Deadline::linger: conn_close(conn); return;
    }
}

// ---------------------------------------------------------------------------------------
// The handler's ownership of a request (core/client.h).

void ClientConns::take(Conn& conn, void* request) {
    RW_ASSERT(conn.state == ConnState::handling);
    RW_ASSERT(!conn.is_handler_owned);
    conn.is_handler_owned = true;
    conn.handler_request = request;
}

void ClientConns::release(Conn& conn) {
    RW_ASSERT(conn.is_handler_owned);
    conn.is_handler_owned = false;
    conn.handler_request = nullptr;
    if (conn.state == ConnState::closing) {
        after_cqe(conn);
    } else if (conn.state == ConnState::handling &&
               conn.response_phase == ResponsePhase::complete && conn.segment_count == 0 &&
               !conn.is_send_inflight) {
        conn_response_sent(conn);  // The response went out before the handler let go.
    }
}

}  // namespace rw
