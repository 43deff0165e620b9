// proxy/upstream_pool.cc — upstream connection slots, keep-alive lists and their SQEs
// (see upstream_pool.h). Shard thread only. Contracts relied on:
// - closing an fd does not cancel io_uring requests on it, so pending ones are cancelled
//   first and the fd closed once none is left [io_uring_prep_cancel_fd(3)];
// - a buffer-select recv that finds no buffer fails with -ENOBUFS and must be re-armed;
// - a multishot recv posts CQEs with IORING_CQE_F_MORE until its last one, which has none;
//   its byte cap (sqe->optlen, Linux 6.17) ends it once that many bytes were read, and an
//   older kernel refuses the cap with -EINVAL [io_uring_prep_recv_multishot(3)];
// - with IORING_SETUP_DEFER_TASKRUN the kernel reads for a multishot only while the shard
//   waits in io_uring_enter, after that call's SQEs (a cancel among them) were issued.
#include "proxy/upstream_pool.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/log.h"
#include "core/op.h"
#include "proxy/request.h"

namespace rw {

UpstreamPool::UpstreamPool(Shard& shard, uint32_t slot_count, bool is_multishot,
                           Counter& recvs_armed)
    : shard_(shard),
      slot_count_(slot_count),
      slots_(static_cast<UpstreamConn*>(std::aligned_alloc(
          alignof(UpstreamConn), (sizeof(UpstreamConn) * slot_count + alignof(UpstreamConn) - 1) /
                                     alignof(UpstreamConn) * alignof(UpstreamConn)))),
      free_(new uint32_t[slot_count]),
      is_multishot_(is_multishot),
      recvs_armed_(recvs_armed),
      rearm_(new uint32_t[slot_count]) {
    RW_ASSERT(slots_ != nullptr);
    for (uint32_t i = 0; i < slot_count; i++) {
        free_[slot_count - 1 - i] = i;  // Pop order: slot 0 first.
    }
    free_count_ = slot_count;
}

UpstreamPool::~UpstreamPool() {
    for (uint32_t i = 0; i < high_water_; i++) {
        slots_[i].~UpstreamConn();
    }
    std::free(slots_);
}

namespace {

// FNV-1a over what a connection was opened for: the checked address and, for https, the
// name its certificate was verified against.
uint64_t endpoint_tag(const Candidate& candidate) {
    uint64_t hash = 1469598103934665603ull;
    const auto mix = [&hash](const void* bytes, size_t length) {
        const auto* cursor = static_cast<const unsigned char*>(bytes);
        for (size_t index = 0; index < length; index++) {
            hash = (hash ^ cursor[index]) * 1099511628211ull;
        }
    };
    mix(&candidate.address, candidate.address_bytes);
    mix(&candidate.is_tls, sizeof(candidate.is_tls));
    mix(candidate.tls_host.data(), candidate.tls_host.size());
    return hash;
}

}  // namespace

UpstreamConn* UpstreamPool::take_idle(const Candidate& candidate) {
    const int64_t channel_id = candidate.channel_id;
    IdleList& list = idle_.at(channel_id);
    const uint64_t tag = endpoint_tag(candidate);
    while (list.head != UINT32_MAX && slots_[list.head].channel_id == channel_id &&
           slots_[list.head].endpoint_tag != tag) {
        close(slots_[list.head]);  // Unlinks it: the loop ends within list.count steps.
    }
    if (list.head == UINT32_MAX) {
        return nullptr;
    }
    UpstreamConn& upstream = slots_[list.head];
    RW_ASSERT(upstream.state == UpstreamState::idle);
    if (upstream.channel_id != channel_id) {
        return nullptr;  // A list shared past channel_states_max channels: not this one's.
    }
    list.head = upstream.next_idle;
    list.count -= 1;
    upstream.next_idle = UINT32_MAX;
    upstream.is_reused = true;
    return &upstream;
}

UpstreamConn* UpstreamPool::open(const Candidate& candidate) {
    if (free_count_ == 0) {
        return nullptr;
    }
    const int fd = ::socket(candidate.address.any.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        RW_LOG_WARN("event=upstream_socket_failed error=\"%s\"", std::strerror(errno));
        return nullptr;
    }
    const int one = 1;
    // Small request heads and SSE reads: no Nagle delay on either side.
    [[maybe_unused]] const int rc = ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    const uint32_t slot = free_[--free_count_];
    if (slot >= high_water_) {
        RW_ASSERT(slot == high_water_);  // Free slots pop lowest first.
        UpstreamConn* constructed = new (&slots_[slot]) UpstreamConn();
        constructed->slot = slot;
        high_water_ = slot + 1;
    }
    UpstreamConn& upstream = slots_[slot];
    RW_ASSERT(upstream.state == UpstreamState::free);
    RW_ASSERT(upstream.inflight_sqes == 0);
    upstream.fd = fd;
    upstream.channel_id = candidate.channel_id;
    upstream.endpoint_tag = endpoint_tag(candidate);
    upstream.is_reused = false;
    upstream.is_recv_inflight = false;
    upstream.is_recv_multishot = false;
    upstream.is_recv_cancel_pending = false;
    upstream.is_end_held = false;
    upstream.held_count = 0;
    upstream.is_send_inflight = false;
    upstream.is_close_submitted = false;
    upstream.is_rearm_listed = false;
    upstream.next_idle = UINT32_MAX;
    upstream.request = nullptr;
    upstream.closing_for = nullptr;
    upstream.is_tls = candidate.is_tls;
    upstream.is_handshake_done = false;
    return &upstream;
}

bool UpstreamPool::evict_oldest_idle() {
    // A scan of the used slots: only when the table is full, so at most once per refused
    // open, and cheaper than keeping a second list ordered across channels.
    UpstreamConn* oldest = nullptr;
    for (uint32_t i = 0; i < high_water_; i++) {
        UpstreamConn& upstream = slots_[i];
        if (upstream.state == UpstreamState::idle &&
            (oldest == nullptr || upstream.idle_since_ms < oldest->idle_since_ms)) {
            oldest = &upstream;
        }
    }
    if (oldest == nullptr) {
        return false;
    }
    close(*oldest);
    return true;
}

void UpstreamPool::park(UpstreamConn& upstream, uint64_t now_ms, uint32_t keepalive_ms) {
    RW_ASSERT(upstream.request == nullptr);
    RW_ASSERT(!upstream.is_send_inflight);
    RW_ASSERT(upstream.held_count == 0 && !upstream.is_end_held);
    IdleList& list = idle_.at(upstream.channel_id);
    upstream.state = UpstreamState::idle;
    upstream.idle_since_ms = now_ms;
    upstream.deadline_ms = now_ms + keepalive_ms;
    upstream.next_idle = list.head;
    list.head = upstream.slot;
    list.count += 1;
    if (!upstream.is_recv_inflight) {
        submit_recv(upstream, true);  // The answer was read to its last byte.
    }
}

void UpstreamPool::idle_unlink(UpstreamConn& upstream) {
    IdleList& list = idle_.at(upstream.channel_id);
    uint32_t* link = &list.head;
    while (*link != UINT32_MAX && *link != upstream.slot) {
        link = &slots_[*link].next_idle;
    }
    if (*link == upstream.slot) {
        *link = upstream.next_idle;
        list.count -= 1;
    }
    upstream.next_idle = UINT32_MAX;
}

void UpstreamPool::close(UpstreamConn& upstream) {
    if (upstream.state == UpstreamState::closing || upstream.state == UpstreamState::free) {
        return;
    }
    if (upstream.state == UpstreamState::idle) {
        idle_unlink(upstream);
    }
    if (upstream.request != nullptr) {
        ProxyRequest& request = *upstream.request;
        RW_ASSERT(request.upstream_slot == upstream.slot);
        request.upstream_slot = UINT32_MAX;
        if (upstream.inflight_sqes > 0) {
            request.upstreams_closing += 1;  // Paired with maybe_finish.
            upstream.closing_for = &request;
        }
        upstream.request = nullptr;
    }
    held_give_back(upstream);
    upstream.state = UpstreamState::closing;
    closing_count_ += 1;
    upstream.deadline_ms = 0;
    if (upstream.inflight_sqes > 0) {
        io_uring_sqe* sqe = shard_.sqe_get();
        io_uring_prep_cancel_fd(sqe, upstream.fd, IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(sqe, tag_pack({Op::handler_cancel, upstream.gen, upstream.slot}));
        upstream.inflight_sqes += 1;
        return;
    }
    [[maybe_unused]] ProxyRequest* none = maybe_finish(upstream);
    RW_ASSERT(none == nullptr);
}

ProxyRequest* UpstreamPool::maybe_finish(UpstreamConn& upstream) {
    if (upstream.state != UpstreamState::closing || upstream.inflight_sqes > 0) {
        return nullptr;
    }
    ProxyRequest* request = upstream.closing_for;
    if (request != nullptr) {
        upstream.closing_for = nullptr;
        RW_ASSERT(request->upstreams_closing > 0);
        request->upstreams_closing -= 1;
    }
    if (!upstream.is_close_submitted) {
        io_uring_sqe* sqe = shard_.sqe_get();
        io_uring_prep_close(sqe, upstream.fd);
        io_uring_sqe_set_data64(sqe, tag_pack({Op::handler_close, upstream.gen, upstream.slot}));
        upstream.is_close_submitted = true;
        upstream.inflight_sqes += 1;
    }
    return request;
}

void UpstreamPool::held_give_back(UpstreamConn& upstream) {
    for (uint32_t i = 0; i < upstream.held_count; i++) {
        shard_.buf_ring().give_back(upstream.held[i].bid);
    }
    upstream.held_count = 0;
    upstream.is_end_held = false;
}

UpstreamConn& UpstreamPool::completed(uint32_t slot, uint32_t gen, bool is_final) {
    RW_ASSERT(slot < slot_count_);
    UpstreamConn& upstream = slots_[slot];
    RW_ASSERT((upstream.gen & 0xFFFFFFu) == gen);
    RW_ASSERT(upstream.state != UpstreamState::free);
    RW_ASSERT(upstream.inflight_sqes > 0);
    if (is_final) {
        upstream.inflight_sqes -= 1;
    }
    return upstream;
}

void UpstreamPool::on_closed(UpstreamConn& upstream) {
    RW_ASSERT(upstream.inflight_sqes == 0);
    RW_ASSERT(upstream.closing_for == nullptr);
    upstream.state = UpstreamState::free;
    RW_ASSERT(closing_count_ > 0);
    closing_count_ -= 1;
    upstream.tls.reset();
    upstream.fd = -1;
    upstream.gen = (upstream.gen + 1) & 0xFFFFFFu;
    free_[free_count_++] = upstream.slot;
}

void UpstreamPool::submit_connect(UpstreamConn& upstream, const Candidate& candidate) {
    io_uring_sqe* sqe = shard_.sqe_get();
    // The address lives in the request's arena, which outlives the connect.
    io_uring_prep_connect(sqe, upstream.fd, &candidate.address.any, candidate.address_bytes);
    io_uring_sqe_set_data64(sqe, tag_pack({Op::handler_connect, upstream.gen, upstream.slot}));
    upstream.inflight_sqes += 1;
}

void UpstreamPool::submit_send(UpstreamConn& upstream) {
    RW_ASSERT(!upstream.is_send_inflight);
    std::memset(&upstream.message, 0, sizeof(upstream.message));
    upstream.message.msg_iov = upstream.iov;
    upstream.message.msg_iovlen = upstream.iov[0].iov_len > 0 ? 2 : 1;
    if (upstream.iov[0].iov_len == 0) {
        upstream.message.msg_iov = &upstream.iov[1];
    }
    io_uring_sqe* sqe = shard_.sqe_get();
    // The msghdr and iovecs live in the slot, the bytes in the request's arena: both
    // outlive the send [sendmsg(2)].
    io_uring_prep_sendmsg(sqe, upstream.fd, &upstream.message, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, tag_pack({Op::handler_send, upstream.gen, upstream.slot}));
    upstream.is_send_inflight = true;
    upstream.inflight_sqes += 1;
}

void UpstreamPool::submit_recv(UpstreamConn& upstream, bool is_socket_empty) {
    RW_ASSERT(!upstream.is_recv_inflight);
    RW_ASSERT(upstream.held_count == 0);
    io_uring_sqe* sqe = shard_.sqe_get();
    upstream.is_recv_multishot = is_multishot_ && !upstream.is_tls;
    if (upstream.is_recv_multishot) {
        io_uring_prep_recv_multishot(sqe, upstream.fd, nullptr, 0, 0);
        // The byte cap (the kernel's optlen, liburing 2.3's file_index): the pieces a pause
        // cannot stop in time stay under two buffers (upstream_held_max).
        sqe->file_index = shard_.buf_ring().buf_bytes();
    } else {
        io_uring_prep_recv(sqe, upstream.fd, nullptr, 0, 0);
    }
    sqe->flags |= IOSQE_BUFFER_SELECT;
    if (is_socket_empty) {
        sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    }
    sqe->buf_group = shard_.buf_ring().group_id();
    io_uring_sqe_set_data64(sqe, tag_pack({Op::handler_recv, upstream.gen, upstream.slot}));
    upstream.is_recv_inflight = true;
    upstream.inflight_sqes += 1;
    recvs_armed_.add();
}

void UpstreamPool::cancel_recv(UpstreamConn& upstream) {
    RW_ASSERT(upstream.is_recv_inflight && upstream.is_recv_multishot);
    RW_ASSERT(!upstream.is_recv_cancel_pending);
    io_uring_sqe* sqe = shard_.sqe_get();
    io_uring_prep_cancel64(sqe, tag_pack({Op::handler_recv, upstream.gen, upstream.slot}), 0);
    io_uring_sqe_set_data64(sqe, tag_pack({Op::handler_cancel, upstream.gen, upstream.slot}));
    upstream.is_recv_cancel_pending = true;
    upstream.inflight_sqes += 1;
}

void UpstreamPool::multishot_off() {
    if (is_multishot_) {
        is_multishot_ = false;
        RW_LOG_WARN(
            "event=upstream_multishot_off reason=\"the kernel refused a multishot recv "
            "with a byte cap (Linux 6.17+): upstream reads are single-shot\"");
    }
}

void UpstreamPool::rearm_later(UpstreamConn& upstream) {
    if (!upstream.is_rearm_listed) {
        upstream.is_rearm_listed = true;
        rearm_[rearm_count_++] = upstream.slot;
    }
}

void UpstreamPool::rearm_listed() {
    const uint32_t count = rearm_count_;
    rearm_count_ = 0;
    for (uint32_t i = 0; i < count; i++) {
        UpstreamConn& upstream = slots_[rearm_[i]];
        upstream.is_rearm_listed = false;
        // A paused stream (or one with held pieces) is re-armed by its client's progress.
        const bool is_paused = upstream.request != nullptr &&
                               (upstream.request->is_recv_wanted || upstream.held_count > 0);
        if (upstream.state != UpstreamState::closing && upstream.state != UpstreamState::free &&
            !upstream.is_recv_inflight && !is_paused) {
            submit_recv(upstream);
        }
    }
}

}  // namespace rw
