// core/shard.cc — the shard loop: ring setup, one submit-and-wait per turn, the one
// completion dispatch of the core's operations, the turn end and the drain at shutdown.
// Client connections are core/conn.cc's; the handler's operations go to the handler.
// Runs on the shard's own pinned thread only. Contracts relied on, with their sources:
// - one io_uring_submit_and_wait_timeout per turn submits everything queued and waits
//   with the timeout passed as an argument, not an SQE [io_uring_enter(2), EXT_ARG];
// - a multishot CQE without IORING_CQE_F_MORE has terminated and must be re-armed
//   [io_uring_prep_recv_multishot(3), io_uring_prep_multishot_accept(3)];
// - closing an fd does not cancel io_uring requests on it (they hold a file reference), so
//   a connection is cancelled first and closed once no request is left
//   [io_uring_prep_cancel_fd(3)].
#include "core/shard.h"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/conn.h"
#include "core/http_write.h"
#include "core/log.h"

namespace rw {
namespace {

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

uint64_t small_chunks_max(const Config& config) {
    return uint64_t(config.max_connections) * 8;
}

uint64_t large_bytes_max(const Config& config) {
    // Room for two maximal chunked bodies growing at once and two maximal whole answers
    // (each the size class of RINGWAY_MAX_RESPONSE_BYTES plus padding: one while another
    // grows into it); the cap bounds memory, steady loads stay far below it and never grow
    // the pool. Past it an answer is refused with 503 and Retry-After.
    const uint64_t per_body = 4 * (config.max_body_bytes + large_block_bytes_min);
    const uint64_t per_answer = std::bit_ceil(
        std::max<uint64_t>(config.max_response_bytes + body_padding_bytes, large_block_bytes_min));
    const uint64_t total = per_body * 2 + per_answer * 2;
    return total > (64ull << 20) ? total : (64ull << 20);
}

}  // namespace

Shard::Shard(ServerShared& shared, uint32_t index, int listen_fd)
    : shared_(shared),
      config_(*shared.config),
      index_(index),
      listen_fd_(listen_fd),
      chunk_pool_(small_chunks_max(config_), large_bytes_max(config_)) {
    RW_ASSERT(index < shards_max);
}

Shard::~Shard() {
    delete clients_;  // Releases every slot's arena into chunk_pool_, which outlives it.
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
    clients_ = new ClientConns(*this, shared_, metrics_, buf_ring_, chunk_pool_);
    clients_->set_handler(handler_);
    if (!clients_->setup(error)) {
        return false;
    }
    metrics_.connections_active.set(0);
    shared_.metrics[index_] = &metrics_;
    return true;
}

void Shard::set_handler(const RequestHandler& handler) {
    handler_ = handler;
    if (clients_ != nullptr) {
        clients_->set_handler(handler);
    }
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
    if (buf_ring_.in_app_count() < buf_ring_.buf_count()) {
        clients_->rearm_listed();
    }
    // Deadlines are checked by a sweep over the used slots every timer_sweep_ms instead
    // of one timeout SQE per connection: no SQE or cancellation per request, and the cost
    // (one compare per slot, tens of times a second) is bounded by RINGWAY_MAX_CONNECTIONS.
    if (now_ms_ + clock_slack_ms_ >= next_sweep_ms_) {
        clients_->sweep(now_ms_, is_draining_ && now_ms_ >= drain_deadline_ms_);
        next_sweep_ms_ = now_ms_ + timer_sweep_ms;
        // Memory a burst grew and left idle for a whole period goes back to the heap
        // (abusive clients must not pin it for the process's life); a no-op until then.
        chunk_pool_.trim(now_ms_, config_.pool_trim_ms, pool_small_chunks_floor);
    }
    metrics_.loop_iterations.add();
    metrics_.arena_chunks_in_use.set(chunk_pool_.stats().small_in_use);
    metrics_.pool_bytes_in_use.set(chunk_pool_.bytes_in_use());
    metrics_.pool_bytes_cached.set(chunk_pool_.bytes_cached());
    metrics_.pool_bytes_trimmed.set(chunk_pool_.stats().trimmed_bytes);
}

// ---------------------------------------------------------------------------------------
// Submission of the shard's own operations (no connection slot).

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

// ---------------------------------------------------------------------------------------
// Completion dispatch: the core's one switch on Op. Shard operations carry no slot; a
// connection's carry its slot and generation; the handler's go to the handler, which
// owns the meaning of their tags.

void Shard::on_cqe(const io_uring_cqe& cqe) {
    if (cqe.user_data == 0) {
        return;  // A cancel whose own result nobody needs (the accept cancel at drain).
    }
    const OpTag tag = tag_unpack(cqe.user_data);
    switch (tag.op) {
        case Op::accept: on_accept(cqe); break;
        case Op::wake: on_wake(); break;
        case Op::recv: clients_->on_recv(clients_->at(tag.slot, tag.gen), cqe); break;
        case Op::send: clients_->on_send(clients_->at(tag.slot, tag.gen), cqe); break;
        case Op::send_continue:
            clients_->on_send_continue(clients_->at(tag.slot, tag.gen), cqe.res);
            break;
        case Op::cancel:
        case Op::shutdown: clients_->on_advisory(clients_->at(tag.slot, tag.gen)); break;
        case Op::close: clients_->on_close(clients_->at(tag.slot, tag.gen)); break;
        case Op::handler_connect:
        case Op::handler_send:
        case Op::handler_recv:
        case Op::handler_cancel:
        case Op::handler_close: handler_.on_cqe(handler_.context, cqe); break;
    }
}

void Shard::on_wake() {
    RW_ASSERT(shard_ops_inflight_ > 0);
    shard_ops_inflight_ -= 1;  // The eventfd read is single-shot.
    if (shared_.is_stopping.load(std::memory_order_acquire)) {
        if (!is_draining_) {
            drain_begin();
        }
        return;
    }
    submit_wake_read();
}

// A reload: the new process accepts on the same sockets. An accept waits exclusively (one
// waiter woken per connection), so a connection whose wakeup went to this shard's accept
// just before its cancel can sit in the queue until the next connection wakes another
// waiter. One connect of our own (closed at once) is that next connection.
void Shard::listener_nudge() {
    const ListenAddress& listen = config_.listen;
    const int fd = ::socket(listen.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return;
    }
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&listen.address), listen.address_bytes) !=
        0) {
        RW_LOG_WARN("event=listener_nudge_failed shard=%u error=\"%s\"", index_,
                    std::strerror(errno));
    }
    ::close(fd);
}

