// core/shard.cc — the shard loop and the client connection state machine. Runs on the
// shard's own pinned thread only. Contracts relied on, with their sources:
// - one io_uring_submit_and_wait_timeout per turn submits everything queued and waits
//   with the timeout passed as an argument, not an SQE [io_uring_enter(2), EXT_ARG];
// - a multishot CQE without IORING_CQE_F_MORE has terminated and must be re-armed
//   [io_uring_prep_recv_multishot(3), io_uring_prep_multishot_accept(3)];
// - -ENOBUFS on a buffer-select recv is back-pressure, not an error (liburing recv_enobufs);
// - closing an fd does not cancel io_uring requests on it (they hold a file reference), so
//   a connection is cancelled first and closed once no request is left
//   [io_uring_prep_cancel_fd(3)].
#include "core/shard.h"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/http_write.h"
#include "core/log.h"

namespace rw {
namespace {

constexpr std::string_view continue_response = "HTTP/1.1 100 Continue\r\n\r\n";

uint64_t clock_ms() {
    // CLOCK_MONOTONIC_COARSE is a vDSO read (no syscall); its ~4 ms resolution is finer
    // than the deadline sweep period.
    timespec now;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return uint64_t(now.tv_sec) * 1000 + uint64_t(now.tv_nsec) / 1000000;
}

// How far clock_ms() may lag the precise clock (one tick: 1–10 ms by CONFIG_HZ). The
// ring's timeout is precise, so a loop woken for the sweep may read a coarse time just
// short of it; the sweep is then due anyway, instead of sleeping again for the rest
// (which cost an idle shard ~100 extra wake-ups a second).
uint64_t clock_ms_slack() {
    timespec resolution{};
    clock_getres(CLOCK_MONOTONIC_COARSE, &resolution);
    const uint64_t slack_ms = (uint64_t(resolution.tv_nsec) + 999999) / 1000000;
    return slack_ms < timer_sweep_ms / 2 ? slack_ms : timer_sweep_ms / 2;
}

// Memory one request may hold: its body (plus simdjson padding), its header copies and
// room for the response the core or the proxy writes.
uint64_t arena_bytes_per_request_max(const Config& config) {
    // A chunked body grows by doubling and the arena frees nothing before release, so it
    // may hold up to ~4x the body limit in blocks on its way to the final size.
    return 4 * (config.max_body_bytes + large_block_bytes_min) + 2ull * config.max_header_bytes +
           256 * 1024;
}

uint64_t small_chunks_max(const Config& config) {
    return uint64_t(config.max_connections) * 8;
}

uint64_t large_bytes_max(const Config& config) {
    // Room for two maximal chunked bodies growing at once; the cap bounds memory, steady
    // loads stay far below it and never grow the pool.
    const uint64_t per_body = 4 * (config.max_body_bytes + large_block_bytes_min);
    return per_body * 2 > (64ull << 20) ? per_body * 2 : (64ull << 20);
}

std::string_view json_ok = "{\"status\":\"ok\"}";
std::string_view json_ready = "{\"status\":\"ready\"}";

}  // namespace

Shard::Shard(ServerShared& shared, uint32_t index, int listen_fd)
    : shared_(shared),
      config_(*shared.config),
      index_(index),
      listen_fd_(listen_fd),
      parser_limits_{config_.max_request_line_bytes, config_.max_header_bytes, config_.max_headers,
                     config_.max_body_bytes, config_.max_chunk_ext_bytes},
      chunk_pool_(small_chunks_max(config_), large_bytes_max(config_)) {
    RW_ASSERT(index < shards_max);
}

Shard::~Shard() {
    if (conns_ != nullptr) {
        for (uint32_t i = 0; i < config_.max_connections; i++) {
            conns_[i].arena.release();
            conns_[i].~Conn();
        }
        std::free(conns_);
    }
    std::free(free_slots_);
    std::free(rearm_list_);
    if (listen_fd_ >= 0) {
        ::close(listen_fd_);
    }
    if (wake_fd_ >= 0) {
        ::close(wake_fd_);
    }
    // The buffer ring unregisters itself in its destructor, which runs after this body;
    // io_uring_queue_exit would invalidate the ring it needs, so unregister it first.
    buf_ring_.~BufRing();
    new (&buf_ring_) BufRing();
    if (is_ring_ready_) {
        io_uring_queue_exit(&ring_);
    }
}

namespace {

// One thread submits (SINGLE_ISSUER) and completions are run only when it waits
// (DEFER_TASKRUN): no task-work interrupts mid-turn. Both need Linux 6.1; older kernels
// fall back to COOP_TASKRUN. False with `error` naming the cause, the ring not set up.
bool ring_open(io_uring& ring, uint32_t entries, std::string& error) {
    io_uring_params params;
    std::memset(&params, 0, sizeof(params));
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
    params.cq_entries = entries * 4;
    int rc = io_uring_queue_init_params(entries, &ring, &params);
    if (rc == -EINVAL) {
        std::memset(&params, 0, sizeof(params));
        params.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_CQSIZE;
        params.cq_entries = entries * 4;
        rc = io_uring_queue_init_params(entries, &ring, &params);
    }
    if (rc < 0) {
        if (rc == -EPERM || rc == -EACCES) {
            error =
                "io_uring is disabled for this process (kernel.io_uring_disabled sysctl or a "
                "seccomp filter): ";
        } else if (rc == -ENOSYS) {
            error = "this kernel has no io_uring (Linux 5.19 or newer is required): ";
        } else {
            error = "io_uring_queue_init failed: ";
        }
        error += std::strerror(-rc);
        return false;
    }
    if ((params.features & IORING_FEAT_EXT_ARG) == 0) {
        io_uring_queue_exit(&ring);
        error = "this kernel's io_uring lacks IORING_FEAT_EXT_ARG (Linux 5.11+ required)";
        return false;
    }
    return true;
}

}  // namespace

bool io_uring_probe(std::string& error) {
    io_uring ring;
    if (!ring_open(ring, 8, error)) {
        return false;
    }
    io_uring_queue_exit(&ring);
    return true;
}

bool Shard::setup(std::string& error) {
    if (!ring_open(ring_, ring_entries, error)) {
        return false;
    }
    is_ring_ready_ = true;
    const int rc = buf_ring_.init(&ring_, 0, static_cast<uint16_t>(config_.recv_buffers),
                                  config_.recv_buffer_bytes);
    if (rc < 0) {
        error = std::string("cannot register the provided buffer ring (Linux 5.19+ required): ") +
                std::strerror(-rc);
        return false;
    }
    wake_fd_ = eventfd(0, EFD_CLOEXEC);
    if (wake_fd_ < 0) {
        error = std::string("eventfd: ") + std::strerror(errno);
        return false;
    }
    const uint32_t slots = config_.max_connections;
    conns_ = static_cast<Conn*>(std::aligned_alloc(64, (sizeof(Conn) * slots + 63) / 64 * 64));
    free_slots_ = static_cast<uint32_t*>(std::malloc(sizeof(uint32_t) * slots));
    rearm_list_ = static_cast<uint32_t*>(std::malloc(sizeof(uint32_t) * slots));
    if (conns_ == nullptr || free_slots_ == nullptr || rearm_list_ == nullptr) {
        error = "out of memory for connection slots (lower RINGWAY_MAX_CONNECTIONS)";
        return false;
    }
    const uint64_t arena_max = arena_bytes_per_request_max(config_);
    for (uint32_t i = 0; i < slots; i++) {
        Conn* conn = new (&conns_[i]) Conn(parser_limits_);
        conn->slot = i;
        conn->arena.bind(&chunk_pool_, arena_max);
        free_slots_[slots - 1 - i] = i;  // Pop order: slot 0 first.
    }
    free_slot_count_ = slots;
    chunk_pool_.reserve_small(slots < 64 ? slots : 64);
    metrics_.connections_active.set(0);
    shared_.metrics[index_] = &metrics_;
    return true;
}

void Shard::wake() {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t written = ::write(wake_fd_, &one, sizeof(one));
}

// ---------------------------------------------------------------------------------------
// The loop.

void Shard::run() {
    RW_ASSERT(is_ring_ready_);
    alloc_count_bind_thread(&metrics_.heap_allocations);
    now_ms_ = clock_ms();
    clock_slack_ms_ = clock_ms_slack();
    date_refresh();
    next_sweep_ms_ = now_ms_ + timer_sweep_ms;
    submit_accept();
    submit_wake_read();
    if (shared_.is_stopping.load(std::memory_order_acquire)) {
        drain_begin();  // A signal raced startup.
    }
    for (;;) {
        if (is_draining_ && is_drained()) {
            break;
        }
        const uint64_t wait_ms = next_sweep_ms_ > now_ms_ ? next_sweep_ms_ - now_ms_ : 1;
        __kernel_timespec timeout{};
        timeout.tv_sec = static_cast<int64_t>(wait_ms / 1000);
        timeout.tv_nsec = static_cast<long long>((wait_ms % 1000) * 1000000);
        io_uring_cqe* first = nullptr;
        const int rc = io_uring_submit_and_wait_timeout(&ring_, &first, 1, &timeout, nullptr);
        // -ETIME: the sweep is due. -EINTR: a signal (they are blocked here, but a
        // debugger may still interrupt). -EBUSY/-EAGAIN: the CQ is full; drain it below.
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) {
            RW_LOG_ERROR("event=ring_error shard=%u error=\"%s\"", index_, std::strerror(-rc));
            std::abort();
        }
        now_ms_ = clock_ms();
        date_refresh();
        unsigned head = 0;
        unsigned seen_count = 0;
        io_uring_cqe* cqe = nullptr;
        io_uring_for_each_cqe(&ring_, head, cqe) {
            on_cqe(*cqe);
            seen_count += 1;
        }
        io_uring_cq_advance(&ring_, seen_count);
        turn_end();
    }
    if (listen_fd_ >= 0) {
        ::close(listen_fd_);
        listen_fd_ = -1;
    }
    alloc_count_bind_thread(nullptr);
}

