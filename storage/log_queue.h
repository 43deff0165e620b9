// storage/log_queue.h — LogQueue, one shard's bounded single-producer single-consumer
// ring of UsageRecords (shard → writer). The producer is the owning shard thread only;
// the consumer is the writer thread only. Admission control: a request reserves a slot
// when it is accepted (try_reserve), so the push at request end can never fail and a
// record is never dropped; a failed reservation is the shard's 503 + Retry-After.
// Invariant (producer side): pushed_not_drained + reserved_count <= slot_count.
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <memory>

#include "core/assert.h"
#include "storage/records.h"

namespace rw {

// 64 bytes on x86-64 and most aarch64 parts; std::hardware_destructive_interference_size
// warns under GCC (-Winterference-size) because it may vary across -mtune.
constexpr size_t cache_line_bytes = 64;

class LogQueue {
public:
    // slot_count must be a power of two (StorageConfig::queue_slots is validated).
    explicit LogQueue(uint32_t slot_count)
        : slots_(new UsageRecord[slot_count]), mask_(slot_count - 1), slot_count_(slot_count) {
        RW_ASSERT(slot_count >= 2);
        RW_ASSERT(std::has_single_bit(slot_count));
    }
    LogQueue(const LogQueue&) = delete;
    LogQueue& operator=(const LogQueue&) = delete;

    // ---- Producer side (the owning shard thread only) --------------------------------

    // Reserves one slot for a request's future record. False when the queue (pushed but
    // not yet drained, plus outstanding reservations) is full: back-pressure, answer 503.
    [[nodiscard]] bool try_reserve() {
        const uint64_t tail = tail_.load(std::memory_order_relaxed);  // Our own store.
        const uint64_t reserved = reserved_count_.load(std::memory_order_relaxed);
        if (tail - head_cached_ + reserved >= slot_count_) {
            // Acquire pairs with the writer's release in drain(): slots it freed are
            // no longer being read when we refill them.
            head_cached_ = head_.load(std::memory_order_acquire);
            if (tail - head_cached_ + reserved >= slot_count_) {
                reserve_failed_count_.store(
                    reserve_failed_count_.load(std::memory_order_relaxed) + 1,
                    std::memory_order_relaxed);
                return false;
            }
        }
        // Single writer of this counter: load+store, no read-modify-write needed.
        reserved_count_.store(reserved + 1, std::memory_order_relaxed);
        return true;
    }

    // Gives a reservation back without a record (the request never reached an upstream).
    void cancel_reservation() {
        const uint64_t reserved = reserved_count_.load(std::memory_order_relaxed);
        RW_ASSERT(reserved > 0);  // Pair: try_reserve() incremented it.
        reserved_count_.store(reserved - 1, std::memory_order_relaxed);
    }

    // Publishes a record into a previously reserved slot. Never blocks and never fails:
    // the reservation guarantees a free slot. The writer sees it after notify().
    void push(const UsageRecord& record) {
        const uint64_t reserved = reserved_count_.load(std::memory_order_relaxed);
        RW_ASSERT(reserved > 0);  // Pair: every push consumes one try_reserve().
        const uint64_t tail = tail_.load(std::memory_order_relaxed);
        RW_DASSERT(tail - head_.load(std::memory_order_acquire) < slot_count_);
        std::memcpy(&slots_[tail & mask_], &record, sizeof(UsageRecord));
        reserved_count_.store(reserved - 1, std::memory_order_relaxed);
        // Release: the record bytes are visible before the new tail [atomics.order].
        tail_.store(tail + 1, std::memory_order_release);
    }

    // ---- Consumer side (the writer thread only) --------------------------------------

    // Copies up to count_max records into target, oldest first; returns how many.
    uint32_t drain(UsageRecord* target, uint32_t count_max) {
        const uint64_t head = head_.load(std::memory_order_relaxed);  // Our own store.
        const uint64_t tail = tail_.load(std::memory_order_acquire);  // Pairs with push.
        RW_ASSERT(tail - head <= slot_count_);
        const uint64_t available = tail - head;
        const uint32_t count = available < count_max ? uint32_t(available) : count_max;
        for (uint32_t index = 0; index < count; index++) {
            std::memcpy(&target[index], &slots_[(head + index) & mask_], sizeof(UsageRecord));
        }
        // Release: our reads of the slots happen before the producer may reuse them.
        head_.store(head + count, std::memory_order_release);
        return count;
    }

    [[nodiscard]] bool is_empty_for_consumer() const {
        return tail_.load(std::memory_order_acquire) == head_.load(std::memory_order_relaxed);
    }

    // ---- Any thread (metrics; values may be momentarily stale) -----------------------

    [[nodiscard]] uint64_t depth() const {
        const uint64_t head = head_.load(std::memory_order_relaxed);
        const uint64_t tail = tail_.load(std::memory_order_relaxed);
        return tail >= head ? tail - head : 0;  // Loads race; never report negative.
    }
    [[nodiscard]] uint64_t reserved_count() const {
        return reserved_count_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] uint64_t pushed_count() const { return tail_.load(std::memory_order_relaxed); }
    [[nodiscard]] uint64_t drained_count() const { return head_.load(std::memory_order_relaxed); }
    [[nodiscard]] uint64_t reserve_failed_count() const {
        return reserve_failed_count_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] uint32_t slot_count() const { return slot_count_; }

private:
    // Consumer-written line.
    alignas(cache_line_bytes) std::atomic<uint64_t> head_{0};
    // Producer-written line: tail, reservations and the producer's cached head.
    alignas(cache_line_bytes) std::atomic<uint64_t> tail_{0};
    std::atomic<uint64_t> reserved_count_{0};
    std::atomic<uint64_t> reserve_failed_count_{0};
    uint64_t head_cached_ = 0;  // Producer's last view of head_ (avoids the shared line).
    // Read-only after construction.
    alignas(cache_line_bytes) std::unique_ptr<UsageRecord[]> slots_;
    uint64_t mask_;
    uint32_t slot_count_;
};

}  // namespace rw