void Shard::on_accept(const io_uring_cqe& cqe) {
    RW_ASSERT(shard_ops_inflight_ > 0);
    if ((cqe.flags & IORING_CQE_F_MORE) == 0) {
        is_accept_armed_ = false;
        shard_ops_inflight_ -= 1;
        if (is_draining_) {
            // The listener stops here: later connects are refused by the kernel once
            // every shard has closed its socket.
            if (shared_.is_handing_over.load(std::memory_order_acquire)) {
                listener_nudge();
            }
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
    if (is_draining_ && !shared_.is_handing_over.load(std::memory_order_relaxed)) {
        ::close(cqe.res);
        return;
    }
    clients_->open(cqe.res);  // Under a reload, served once: its client expects an answer.
}

// ---------------------------------------------------------------------------------------
// Shutdown: stop accepting, close idle connections, let requests in progress finish with
// Connection: close, force-close whatever is left at the deadline (the sweep).

void Shard::drain_begin() {
    RW_ASSERT(!is_draining_);
    is_draining_ = true;
    drain_deadline_ms_ = now_ms_ + config_.shutdown_timeout_ms;
    if (is_accept_armed_) {
        io_uring_sqe* sqe = sqe_get();
        io_uring_prep_cancel64(sqe, tag_pack({Op::accept, 0, 0}), 0);
        io_uring_sqe_set_data64(sqe, 0);  // Its own CQE is ignored: user_data 0.
    }
    clients_->drain_begin();
}

bool Shard::is_drained() const {
    return clients_->open_count() == 0 && !is_accept_armed_;
}

}  // namespace rw
