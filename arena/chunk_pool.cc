// arena/chunk_pool.cc — the shard's chunk and large-block free lists. Growth goes to the
// heap (mimalloc) until the caps; after that a take fails and the request is refused
// with local_overloaded. With RW_NO_RECYCLE nothing is cached: every give frees, so
// ASan sees use-after-release immediately (h2o does the same under ASAN_IN_USE).
#include "arena/chunk_pool.h"

#include <cstdlib>

#include "core/assert.h"

namespace rw {
namespace {

#if defined(RW_NO_RECYCLE)
constexpr bool recycle = false;
#else
constexpr bool recycle = true;
#endif

uint64_t class_payload_bytes(uint32_t class_index) {
    return uint64_t(large_block_bytes_min) << class_index;
}

// The smallest class whose payload holds payload_bytes, or large_class_count if none.
uint32_t class_for(uint64_t payload_bytes) {
    uint32_t index = 0;
    while (index < large_class_count && class_payload_bytes(index) < payload_bytes) {
        index += 1;
    }
    return index;
}

}  // namespace

ChunkPool::ChunkPool(uint64_t small_chunks_max, uint64_t large_bytes_max)
    : small_chunks_max_(small_chunks_max), large_bytes_max_(large_bytes_max) {
    RW_ASSERT(small_chunks_max > 0);
}

ChunkPool::~ChunkPool() {
    // Arenas must have given everything back before their shard's pool goes away.
    RW_ASSERT(stats_.small_in_use == 0);
    RW_ASSERT(stats_.large_in_use_bytes == 0);
    while (small_free_ != nullptr) {
        Chunk* next = small_free_->next;
        std::free(small_free_);
        small_free_ = next;
    }
    for (LargeBlock*& head : large_free_) {
        while (head != nullptr) {
            LargeBlock* next = head->next;
            std::free(head);
            head = next;
        }
    }
}

void ChunkPool::reserve_small(uint64_t count) {
    if (!recycle) {
        return;
    }
    for (uint64_t i = 0; i < count && small_total_ < small_chunks_max_; i++) {
        auto* chunk = static_cast<Chunk*>(std::aligned_alloc(64, sizeof(Chunk)));
        RW_ASSERT(chunk != nullptr);  // Startup: out of memory is fatal.
        chunk->next = small_free_;
        small_free_ = chunk;
        small_total_ += 1;
        stats_.small_cached += 1;
    }
}

Chunk* ChunkPool::take_small() {
    Chunk* chunk = small_free_;
    if (chunk != nullptr) {
        small_free_ = chunk->next;
        stats_.small_cached -= 1;
        if (stats_.small_cached < small_cached_low_) {
            small_cached_low_ = stats_.small_cached;
        }
    } else {
        if (small_total_ >= small_chunks_max_) {
            stats_.exhausted += 1;
            return nullptr;
        }
        chunk = static_cast<Chunk*>(std::aligned_alloc(64, sizeof(Chunk)));
        if (chunk == nullptr) {
            stats_.exhausted += 1;
            return nullptr;
        }
        small_total_ += 1;
        stats_.heap_takes += 1;
    }
    chunk->next = nullptr;
    stats_.small_in_use += 1;
    return chunk;
}

void ChunkPool::give_small(Chunk* chunk) {
    RW_ASSERT(chunk != nullptr);
    RW_ASSERT(stats_.small_in_use > 0);
    stats_.small_in_use -= 1;
    if (!recycle) {
        small_total_ -= 1;
        std::free(chunk);
        return;
    }
    chunk->next = small_free_;
    small_free_ = chunk;
    stats_.small_cached += 1;
}

LargeBlock* ChunkPool::take_large(uint64_t payload_bytes) {
    const uint32_t class_index = class_for(payload_bytes);
    if (class_index >= large_class_count) {
        stats_.exhausted += 1;
        return nullptr;
    }
    const uint64_t class_bytes = class_payload_bytes(class_index);
    LargeBlock* block = large_free_[class_index];
    if (block != nullptr) {
        large_free_[class_index] = block->next;
        stats_.large_cached_bytes -= class_bytes;
        large_cached_count_[class_index] -= 1;
        if (large_cached_count_[class_index] < large_cached_low_[class_index]) {
            large_cached_low_[class_index] = large_cached_count_[class_index];
        }
    } else {
        // At the cap, cached blocks of other classes are freed to make room: a load that
        // shifts to bigger bodies must not be refused because small blocks sit idle.
        for (uint32_t other = 0;
             other < large_class_count && large_total_bytes_ + class_bytes > large_bytes_max_;
             other++) {
            while (large_free_[other] != nullptr &&
                   large_total_bytes_ + class_bytes > large_bytes_max_) {
                LargeBlock* victim = large_free_[other];
                large_free_[other] = victim->next;
                large_total_bytes_ -= class_payload_bytes(other);
                stats_.large_cached_bytes -= class_payload_bytes(other);
                large_cached_count_[other] -= 1;
                if (large_cached_count_[other] < large_cached_low_[other]) {
                    large_cached_low_[other] = large_cached_count_[other];
                }
                std::free(victim);
            }
        }
        if (large_total_bytes_ + class_bytes > large_bytes_max_) {
            stats_.exhausted += 1;
            return nullptr;
        }
        // aligned_alloc requires a size that is a multiple of the alignment [C11 7.22.3.1].
        const uint64_t block_bytes = (sizeof(LargeBlock) + class_bytes + 63) / 64 * 64;
        block = static_cast<LargeBlock*>(std::aligned_alloc(64, block_bytes));
        if (block == nullptr) {
            stats_.exhausted += 1;
            return nullptr;
        }
        block->payload_bytes = static_cast<uint32_t>(class_bytes);
        block->class_index = class_index;
        large_total_bytes_ += class_bytes;
        stats_.heap_takes += 1;
    }
    block->next = nullptr;
    stats_.large_in_use_bytes += class_bytes;
    return block;
}

void ChunkPool::give_large(LargeBlock* block) {
    RW_ASSERT(block != nullptr);
    RW_ASSERT(block->class_index < large_class_count);
    const uint64_t class_bytes = class_payload_bytes(block->class_index);
    RW_ASSERT(stats_.large_in_use_bytes >= class_bytes);
    stats_.large_in_use_bytes -= class_bytes;
    if (!recycle) {
        large_total_bytes_ -= class_bytes;
        std::free(block);
        return;
    }
    block->next = large_free_[block->class_index];
    large_free_[block->class_index] = block;
    stats_.large_cached_bytes += class_bytes;
    large_cached_count_[block->class_index] += 1;
}

uint64_t ChunkPool::trim(uint64_t now_ms, uint64_t period_ms, uint64_t small_floor) {
    if (now_ms < trimmed_at_ms_ + period_ms) {
        return 0;
    }
    trimmed_at_ms_ = now_ms;
    uint64_t freed_bytes = 0;
    // Small chunks: what stayed cached the whole period, above the floor.
    const uint64_t small_spare =
        stats_.small_cached > small_floor ? stats_.small_cached - small_floor : 0;
    uint64_t small_count = small_cached_low_ < small_spare ? small_cached_low_ : small_spare;
    for (; small_count > 0 && small_free_ != nullptr; small_count--) {
        Chunk* chunk = small_free_;
        small_free_ = chunk->next;
        std::free(chunk);
        small_total_ -= 1;
        stats_.small_cached -= 1;
        freed_bytes += sizeof(Chunk);
    }
    // Large blocks: per class, the ones no take needed during the whole period.
    for (uint32_t index = 0; index < large_class_count; index++) {
        const uint64_t class_bytes = class_payload_bytes(index);
        for (uint64_t count = large_cached_low_[index]; count > 0; count--) {
            LargeBlock* block = large_free_[index];
            RW_ASSERT(block != nullptr);  // The low-water mark never exceeds the cached count.
            large_free_[index] = block->next;
            std::free(block);
            large_total_bytes_ -= class_bytes;
            stats_.large_cached_bytes -= class_bytes;
            large_cached_count_[index] -= 1;
            freed_bytes += class_bytes;
        }
        large_cached_low_[index] = large_cached_count_[index];  // The next period starts.
    }
    small_cached_low_ = stats_.small_cached;
    stats_.trimmed_bytes += freed_bytes;
    return freed_bytes;
}

uint64_t ChunkPool::bytes_in_use() const {
    return stats_.small_in_use * sizeof(Chunk) + stats_.large_in_use_bytes;
}

uint64_t ChunkPool::bytes_cached() const {
    return stats_.small_cached * sizeof(Chunk) + stats_.large_cached_bytes;
}

}  // namespace rw
