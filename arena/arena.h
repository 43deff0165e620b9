// arena/arena.h — a request's memory: bump allocation over chunks from the shard's
// ChunkPool, all given back at once by release(). Nothing is freed individually and no
// destructor runs (make<T> requires trivially destructible T). Nothing allocated here may
// be referenced after release(): records leaving the request are copied out (PODs).
// Single-threaded: the owning shard only.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>

#include "arena/chunk_pool.h"
#include "core/assert.h"

namespace rw {

class Arena {
public:
    Arena() = default;
    Arena(ChunkPool* pool, uint64_t bytes_max) : pool_(pool), bytes_max_(bytes_max) {}
    Arena(const Arena&) = delete;
    Arena& operator=(const Arena&) = delete;
    ~Arena() { RW_ASSERT(chunk_head_ == nullptr && large_head_ == nullptr); }

    // Late binding for arenas embedded in preallocated slots.
    void bind(ChunkPool* pool, uint64_t bytes_max) {
        RW_ASSERT(chunk_head_ == nullptr);
        pool_ = pool;
        bytes_max_ = bytes_max;
    }

    // Raw bytes; nullptr when the request would exceed bytes_max or the pool is empty.
    // Allocations above a quarter chunk take a large block of their own (h2o's rule).
    [[nodiscard]] void* alloc(uint64_t size_bytes, uint32_t align_bytes = 16) {
        RW_DASSERT(std::has_single_bit(align_bytes));
        const uint64_t start = (chunk_used_bytes_ + align_bytes - 1) & ~uint64_t(align_bytes - 1);
        // Large requests always take a block of their own (alloc_slow), even when they
        // would fit the current chunk's tail: a chunk is for many small pieces.
        if (start + size_bytes <= chunk_payload_bytes && size_bytes <= chunk_payload_bytes / 4)
            [[likely]] {
            last_start_ = start;
            chunk_used_bytes_ = static_cast<uint32_t>(start + size_bytes);
            return chunk_head_->bytes + start;
        }
        return alloc_slow(size_bytes, align_bytes);
    }

    template <class T, class... Args>
    [[nodiscard]] T* make(Args&&... args) {
        static_assert(std::is_trivially_destructible_v<T>, "the arena never runs destructors");
        void* place = alloc(sizeof(T), alignof(T));
        return place ? ::new (place) T{std::forward<Args>(args)...} : nullptr;
    }

    template <class T>
    [[nodiscard]] T* make_array(uint64_t count) {
        static_assert(std::is_trivially_destructible_v<T>, "the arena never runs destructors");
        static_assert(std::is_trivially_default_constructible_v<T>);
        void* place = alloc(sizeof(T) * count, alignof(T));
        return static_cast<T*>(place);
    }

    // A copy of text in the arena (unaligned, like ngx_pnalloc). An empty view on
    // failure is indistinguishable from an empty input, so callers that care use
    // alloc() directly.
    [[nodiscard]] char* copy(std::string_view text) {
        char* target = static_cast<char*>(alloc(text.size(), 1));
        if (target != nullptr && !text.empty()) {
            std::memcpy(target, text.data(), text.size());
        }
        return target;
    }

    // Grows the most recent small-chunk allocation in place when it is still the top of
    // the current chunk and the new size fits; returns false otherwise (the caller then
    // allocates anew and copies). Used to append llhttp pieces without re-copying.
    [[nodiscard]] bool extend_last(const void* ptr, uint64_t new_size_bytes);

    // Gives back the unused tail of the newest small allocation, keeping its first
    // used_bytes; nothing when ptr is not the newest (or is a large block). A buffer sized
    // for the worst case and then filled with a little no longer pushes the allocations
    // after it onto pages nothing else touches: a relayed stream's arena is resident by
    // the pages its bytes span.
    void shrink_last(const void* ptr, uint64_t used_bytes);

    // Grows an allocation from old_size_bytes to new_size_bytes, keeping its bytes. In
    // place when its block's size class already holds new_size_bytes; otherwise a new
    // block takes the bytes and, when ptr is the newest block, the old one goes back to
    // the pool at once (the one exception to release-all-at-once: the caller owns the only
    // pointer into a buffer it is growing; anything older, or in a small chunk, stays until
    // release()). nullptr when the cap or the pool refuses; ptr then stays valid.
    [[nodiscard]] void* grow_large(void* ptr, uint64_t old_size_bytes, uint64_t new_size_bytes);

    // Gives every chunk and block back to the pool. The arena is reusable afterwards.
    void release();

    uint64_t total_bytes() const { return total_bytes_; }
    bool is_empty() const { return chunk_head_ == nullptr && large_head_ == nullptr; }

private:
    [[nodiscard]] void* alloc_slow(uint64_t size_bytes, uint32_t align_bytes);

    ChunkPool* pool_ = nullptr;
    Chunk* chunk_head_ = nullptr;
    LargeBlock* large_head_ = nullptr;
    uint32_t chunk_used_bytes_ = chunk_payload_bytes + 1;  // Past the end: forces a chunk first.
    uint64_t last_start_ = 0;                              // Offset of the newest small allocation.
    uint64_t total_bytes_ = 0;  // Chunk + block bytes held; <= bytes_max_.
    uint64_t bytes_max_ = 0;
};

}  // namespace rw
