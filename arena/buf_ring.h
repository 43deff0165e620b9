// arena/buf_ring.h — a shard's provided buffer ring for multishot recv. Every buffer has
// exactly one owner at a time: the kernel (published in the ring, available for recv), the
// app (bytes being parsed or held for a pipelined request), a send (lent to an outgoing
// send until its completion), or the spare stack (given back, not published yet).
// Transitions are asserted in every build: one byte compare catches a double give-back at
// once. Give-backs go onto the spare stack; flush() publishes from its top (the buffers
// given back last, whose pages are resident) only as many as the recvs of recent turns
// used, so the pages a shard touches follow its demand instead of cycling through the
// whole ring (the kernel consumes a ring in order: published all at once, every buffer's
// first page would be touched within a few thousand recvs). The app may take a spare
// buffer itself (take_spare) for bytes it makes. Single-threaded: the owning shard only.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/assert.h"
#include "core/limits.h"

namespace rw {

enum class BufOwner : uint8_t { kernel, app, send, spare };

// No recv buffer: a piece of output in other memory, a recv that delivered none.
constexpr uint16_t no_bid = 0xFFFF;
static_assert(recv_buffers_max <= no_bid);

class BufRing {
public:
    BufRing() = default;
    BufRing(const BufRing&) = delete;
    BufRing& operator=(const BufRing&) = delete;
    ~BufRing();

    // Allocates buf_count buffers of buf_bytes, registers them as group group_id on ring
    // and gives them all to the kernel. Returns 0 or -errno (e.g. -EINVAL on kernels
    // without provided buffer rings: 5.19+) [io_uring_register_buf_ring(3)].
    [[nodiscard]] int init(io_uring* ring, uint16_t group_id, uint16_t buf_count,
                           uint32_t buf_bytes);

    // After a recv CQE with IORING_CQE_F_BUFFER: the kernel hands the buffer to us.
    std::span<std::byte> take(uint16_t bid, uint32_t length_bytes) {
        RW_ASSERT(bid < buf_count_);
        RW_ASSERT(owner_[bid] == BufOwner::kernel);
        RW_ASSERT(length_bytes <= buf_bytes_);
        owner_[bid] = BufOwner::app;
        in_app_count_ += 1;
        published_count_ -= 1;
        taken_count_ += 1;
        return {data(bid), length_bytes};
    }

    // A spare buffer for bytes the app makes itself (decrypted TLS records): owned by the
    // app like a received one (relayed, lent to a send, given back). no_bid when none is
    // spare (every buffer is published or held).
    [[nodiscard]] uint16_t take_spare() {
        if (spare_count_ == 0) {
            return no_bid;
        }
        const uint16_t bid = spare_[--spare_count_];
        RW_ASSERT(owner_[bid] == BufOwner::spare);
        owner_[bid] = BufOwner::app;
        in_app_count_ += 1;
        return bid;
    }

    // Before queueing a send that points into this buffer.
    void lend_to_send(uint16_t bid) {
        RW_ASSERT(bid < buf_count_);
        RW_ASSERT(owner_[bid] == BufOwner::app);
        owner_[bid] = BufOwner::send;
    }

    // A lent buffer's send completed (for send_zc only on the NOTIF CQE), or the send
    // queue holding it was dropped: the pair of lend_to_send.
    void give_back_sent(uint16_t bid) {
        RW_ASSERT(bid < buf_count_);
        RW_ASSERT(owner_[bid] == BufOwner::send);
        give_back(bid);
    }

    // The bytes are no longer needed (parsed and copied, relayed, or sent): onto the spare
    // stack; the kernel sees it once flush() publishes it.
    void give_back(uint16_t bid) {
        RW_ASSERT(bid < buf_count_);
        RW_ASSERT(owner_[bid] == BufOwner::app ||
                  owner_[bid] == BufOwner::send);  // Double give-back.
        owner_[bid] = BufOwner::spare;
        in_app_count_ -= 1;
        spare_[spare_count_++] = bid;
    }

    // Once per loop turn: sets the published target from the buffers the kernel handed out
    // since the last flush (twice the demand, at once when it grows, a 1024th of the way
    // down per flush when it falls; never below the floor) and publishes spare buffers up to it,
    // with one tail update [io_uring_buf_ring_advance(3)].
    void flush();

    std::byte* data(uint16_t bid) const { return base_ + size_t(bid) * buf_bytes_; }
    BufOwner owner(uint16_t bid) const { return owner_[bid]; }
    uint16_t group_id() const { return group_id_; }
    uint32_t buf_bytes() const { return buf_bytes_; }
    uint16_t buf_count() const { return buf_count_; }
    uint32_t in_app_count() const { return in_app_count_; }  // Held by app or send.
    uint32_t published_count() const { return published_count_; }
    uint32_t spare_count() const { return spare_count_; }
    uint32_t published_target() const { return target_; }

    // The fewest buffers published after a flush (all of them on a smaller ring).
    static constexpr uint32_t published_floor = 64;

private:
    void publish(uint16_t bid);

    io_uring* uring_ = nullptr;
    io_uring_buf_ring* ring_ = nullptr;
    size_t ring_bytes_ = 0;
    std::byte* base_ = nullptr;
    BufOwner* owner_ = nullptr;
    uint16_t* spare_ = nullptr;  // [buf_count_]: given back, not published; top = newest.
    uint32_t buf_bytes_ = 0;
    uint32_t in_app_count_ = 0;
    uint32_t spare_count_ = 0;
    uint32_t published_count_ = 0;
    uint32_t taken_count_ = 0;  // Handed out by the kernel since the last flush.
    uint32_t target_ = 0;
    uint16_t buf_count_ = 0;
    uint16_t group_id_ = 0;
    uint16_t staged_count_ = 0;
};

}  // namespace rw