// The Date header of every response, formatted once per second rather than per
// response (nginx's ngx_cached_http_time). CLOCK_REALTIME_COARSE is a vDSO read.
void Shard::date_refresh() {
    timespec now;
    clock_gettime(CLOCK_REALTIME_COARSE, &now);
    if (now.tv_sec != date_second_) {
        date_second_ = now.tv_sec;
        format_date_line(date_line_, now.tv_sec);
    }
}

void Shard::turn_end() {
    if (handler_.on_turn_end != nullptr) {
        handler_.on_turn_end(handler_.context);
    }
    buf_ring_.flush();  // Give-backs of this turn, published with one tail store.
    if (rearm_count_ > 0 && buf_ring_.in_app_count() < buf_ring_.buf_count()) {
        const uint32_t count = rearm_count_;
        rearm_count_ = 0;
        for (uint32_t i = 0; i < count; i++) {
            Conn& conn = conns_[rearm_list_[i]];
            conn.is_rearm_listed = false;
            conn_maybe_rearm_recv(conn);
        }
    }
    if (now_ms_ + clock_slack_ms_ >= next_sweep_ms_) {
        sweep_deadlines();
        next_sweep_ms_ = now_ms_ + timer_sweep_ms;
    }
    metrics_.loop_iterations.add();
    metrics_.arena_chunks_in_use.set(chunk_pool_.stats().small_in_use);
}

