// arena/chunk_pool.h — a shard's free lists of memory chunks for request arenas.
// Owned by one shard thread; never shared. Small chunks are fixed-size (arena_chunk_bytes);
// large blocks come in power-of-two size classes for bodies and other big buffers.
// Both lists grow from the heap only up to their caps and are recycled afterwards, so a
// steady load allocates nothing; what a burst grew and then left unused for a whole trim
// period goes back to the heap (trim), so memory taken under abuse is returned. With
// RW_NO_RECYCLE (debug, sanitizers) every take is a fresh malloc and every give a real
// free, so use-after-release is caught.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/limits.h"

namespace rw {

// A small chunk. The header is part of the arena_chunk_bytes allocation (core/limits.h
// sizes both, so chunk_payload_bytes is known to every layer without this header).
struct Chunk {
    Chunk* next;
    alignas(arena_chunk_header_bytes) std::byte bytes[chunk_payload_bytes];
};
static_assert(sizeof(Chunk) == arena_chunk_bytes);
static_assert(sizeof(Chunk::bytes) == chunk_payload_bytes);

// A large block: header followed by its payload of block_bytes (a class size).
struct LargeBlock {
    LargeBlock* next;
    uint32_t payload_bytes;
    uint32_t class_index;
    alignas(16) std::byte bytes[];
};

struct ChunkPoolStats {
    uint64_t small_in_use = 0;  // Chunks held by arenas right now.
    uint64_t small_cached = 0;  // Chunks on the free list.
    uint64_t large_in_use_bytes = 0;
    uint64_t large_cached_bytes = 0;
    uint64_t heap_takes = 0;     // Times the pool had to go to the heap (growth).
    uint64_t exhausted = 0;      // Takes refused because a cap was reached.
    uint64_t trimmed_bytes = 0;  // Cached bytes given back to the heap by trim().
};

class ChunkPool {
public:
    // small_chunks_max: cap on small chunks in use + cached. large_bytes_max: cap on the
    // payload bytes of large blocks in use + cached. Both are computed from Config.
    ChunkPool(uint64_t small_chunks_max, uint64_t large_bytes_max);
    ~ChunkPool();
    ChunkPool(const ChunkPool&) = delete;
    ChunkPool& operator=(const ChunkPool&) = delete;

    // Pre-allocates count small chunks onto the free list (shard start).
    void reserve_small(uint64_t count);

    // nullptr when the cap is reached: the caller turns that into local_overloaded.
    [[nodiscard]] Chunk* take_small();
    void give_small(Chunk* chunk);

    // A block whose payload holds at least payload_bytes; nullptr at the cap or when
    // payload_bytes exceeds the largest class.
    [[nodiscard]] LargeBlock* take_large(uint64_t payload_bytes);
    void give_large(LargeBlock* block);

    // Gives back to the heap the cached chunks and blocks that stayed unused for a whole
    // period: at most the fewest cached of each kind since the last trim (the low-water
    // mark), keeping small_floor small chunks. A load that keeps using what it cached
    // loses nothing, so steady state still allocates nothing; memory a burst grew comes
    // back within two periods. Called at the shard's sweep; does the work only when
    // period_ms has passed since the last trim. Returns the bytes given back.
    uint64_t trim(uint64_t now_ms, uint64_t period_ms, uint64_t small_floor);

    const ChunkPoolStats& stats() const { return stats_; }
    // Bytes held by arenas, and bytes cached for reuse (small chunks counted whole).
    uint64_t bytes_in_use() const;
    uint64_t bytes_cached() const;

private:
    Chunk* small_free_ = nullptr;
    LargeBlock* large_free_[large_class_count] = {};
    uint64_t small_chunks_max_;
    uint64_t small_total_ = 0;  // In use + cached.
    uint64_t large_bytes_max_;
    uint64_t large_total_bytes_ = 0;
    // Low-water marks of the cached counts since the last trim (see trim()).
    uint64_t small_cached_low_ = 0;
    uint64_t large_cached_count_[large_class_count] = {};
    uint64_t large_cached_low_[large_class_count] = {};
    uint64_t trimmed_at_ms_ = 0;
    ChunkPoolStats stats_;
};

}  // namespace rw
