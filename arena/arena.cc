// arena/arena.cc — the slow paths of the request arena: a new chunk, a large block, the
// in-place extension used by the parser, and release(). The fast path is inline in
// arena.h. Every failure is a nullptr / false for the caller to turn into a Fault.
#include "arena/arena.h"

namespace rw {

void* Arena::alloc_slow(uint64_t size_bytes, uint32_t align_bytes) {
    RW_ASSERT(pool_ != nullptr);
    RW_ASSERT(align_bytes <= 16);  // Chunks and blocks are 16-byte aligned.
    if (size_bytes > chunk_payload_bytes / 4) {
        // Large: its own block, linked for release. Not the bump chunk, so the current
        // chunk's tail stays usable for small allocations.
        if (total_bytes_ + size_bytes > bytes_max_) {
            return nullptr;
        }
        LargeBlock* block = pool_->take_large(size_bytes);
        if (block == nullptr) {
            return nullptr;
        }
        block->next = large_head_;
        large_head_ = block;
        total_bytes_ +=
            size_bytes;  // The request is charged what it asked for; the pool caps real memory.
        return block->bytes;
    }
    if (total_bytes_ + chunk_payload_bytes > bytes_max_) {
        return nullptr;
    }
    Chunk* chunk = pool_->take_small();
    if (chunk == nullptr) {
        return nullptr;
    }
    chunk->next = chunk_head_;
    chunk_head_ = chunk;
    total_bytes_ += chunk_payload_bytes;
    last_start_ = 0;
    chunk_used_bytes_ = static_cast<uint32_t>(size_bytes);
    return chunk->bytes;
}

bool Arena::extend_last(const void* ptr, uint64_t new_size_bytes) {
    if (chunk_head_ == nullptr || ptr != chunk_head_->bytes + last_start_) {
        return false;  // Not the newest small allocation (or a large block).
    }
    if (last_start_ + new_size_bytes > chunk_payload_bytes) {
        return false;
    }
    RW_ASSERT(last_start_ + new_size_bytes >= last_start_);
    chunk_used_bytes_ = static_cast<uint32_t>(last_start_ + new_size_bytes);
    return true;
}

void Arena::shrink_last(const void* ptr, uint64_t used_bytes) {
    if (chunk_head_ == nullptr || ptr != chunk_head_->bytes + last_start_) {
        return;  // Not the newest small allocation: its tail stays until release().
    }
    RW_ASSERT(last_start_ + used_bytes <= chunk_used_bytes_);  // A shrink, never a growth.
    chunk_used_bytes_ = static_cast<uint32_t>(last_start_ + used_bytes);
}

void* Arena::grow_large(void* ptr, uint64_t old_size_bytes, uint64_t new_size_bytes) {
    RW_ASSERT(ptr != nullptr);
    RW_ASSERT(new_size_bytes >= old_size_bytes);
    if (total_bytes_ - old_size_bytes + new_size_bytes > bytes_max_) {
        return nullptr;
    }
    LargeBlock* const newest = large_head_;
    const bool is_newest = newest != nullptr && ptr == newest->bytes;
    if (is_newest && new_size_bytes <= newest->payload_bytes) {
        total_bytes_ += new_size_bytes - old_size_bytes;  // Room left in its size class.
        return ptr;
    }
    LargeBlock* block = pool_->take_large(new_size_bytes);
    if (block == nullptr) {
        return nullptr;
    }
    std::memcpy(block->bytes, ptr, old_size_bytes);
    if (is_newest) {
        block->next = newest->next;
        large_head_ = block;
        pool_->give_large(newest);  // Paired with its take: nothing else points into it.
        total_bytes_ += new_size_bytes - old_size_bytes;
    } else {
        block->next = large_head_;  // Not ours to give back early: kept until release().
        large_head_ = block;
        total_bytes_ += new_size_bytes;
    }
    return block->bytes;
}

void Arena::release() {
    if (pool_ == nullptr) {
        RW_ASSERT(is_empty());
        return;
    }
    while (chunk_head_ != nullptr) {
        Chunk* next = chunk_head_->next;
        pool_->give_small(chunk_head_);
        chunk_head_ = next;
    }
    while (large_head_ != nullptr) {
        LargeBlock* next = large_head_->next;
        pool_->give_large(large_head_);
        large_head_ = next;
    }
    chunk_used_bytes_ = chunk_payload_bytes + 1;
    last_start_ = 0;
    total_bytes_ = 0;
    RW_ASSERT(is_empty());
}

}  // namespace rw