// Deadlines are checked by a sweep over the used slots every timer_sweep_ms instead of
// one timeout SQE per connection: no SQE or cancellation per request, and the cost
// (one compare per slot, tens of times a second) is bounded by RINGWAY_MAX_CONNECTIONS.
void Shard::sweep_deadlines() {
    const bool is_drain_overdue = is_draining_ && now_ms_ >= drain_deadline_ms_;
    for (uint32_t i = 0; i < slots_high_water_; i++) {
        Conn& conn = conns_[i];
        if (conn.state == ConnState::free || conn.state == ConnState::closing) {
            continue;
        }
        if (is_drain_overdue) {
            conn.is_closed_by_drain = true;
            conn_close(conn);
        } else if (conn.deadline != Deadline::none && now_ms_ >= conn.deadline_ms) {
            conn_on_deadline(conn);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Submission. Every SQE that names a connection counts in its inflight_sqes until its
// final CQE; the slot is reused only at zero.

io_uring_sqe* Shard::sqe_get() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) [[unlikely]] {
        // The SQ is full within one turn: submit what is queued and take a fresh entry.
        [[maybe_unused]] const int submitted = io_uring_submit(&ring_);
        sqe = io_uring_get_sqe(&ring_);
        RW_ASSERT(sqe != nullptr);
    }
    return sqe;
}

void Shard::submit_accept() {
    RW_ASSERT(!is_accept_armed_);
    io_uring_sqe* sqe = sqe_get();
    io_uring_prep_multishot_accept(sqe, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, tag_pack({Op::accept, 0, 0}));
    is_accept_armed_ = true;
    shard_ops_inflight_ += 1;
}

void Shard::submit_wake_read() {
    io_uring_sqe* sqe = sqe_get();
    io_uring_prep_read(sqe, wake_fd_, &wake_value_, sizeof(wake_value_), 0);
    io_uring_sqe_set_data64(sqe, tag_pack({Op::wake, 0, 0}));
    shard_ops_inflight_ += 1;
}

void Shard::submit_recv(Conn& conn) {
    RW_ASSERT(!conn.is_recv_armed);
    RW_ASSERT(conn.state != ConnState::closing);
    io_uring_sqe* sqe = sqe_get();
    io_uring_prep_recv_multishot(sqe, conn.fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = buf_ring_.group_id();
    io_uring_sqe_set_data64(sqe, tag_pack({Op::recv, conn.gen, conn.slot}));
    conn.is_recv_armed = true;
    conn.inflight_sqes += 1;
}

void Shard::submit_send(Conn& conn) {
    RW_ASSERT(!conn.is_send_inflight);
    RW_ASSERT(conn.segment_count > 0);
    io_uring_sqe* sqe = sqe_get();
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
        // The msghdr and iovecs live in the Conn, which outlives the send [sendmsg(2)].
        io_uring_prep_sendmsg(sqe, conn.fd, &conn.message, MSG_NOSIGNAL);
    }
    io_uring_sqe_set_data64(sqe, tag_pack({Op::send, conn.gen, conn.slot}));
    conn.is_send_inflight = true;
    conn.segment_inflight_count = count;
    conn.inflight_sqes += 1;
    conn_set_deadline(conn, Deadline::send, config_.send_timeout_ms);
}

void Shard::submit_send_continue(Conn& conn) {
    io_uring_sqe* sqe = sqe_get();
    io_uring_prep_send(sqe, conn.fd, continue_response.data(),
                       static_cast<uint32_t>(continue_response.size()), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, tag_pack({Op::send_continue, conn.gen, conn.slot}));
    conn.inflight_sqes += 1;
}

void Shard::submit_cancel_recv(Conn& conn) {
    io_uring_sqe* sqe = sqe_get();
    io_uring_prep_cancel64(sqe, tag_pack({Op::recv, conn.gen, conn.slot}), 0);
    io_uring_sqe_set_data64(sqe, tag_pack({Op::cancel, conn.gen, conn.slot}));
    conn.inflight_sqes += 1;
}

void Shard::submit_cancel_all(Conn& conn) {
    io_uring_sqe* sqe = sqe_get();
    io_uring_prep_cancel_fd(sqe, conn.fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, tag_pack({Op::cancel, conn.gen, conn.slot}));
    conn.inflight_sqes += 1;
}

void Shard::submit_shutdown(Conn& conn) {
    io_uring_sqe* sqe = sqe_get();
    io_uring_prep_shutdown(sqe, conn.fd, SHUT_WR);
    io_uring_sqe_set_data64(sqe, tag_pack({Op::shutdown, conn.gen, conn.slot}));
    conn.inflight_sqes += 1;
}

void Shard::submit_close(Conn& conn) {
    RW_ASSERT(conn.inflight_sqes == 0);
    RW_ASSERT(!conn.is_close_submitted);
    io_uring_sqe* sqe = sqe_get();
    io_uring_prep_close(sqe, conn.fd);
    io_uring_sqe_set_data64(sqe, tag_pack({Op::close, conn.gen, conn.slot}));
    conn.is_close_submitted = true;
    conn.inflight_sqes += 1;
}

// ---------------------------------------------------------------------------------------
// Completion dispatch: the only switch on Op.

void Shard::on_cqe(const io_uring_cqe& cqe) {
    if (cqe.user_data == 0) {
        return;  // A cancel whose own result nobody needs (the accept cancel at drain).
    }
    const OpTag tag = tag_unpack(cqe.user_data);
    if (tag.op == Op::accept || tag.op == Op::wake) {
        on_shard_cqe(tag.op, cqe);
        return;
    }
    if (op_is_handler(tag.op)) {
        RW_ASSERT(handler_.on_cqe != nullptr);
        handler_.on_cqe(handler_.context, cqe);
        return;
    }
    RW_ASSERT(tag.slot < slots_high_water_);
    Conn& conn = conns_[tag.slot];
    // A slot is recycled only after its last CQE, so a stale tag is a bug.
    RW_ASSERT((conn.gen & 0xFFFFFFu) == tag.gen);
    RW_ASSERT(conn.state != ConnState::free);
    switch (tag.op) {
        case Op::recv: on_recv(conn, cqe); break;
        case Op::send: on_send(conn, cqe); break;
        case Op::send_continue:
            conn.inflight_sqes -= 1;
            if (cqe.res != static_cast<int>(continue_response.size())) {
                conn_close(conn);  // Short or failed 25-byte send: the peer is gone.
            }
            break;
        case Op::cancel:
        case Op::shutdown: conn.inflight_sqes -= 1; break;  // Results are advisory.
        case Op::close: on_close(conn); return;             // The slot may be free now.
        case Op::accept:
        case Op::wake:
        case Op::handler_connect:
        case Op::handler_send:
        case Op::handler_recv:
        case Op::handler_cancel:
        case Op::handler_close:
        case Op::handler_timeout: RW_UNREACHABLE();
    }
    conn_maybe_finish_close(conn);
}

void Shard::on_shard_cqe(Op op, const io_uring_cqe& cqe) {
    RW_ASSERT(shard_ops_inflight_ > 0);
    if (op == Op::accept) {
        on_accept(cqe);
        return;
    }
    shard_ops_inflight_ -= 1;  // The eventfd read is single-shot.
    if (shared_.is_stopping.load(std::memory_order_acquire)) {
        if (!is_draining_) {
            drain_begin();
        }
        return;
    }
    submit_wake_read();
}

void Shard::on_accept(const io_uring_cqe& cqe) {
    if ((cqe.flags & IORING_CQE_F_MORE) == 0) {
        is_accept_armed_ = false;
        shard_ops_inflight_ -= 1;
        if (is_draining_) {
            // The listener stops here: later connects are refused by the kernel once
            // every shard has closed its socket.
            ::close(listen_fd_);
            listen_fd_ = -1;
        } else {
            submit_accept();
        }
    }
    if (cqe.res < 0) {
        if (cqe.res != -ECANCELED && cqe.res != -EINVAL) {
            RW_LOG_WARN("event=accept_failed shard=%u error=\"%s\"", index_,
                        std::strerror(-cqe.res));
        }
        return;
    }
    if (is_draining_) {
        ::close(cqe.res);
        return;
    }
    conn_open(cqe.res);
}

void Shard::on_recv(Conn& conn, const io_uring_cqe& cqe) {
    if ((cqe.flags & IORING_CQE_F_MORE) == 0) {
        conn.is_recv_armed = false;  // The multishot recv has ended.
        conn.is_recv_cancel_pending = false;
        conn.inflight_sqes -= 1;
    }
    if (cqe.res < 0) {
        on_recv_error(conn, -cqe.res);
        return;
    }
    if (cqe.res == 0) {
        conn.is_peer_closed = true;
        if (conn.state == ConnState::reading) {
            conn_process_input(conn);  // Answers complete requests already received.
        } else if (conn.state == ConnState::lingering) {
            conn_close(conn);
        } else if (conn.state == ConnState::handling && conn.is_handler_owned &&
                   (conn.response_phase == ResponsePhase::none ||
                    conn.response_phase == ResponsePhase::streaming)) {
            // The client closed while its request waits on an upstream: it has gone, as
            // nginx (proxy_ignore_client_abort off) and Go's net/http judge it too. The
            // handler stops the upstream now instead of at the next byte it would relay,
            // which may be minutes away while a reasoning model thinks. A response already
            // queued whole (or ending) still goes out to a half-closed client, and so do
            // the answers the core gives itself.
            conn_close(conn);
        }
        return;
    }
    RW_ASSERT((cqe.flags & IORING_CQE_F_BUFFER) != 0);
    const auto bid = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
    const auto length_bytes = static_cast<uint32_t>(cqe.res);
    buf_ring_.take(bid, length_bytes);
    if (conn.state == ConnState::lingering || conn.state == ConnState::closing) {
        conn.linger_bytes += length_bytes;
        buf_ring_.give_back(bid);  // Discarded: nothing more is read from this client.
        if (conn.state == ConnState::lingering && conn.linger_bytes > linger_bytes_max) {
            conn_close(conn);
        }
        return;
    }
    if (conn.pending_count > 0) {
        // Small pieces (a client writing byte by byte) are appended to the last parked
        // buffer while it has room, so a trickle cannot use up the pending slots.
        PendingBuf& last =
            conn.pending[(conn.pending_head + conn.pending_count - 1) % conn_pending_bufs_max];
        if (last.length_bytes + length_bytes <= buf_ring_.buf_bytes() &&
            length_bytes <= pending_merge_bytes_max) {
            std::memcpy(buf_ring_.data(last.bid) + last.length_bytes, buf_ring_.data(bid),
                        length_bytes);
            last.length_bytes += length_bytes;
            buf_ring_.give_back(bid);
            if (conn.deadline == Deadline::body) {
                conn_set_deadline(conn, Deadline::body, config_.body_timeout_ms);
            }
            if (conn.state == ConnState::reading) {
                conn_process_input(conn);
            }
            return;
        }
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
    if (conn.pending_count >= conn_pending_bufs_pause && conn.is_recv_armed &&
        !conn.is_recv_cancel_pending) {
        conn.is_recv_cancel_pending = true;
        submit_cancel_recv(conn);
    }
    if (conn.deadline == Deadline::body) {
        conn_set_deadline(conn, Deadline::body, config_.body_timeout_ms);  // Idle timer.
    }
    if (conn.state == ConnState::reading) {
        conn_process_input(conn);
    }
}

[[gnu::cold]] void Shard::on_recv_error(Conn& conn, int error) {
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

// A send completed: retire the segments it covered (giving lent buffers back), keep
// the rest of a partially sent segment, and send what is queued next.
void Shard::on_send(Conn& conn, const io_uring_cqe& cqe) {
    RW_ASSERT(conn.is_send_inflight);
    conn.inflight_sqes -= 1;
    conn.is_send_inflight = false;
    const uint8_t covered = conn.segment_inflight_count;
    conn.segment_inflight_count = 0;
    if (conn.state == ConnState::closing) {
        conn_segments_drop(conn);  // Nothing references the lent buffers any more.
        return;
    }
    RW_ASSERT(conn.state == ConnState::handling);
    if (cqe.res <= 0) {
        conn_close(conn);  // EPIPE, ECONNRESET, ECANCELED by the send deadline.
        return;
    }
    uint32_t sent_bytes = static_cast<uint32_t>(cqe.res);
    conn.response_bytes_sent += sent_bytes;
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
            sent_bytes = 0;
            break;
        }
        sent_bytes -= segment.length_bytes;
        if (segment.bid != no_bid) {
            buf_ring_.give_back(segment.bid);  // Lent by the handler; its bytes are out.
        }
        conn.segment_head = static_cast<uint8_t>((conn.segment_head + 1) % conn_send_segments_max);
        conn.segment_count -= 1;
    }
    RW_ASSERT(sent_bytes == 0);
    if (conn.segment_count > 0) {
        submit_send(conn);
    } else if (conn.response_phase == ResponsePhase::complete) {
        conn_response_sent(conn);
        return;
    } else if (conn.response_phase == ResponsePhase::aborting) {
        conn_close(conn);
        return;
    } else {
        conn_set_deadline(conn, Deadline::none, 0);  // Streaming: the handler times upstream.
    }
    if (conn.is_handler_owned && handler_.on_client_writable != nullptr) {
        handler_.on_client_writable(handler_.context, conn);
    }
}

void Shard::on_close(Conn& conn) {
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
    RW_ASSERT(conns_open_count_ > 0);
    conns_open_count_ -= 1;
    metrics_.connections_active.set(conns_open_count_);
}

// ---------------------------------------------------------------------------------------
// Connection state machine.

void Shard::conn_open(int fd) {
    metrics_.connections_accepted.add();
    if (free_slot_count_ == 0) {
        metrics_.connections_refused.add();
        ::close(fd);  // At RINGWAY_MAX_CONNECTIONS: refuse at once rather than queue.
        return;
    }
    const uint32_t slot = free_slots_[--free_slot_count_];
    if (slot >= slots_high_water_) {
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
    conns_open_count_ += 1;
    metrics_.connections_active.set(conns_open_count_);
    conn_start_request(conn);
    // A new connection gets the header deadline at once: one that never sends a byte
    // must not hold a slot for the keep-alive time (nginx client_header_timeout).
    conn_set_deadline(conn, Deadline::header, config_.header_timeout_ms);
    submit_recv(conn);
}

void Shard::conn_start_request(Conn& conn) {
    RW_ASSERT(conn.arena.is_empty());
    RW_ASSERT(conn.segment_count == 0);
    RW_ASSERT(!conn.is_handler_owned);
    conn.state = ConnState::reading;
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
void Shard::conn_process_input(Conn& conn) {
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
            case ParseEvent::head_complete: {
                const ParsedRequest& request = conn.parser.request();
                const bool has_body = request.is_chunked ||
                                      (request.has_content_length && request.content_length > 0);
                if (has_body && request.expects_continue && conn.pending_count == 0) {
                    submit_send_continue(conn);
                }
                conn_set_deadline(conn, Deadline::body, config_.body_timeout_ms);
                break;
            }
            case ParseEvent::message_complete: conn_request_complete(conn); break;
            case ParseEvent::error: conn_respond_parse_error(conn, result.error); return;
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

void Shard::conn_request_complete(Conn& conn) {
    conn.state = ConnState::handling;
    conn_set_deadline(conn, Deadline::none, 0);
    conn_dispatch(conn);
}

void Shard::conn_dispatch(Conn& conn) {
    RW_ASSERT(conn.state == ConnState::handling);
    const ParsedRequest& request = conn.parser.request();
    conn.requests_count += 1;
    const bool is_get = request.method == Method::get || request.method == Method::head;
    const bool is_head = request.method == Method::head;
    const std::string_view path = request.path;
    if (path == "/healthz" || path == "/readyz" || path == "/metrics") {
        if (!is_get) {
            respond_error(conn, 405, "method_not_allowed",
                          "Only GET and HEAD are allowed on this path.");
            return;
        }
        if (path == "/healthz") {
            conn_respond(conn, 200, "application/json", json_ok, is_head, {});
        } else if (path == "/readyz") {
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
        } else {
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
        return;
    }
    if (handler_.on_request != nullptr) {
        handler_.on_request(handler_.context, conn);
        return;
    }
    respond_unknown_url(conn);
}

// Connection: close when this is the last response the connection will carry. A client
// that half-closed after pipelining still gets every request it sent answered.
bool Shard::conn_response_is_close(const Conn& conn) const {
    return conn.is_error_response || is_draining_ ||
           (conn.is_peer_closed && conn.pending_count == 0) || !conn.parser.request().keep_alive;
}

void Shard::conn_respond(Conn& conn, uint16_t status, std::string_view content_type,
                         std::string_view body, bool is_head_only, std::string_view extra_headers) {
    RW_ASSERT(conn.state == ConnState::handling);
    RW_ASSERT(conn.response_phase == ResponsePhase::none);
    const bool is_close = conn_response_is_close(conn);
    const uint32_t capacity =
        response_head_bytes_max + static_cast<uint32_t>(extra_headers.size() + body.size());
    auto* out = static_cast<char*>(conn.arena.alloc(capacity, 1));
    if (out == nullptr) {
        conn_close(conn);  // Not even room for an answer: the pool is exhausted.
        return;
    }
    // An HTTP/1.0 client keeps the connection only when told so explicitly.
    const bool is_http10_keepalive = !is_close && conn.parser.request().version_minor == 0;
    const std::string_view keepalive_line = is_http10_keepalive ? "Connection: keep-alive\r\n" : "";
    const uint32_t length = write_response(out, capacity,
                                           {status,
                                            content_type,
                                            body,
                                            is_close,
                                            is_head_only,
                                            extra_headers,
                                            {date_line_, date_line_bytes},
                                            keepalive_line});
    RW_ASSERT(length > 0);
    conn.is_close_after_send = is_close;
    conn.response_status = status;
    conn.response_phase = ResponsePhase::complete;
    metrics_.requests_by_class[status / 100 - 1].add();
    const bool is_queued = conn_queue(conn, out, length, no_bid);
    RW_ASSERT(is_queued);  // The queue is empty before the first response bytes.
    conn_flush(conn);
}

void Shard::respond_unknown_url(Conn& conn) {
    const ParsedRequest& request = conn.parser.request();
    const std::string_view path = request.path;
    char message[128];
    const int length = std::snprintf(
        message, sizeof(message), "Invalid URL (%.*s %.*s)",
        int(request.method_text.size() > 16 ? 16 : request.method_text.size()),
        request.method_text.data(), int(path.size() > 80 ? 80 : path.size()), path.data());
    respond_error(conn, 404, "unknown_url",
                  {message, static_cast<size_t>(length > 0 ? length : 0)});
}

void Shard::respond(Conn& conn, uint16_t status, std::string_view content_type,
                    std::string_view body, std::string_view extra_headers) {
    conn_respond(conn, status, content_type, body, false, extra_headers);
}

void Shard::respond_error(Conn& conn, uint16_t status, std::string_view code,
                          std::string_view message) {
    conn.is_error_response = true;  // Every error closes the connection afterwards.
    conn_pending_drop(conn);        // A pipelined request after an error is never processed.
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
    // A response to HEAD carries no body, errors included [RFC 9110 9.3.2].
    const bool is_head = conn.parser.request().method == Method::head;
    conn_respond(conn, status, "application/json", {body, length}, is_head, {});
}

// --- Streaming responses (chunked transfer coding) for the handler. ---

bool Shard::stream_begin(Conn& conn, uint16_t status, std::string_view content_type,
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
    // whole bodies, so the head is written by hand here.
    int length = std::snprintf(
        out, capacity,
        "HTTP/1.1 %u %.*s\r\nServer: ringway\r\n%s"
        "Content-Type: %.*s\r\n%s%s%.*s\r\n",
        status, int(status_reason(status).size()), status_reason(status).data(), date_line_,
        int(content_type.size()), content_type.data(),
        conn.is_stream_raw ? "" : "Transfer-Encoding: chunked\r\n",
        is_close ? "Connection: close\r\n" : "", int(extra_headers.size()), extra_headers.data());
    RW_ASSERT(length > 0);
    RW_ASSERT(static_cast<uint32_t>(length) < capacity);
    conn.is_close_after_send = is_close;
    conn.response_status = status;
    conn.response_phase = ResponsePhase::streaming;
    metrics_.requests_by_class[status / 100 - 1].add();
    const bool is_queued = conn_queue(conn, out, static_cast<uint32_t>(length), no_bid);
    RW_ASSERT(is_queued);
    conn_flush(conn);
    return true;
}

bool Shard::stream_piece(Conn& conn, std::string_view piece, uint16_t bid) {
    RW_ASSERT(conn.response_phase == ResponsePhase::streaming);
    if (piece.empty()) {
        return true;  // A zero-length chunk would end the body.
    }
    if (conn.is_stream_raw) {
        return conn_queue(conn, piece.data(), static_cast<uint32_t>(piece.size()), bid) &&
               (conn_flush(conn), true);
    }
    if (send_segments_free(conn) < 3) {
        return false;
    }
    // "<hex size>\r\n" for every relayed piece: to_chars, not snprintf (hot path).
    char size_line[segment_inline_bytes_max];
    const auto [size_end, size_error] =
        std::to_chars(size_line, size_line + sizeof(size_line) - 2, piece.size(), 16);
    RW_ASSERT(size_error == std::errc());
    size_end[0] = '\r';
    size_end[1] = '\n';
    const auto size_length = static_cast<int>(size_end + 2 - size_line);
    const bool is_queued =
        conn_queue_inline(conn, size_line, static_cast<uint32_t>(size_length)) &&
        conn_queue(conn, piece.data(), static_cast<uint32_t>(piece.size()), bid) &&
        conn_queue(conn, "\r\n", 2, no_bid);
    RW_ASSERT(is_queued);  // Room for three was checked above.
    conn_flush(conn);
    return true;
}

void Shard::stream_end(Conn& conn, bool is_complete) {
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

bool Shard::conn_queue(Conn& conn, const char* data, uint32_t length_bytes, uint16_t bid) {
    if (conn.segment_count == conn_send_segments_max) {
        return false;
    }
    SendSegment& segment =
        conn.segments[(conn.segment_head + conn.segment_count) % conn_send_segments_max];
    segment.data = data;
    segment.length_bytes = length_bytes;
    segment.bid = bid;
    segment.inline_bytes = 0;
    conn.segment_count += 1;
    conn.response_bytes_queued += length_bytes;
    return true;
}

bool Shard::conn_queue_inline(Conn& conn, const char* text, uint32_t length_bytes) {
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
void Shard::conn_flush(Conn& conn) {
    if (!conn.is_send_inflight && conn.segment_count > 0 && conn.state == ConnState::handling) {
        submit_send(conn);
    }
}

void Shard::conn_segments_drop(Conn& conn) {
    RW_ASSERT(!conn.is_send_inflight);
    while (conn.segment_count > 0) {
        const SendSegment& segment = conn.segments[conn.segment_head];
        if (segment.bid != no_bid) {
            buf_ring_.give_back(segment.bid);
        }
        conn.segment_head = static_cast<uint8_t>((conn.segment_head + 1) % conn_send_segments_max);
        conn.segment_count -= 1;
    }
    conn.segment_head = 0;
}

void Shard::handler_take(Conn& conn, void* request) {
    RW_ASSERT(conn.state == ConnState::handling);
    RW_ASSERT(!conn.is_handler_owned);
    conn.is_handler_owned = true;
    conn.handler_request = request;
}

void Shard::handler_release(Conn& conn) {
    RW_ASSERT(conn.is_handler_owned);
    conn.is_handler_owned = false;
    conn.handler_request = nullptr;
    if (conn.state == ConnState::closing) {
        conn_maybe_finish_close(conn);
    } else if (conn.state == ConnState::handling &&
               conn.response_phase == ResponsePhase::complete && conn.segment_count == 0 &&
               !conn.is_send_inflight) {
        conn_response_sent(conn);  // The response went out before the handler let go.
    }
}

void Shard::conn_respond_parse_error(Conn& conn, ParseError error) {
    RW_ASSERT(error != ParseError::none);
    metrics_.parse_errors[static_cast<uint32_t>(error)].add();
    respond_error(conn, parse_error_status(error), parse_error_code(error),
                  parse_error_message(error));
}

void Shard::conn_response_sent(Conn& conn) {
    RW_ASSERT(conn.segment_count == 0);
    if (conn.is_handler_owned) {
        return;  // Upstream work may still read the arena; handler_release finishes.
    }
    if (conn.is_close_after_send || is_draining_) {
        if (conn.is_peer_closed) {  // Nothing more can arrive: no need to linger.
            conn_close(conn);
        } else {
            conn_linger(conn);
        }
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

// Half-close and discard input for a bounded time, so the client reads our last response
// rather than an RST caused by unread data (nginx lingering_close, RULES §1).
void Shard::conn_linger(Conn& conn) {
    RW_ASSERT(!conn.is_handler_owned);
    conn_pending_drop(conn);
    conn.arena.release();  // The response is out: a lingering client holds no memory.
    conn.state = ConnState::lingering;
    conn.linger_bytes = 0;
    submit_shutdown(conn);
    conn_set_deadline(conn, Deadline::linger, linger_ms_max);
    conn_maybe_rearm_recv(conn);
}

void Shard::conn_close(Conn& conn) {
    if (conn.state == ConnState::closing) {
        return;  // A deadline may race an error CQE.
    }
    RW_ASSERT(conn.state != ConnState::free);
    conn.state = ConnState::closing;
    conn.deadline = Deadline::none;
    conn_pending_drop(conn);
    if (!conn.is_send_inflight) {
        conn_segments_drop(conn);  // Otherwise dropped when the send's CQE comes back.
    }
    if (conn.inflight_sqes > 0) {
        submit_cancel_all(conn);  // Recv, sends: their CQEs still arrive and count down.
    }
    if (conn.is_handler_owned && handler_.on_client_gone != nullptr) {
        handler_.on_client_gone(handler_.context, conn);  // It releases when its I/O is done.
    }
    conn_maybe_finish_close(conn);
}

void Shard::conn_maybe_finish_close(Conn& conn) {
    if (conn.state == ConnState::closing && conn.inflight_sqes == 0 && !conn.is_handler_owned &&
        !conn.is_close_submitted) {
        submit_close(conn);
    }
}

void Shard::conn_pending_drop(Conn& conn) {
    while (conn.pending_count > 0) {
        buf_ring_.give_back(conn.pending[conn.pending_head].bid);
        conn.pending_head = static_cast<uint8_t>((conn.pending_head + 1) % conn_pending_bufs_max);
        conn.pending_count -= 1;
    }
    conn.pending_head = 0;
}

void Shard::conn_maybe_rearm_recv(Conn& conn) {
    const bool wants_input = conn.state == ConnState::reading ||
                             conn.state == ConnState::handling ||
                             conn.state == ConnState::lingering;
    if (wants_input && !conn.is_recv_armed && !conn.is_peer_closed && !conn.is_rearm_listed &&
        conn.pending_count < conn_pending_bufs_pause) {
        submit_recv(conn);
    }
}

void Shard::conn_set_deadline(Conn& conn, Deadline deadline, uint32_t timeout_ms) {
    conn.deadline = deadline;
    conn.deadline_ms = deadline == Deadline::none ? 0 : now_ms_ + timeout_ms;
}

void Shard::conn_on_deadline(Conn& conn) {
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
            respond_error(conn, 408, "request_timeout", "The request body stopped arriving.");
            return;
        case Deadline::send:
            metrics_.timeouts[static_cast<uint32_t>(TimeoutPhase::send)].add();
            conn_close(conn);  // The client stopped reading; cancel_all ends the send.
            return;
        case Deadline::linger: conn_close(conn); return;
    }
}

// ---------------------------------------------------------------------------------------
// Shutdown: stop accepting, close idle connections, let requests in progress finish with
// Connection: close, force-close whatever is left at the deadline.

void Shard::drain_begin() {
    RW_ASSERT(!is_draining_);
    is_draining_ = true;
    drain_deadline_ms_ = now_ms_ + config_.shutdown_timeout_ms;
    if (is_accept_armed_) {
        io_uring_sqe* sqe = sqe_get();
        io_uring_prep_cancel64(sqe, tag_pack({Op::accept, 0, 0}), 0);
        io_uring_sqe_set_data64(sqe, 0);  // Its own CQE is ignored: user_data 0.
    }
    for (uint32_t i = 0; i < slots_high_water_; i++) {
        Conn& conn = conns_[i];
        const bool is_idle = conn.state == ConnState::reading && !conn.parser.in_message() &&
                             conn.pending_count == 0;
        if (is_idle) {
            conn_close(conn);
        }
    }
}

bool Shard::is_drained() const {
    return conns_open_count_ == 0 && !is_accept_armed_;
}

}  // namespace rw
