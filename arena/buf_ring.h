// arena/buf_ring.h — a shard's provided buffer ring for multishot recv. Every buffer has
// exactly one owner at a time: the kernel (available for recv), the app (bytes being
// parsed or held for a pipelined request) or a send (lent to an outgoing send until its
// completion). Transitions are asserted in every build: one byte compare catches a double
// give-back at once. Give-backs are staged and published once per loop turn by flush().
// Single-threaded: the owning shard only.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/assert.h"
#include "core/limits.h"

namespace rw {

enum class BufOwner : uint8_t { kernel, app, send };

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
        return {data(bid), length_bytes};
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

    // The bytes are no longer needed (parsed and copied, relayed, or sent). Staged here;
    // the kernel sees it after flush().
    void give_back(uint16_t bid) {
        RW_ASSERT(bid < buf_count_);
        RW_ASSERT(owner_[bid] != BufOwner::kernel);  // Double give-back.
        owner_[bid] = BufOwner::kernel;
        in_app_count_ -= 1;
        io_uring_buf_ring_add(ring_, data(bid), buf_bytes_, bid, io_uring_buf_ring_mask(buf_count_),
                              staged_count_);
        staged_count_ += 1;
    }

    // Publishes the staged give-backs with one tail update [io_uring_buf_ring_advance(3)].
    void flush() {
        if (staged_count_ == 0) {
            return;
        }
        io_uring_buf_ring_advance(ring_, staged_count_);
        staged_count_ = 0;
    }

    std::byte* data(uint16_t bid) const { return base_ + size_t(bid) * buf_bytes_; }
    BufOwner owner(uint16_t bid) const { return owner_[bid]; }
    uint16_t group_id() const { return group_id_; }
    uint32_t buf_bytes() const { return buf_bytes_; }
    uint16_t buf_count() const { return buf_count_; }
    uint32_t in_app_count() const { return in_app_count_; }  // Held by app or send.

private:
    io_uring* uring_ = nullptr;
    io_uring_buf_ring* ring_ = nullptr;
    size_t ring_bytes_ = 0;
    std::byte* base_ = nullptr;
    BufOwner* owner_ = nullptr;
    uint32_t buf_bytes_ = 0;
    uint32_t in_app_count_ = 0;
    uint16_t buf_count_ = 0;
    uint16_t group_id_ = 0;
    uint16_t staged_count_ = 0;
};

}  // namespace rw
