// arena/buf_ring.cc — setup, publication (flush) and teardown of a provided buffer ring.
// liburing 2.3 (bookworm) has no io_uring_setup_buf_ring(), so the ring memory is mmap'd
// here (page aligned, as the kernel requires) and registered with
// io_uring_register_buf_ring().
#include "arena/buf_ring.h"

#include <sys/mman.h>

#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace rw {

int BufRing::init(io_uring* ring, uint16_t group_id, uint16_t buf_count, uint32_t buf_bytes) {
    RW_ASSERT(ring_ == nullptr);
    RW_ASSERT(std::has_single_bit(buf_count));  // The kernel requires a power of two.
    RW_ASSERT(buf_count <= 32768);
    uring_ = ring;
    group_id_ = group_id;
    buf_count_ = buf_count;
    buf_bytes_ = buf_bytes;
    ring_bytes_ = sizeof(io_uring_buf) * buf_count;
    void* ring_memory =
        ::mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (ring_memory == MAP_FAILED) {
        return -errno;
    }
    ring_ = static_cast<io_uring_buf_ring*>(ring_memory);
    io_uring_buf_ring_init(ring_);

    // aligned_alloc wants a size that is a multiple of the alignment [C11 7.22.3.1]; the
    // 64 extra bytes let a parser read padding past the last buffer's end.
    const size_t buffers_bytes = (size_t(buf_count) * buf_bytes + 64 + 4095) / 4096 * 4096;
    base_ = static_cast<std::byte*>(std::aligned_alloc(4096, buffers_bytes));
    owner_ = static_cast<BufOwner*>(std::calloc(buf_count, sizeof(BufOwner)));
    spare_ = static_cast<uint16_t*>(std::calloc(buf_count, sizeof(uint16_t)));
    if (base_ == nullptr || owner_ == nullptr || spare_ == nullptr) {
        return -ENOMEM;
    }

    io_uring_buf_reg reg;
    std::memset(&reg, 0, sizeof(reg));
    reg.ring_addr = reinterpret_cast<uint64_t>(ring_);
    reg.ring_entries = buf_count;
    reg.bgid = group_id;
    const int rc = io_uring_register_buf_ring(ring, &reg, 0);
    if (rc < 0) {
        return rc;
    }
    // All buffers start spare, bid 0 on top; the first flush publishes the floor's worth.
    for (uint32_t index = 0; index < buf_count; index++) {
        owner_[index] = BufOwner::spare;
        spare_[index] = static_cast<uint16_t>(buf_count - 1 - index);
    }
    spare_count_ = buf_count;
    flush();
    return 0;
}

void BufRing::publish(uint16_t bid) {
    RW_ASSERT(owner_[bid] == BufOwner::spare);
    owner_[bid] = BufOwner::kernel;
    io_uring_buf_ring_add(ring_, data(bid), buf_bytes_, bid, io_uring_buf_ring_mask(buf_count_),
                          staged_count_);
    staged_count_ += 1;
    published_count_ += 1;
}

void BufRing::flush() {
    const uint32_t floor = published_floor < buf_count_ ? published_floor : buf_count_;
    const uint64_t wanted = uint64_t(taken_count_) * 2;
    taken_count_ = 0;
    if (wanted >= target_) {
        target_ = static_cast<uint32_t>(wanted < buf_count_ ? wanted : buf_count_);
    } else {
        target_ -= static_cast<uint32_t>((target_ - wanted + 1023) / 1024);
    }
    target_ = target_ > floor ? target_ : floor;
    while (published_count_ < target_ && spare_count_ > 0) {
        publish(spare_[--spare_count_]);
    }
    if (staged_count_ == 0) {
        return;
    }
    io_uring_buf_ring_advance(ring_, staged_count_);
    staged_count_ = 0;
}

BufRing::~BufRing() {
    if (ring_ != nullptr) {
        if (uring_ != nullptr && uring_->ring_fd >= 0) {
            [[maybe_unused]] const int rc = io_uring_unregister_buf_ring(uring_, group_id_);
        }
        ::munmap(ring_, ring_bytes_);
    }
    std::free(base_);
    std::free(owner_);
    std::free(spare_);
}

}  // namespace rw
