// tests/unit/arena/arena_test.cc — the request arena and its chunk pool: bump allocation,
// alignment, large blocks, the per-request cap, in-place extension, release returning
// every chunk, and recycling (no heap growth in a steady loop).
#include "arena/arena.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

namespace rw {
namespace {

TEST(Arena, SmallAllocationsShareOneChunkAndAreAligned) {
    ChunkPool pool(16, 1 << 20);
    Arena arena(&pool, 1 << 20);
    auto* a = static_cast<char*>(arena.alloc(10, 1));
    auto* b = static_cast<char*>(arena.alloc(8, 8));
    auto* c = static_cast<char*>(arena.alloc(32, 16));
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % 8, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(c) % 16, 0u);
    EXPECT_EQ(b - a, 16);  // 10 bytes rounded up to the next 8-byte boundary.
    EXPECT_EQ(pool.stats().small_in_use, 1u);
    arena.release();
    EXPECT_EQ(pool.stats().small_in_use, 0u);
    EXPECT_TRUE(arena.is_empty());
}

TEST(Arena, ZeroByteAllocationOnAFreshArenaIsSafe) {
    ChunkPool pool(4, 1 << 20);
    Arena arena(&pool, 1 << 20);
    EXPECT_NE(arena.alloc(0, 1), nullptr);
    arena.release();
}

TEST(Arena, ChainsChunksWhenOneIsFull) {
    ChunkPool pool(16, 1 << 20);
    Arena arena(&pool, 1 << 20);
    for (int i = 0; i < 10; i++) {
        ASSERT_NE(arena.alloc(4000, 16), nullptr);  // 4000 <= a quarter chunk: small path.
    }
    EXPECT_EQ(pool.stats().small_in_use, 3u);  // 4 fit per 16 KiB chunk.
    arena.release();
    EXPECT_EQ(pool.stats().small_in_use, 0u);
}

TEST(Arena, LargeAllocationsTakeBlocksAndReturnThem) {
    ChunkPool pool(4, 8 << 20);
    Arena arena(&pool, 8 << 20);
    auto* big = static_cast<char*>(arena.alloc(100 * 1024, 16));
    ASSERT_NE(big, nullptr);
    std::memset(big, 0xAB, 100 * 1024);
    EXPECT_EQ(pool.stats().large_in_use_bytes, 128u * 1024);  // Next power-of-two class.
    EXPECT_EQ(pool.stats().small_in_use, 0u);
    arena.release();
    EXPECT_EQ(pool.stats().large_in_use_bytes, 0u);
}

TEST(Arena, RefusesPastThePerRequestCap) {
    ChunkPool pool(64, 64 << 20);
    Arena arena(&pool, 200 * 1024);
    EXPECT_NE(arena.alloc(150 * 1024, 16), nullptr);
    EXPECT_EQ(arena.alloc(100 * 1024, 16), nullptr);  // 250 KiB > 200 KiB.
    EXPECT_NE(arena.alloc(100, 1), nullptr);          // Small ones still fit under the cap.
    arena.release();
}

TEST(Arena, RefusesWhenThePoolIsExhausted) {
    ChunkPool pool(1, 1 << 20);
    Arena first(&pool, 1 << 20);
    Arena second(&pool, 1 << 20);
    ASSERT_NE(first.alloc(100, 1), nullptr);
    EXPECT_EQ(second.alloc(100, 1), nullptr);
    EXPECT_EQ(pool.stats().exhausted, 1u);
    first.release();
    EXPECT_NE(second.alloc(100, 1), nullptr);  // The chunk came back.
    second.release();
}

TEST(Arena, ExtendLastGrowsOnlyTheNewestAllocation) {
    ChunkPool pool(4, 1 << 20);
    Arena arena(&pool, 1 << 20);
    auto* first = static_cast<char*>(arena.alloc(10, 1));
    EXPECT_TRUE(arena.extend_last(first, 20));
    auto* second = static_cast<char*>(arena.alloc(4, 1));
    EXPECT_EQ(second, first + 20);               // The extension was reserved.
    EXPECT_FALSE(arena.extend_last(first, 30));  // No longer the newest.
    EXPECT_TRUE(arena.extend_last(second, 8));
    EXPECT_FALSE(arena.extend_last(second, chunk_payload_bytes));  // Past the chunk.
    arena.release();
}

TEST(Arena, ShrinkLastGivesTheNewestTailBackAndNothingElse) {
    ChunkPool pool(4, 1 << 20);
    Arena arena(&pool, 1 << 20);
    auto* worst_case = static_cast<char*>(arena.alloc(2048, 1));
    ASSERT_NE(worst_case, nullptr);
    arena.shrink_last(worst_case, 100);  // Filled with 100 of its 2048 bytes.
    auto* next = static_cast<char*>(arena.alloc(64, 1));
    EXPECT_EQ(next, worst_case + 100);  // Right after the used part, not 2 KiB later.
    arena.shrink_last(worst_case, 10);  // No longer the newest: nothing moves.
    EXPECT_EQ(arena.alloc(8, 1), next + 64);
    auto* large = arena.alloc(chunk_payload_bytes / 2, 16);  // A block of its own.
    ASSERT_NE(large, nullptr);
    arena.shrink_last(large, 0);  // Not a small allocation: nothing moves.
    EXPECT_EQ(arena.alloc(8, 1), next + 72);
    arena.release();
}

TEST(Arena, MakeConstructsTrivialTypes) {
    struct Pair {
        uint32_t a;
        uint64_t b;
    };
    ChunkPool pool(4, 1 << 20);
    Arena arena(&pool, 1 << 20);
    Pair* pair = arena.make<Pair>(7u, 9ull);
    ASSERT_NE(pair, nullptr);
    EXPECT_EQ(pair->a, 7u);
    EXPECT_EQ(pair->b, 9u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(pair) % alignof(Pair), 0u);
    arena.release();
}

#if !defined(RW_NO_RECYCLE)
TEST(Arena, SteadyStateReusesChunksWithoutHeapGrowth) {
    ChunkPool pool(64, 64 << 20);
    pool.reserve_small(4);
    Arena arena(&pool, 8 << 20);
    for (int round = 0; round < 3; round++) {  // Warm-up: the large class gets created.
        ASSERT_NE(arena.alloc(1000, 16), nullptr);
        ASSERT_NE(arena.alloc(300 * 1024, 16), nullptr);
        arena.release();
    }
    const uint64_t heap_takes = pool.stats().heap_takes;
    for (int round = 0; round < 1000; round++) {
        ASSERT_NE(arena.alloc(1000, 16), nullptr);
        ASSERT_NE(arena.alloc(300 * 1024, 16), nullptr);
        arena.release();
    }
    EXPECT_EQ(pool.stats().heap_takes, heap_takes);
}
#endif

TEST(ChunkPool, LargeCapFreesCachedBlocksOfOtherClasses) {
    ChunkPool pool(4, 1 << 20);  // 1 MiB of large blocks at most.
    Arena arena(&pool, 4 << 20);
    ASSERT_NE(arena.alloc(500 * 1024, 16), nullptr);  // 512 KiB class.
    arena.release();
    // A 1 MiB block only fits if the cached 512 KiB block is freed first.
    ASSERT_NE(arena.alloc(1000 * 1024, 16), nullptr);
    EXPECT_EQ(pool.stats().large_in_use_bytes, 1u << 20);
    arena.release();
}

TEST(Arena, GrowLargeStaysInItsClassThenMovesAndGivesTheOldBlockBack) {
    ChunkPool pool(4, 3 << 20);
    Arena arena(&pool, 8 << 20);
    auto* bytes = static_cast<char*>(arena.alloc(100 * 1024, 16));  // 128 KiB class.
    ASSERT_NE(bytes, nullptr);
    std::memset(bytes, 'x', 100 * 1024);
    auto* same = static_cast<char*>(arena.grow_large(bytes, 100 * 1024, 120 * 1024));
    EXPECT_EQ(same, bytes);  // Still fits its class: no copy.
    EXPECT_EQ(arena.total_bytes(), 120u * 1024);
    auto* moved = static_cast<char*>(arena.grow_large(same, 120 * 1024, 2 << 20));
    ASSERT_NE(moved, nullptr);
    EXPECT_EQ(moved[0], 'x');
    EXPECT_EQ(moved[100 * 1024 - 1], 'x');
    // Only the new 2 MiB block is in use: the 128 KiB one went back to the pool.
    EXPECT_EQ(pool.stats().large_in_use_bytes, 2u << 20);
    EXPECT_EQ(arena.total_bytes(), 2u << 20);
    // Past the pool's cap (3 MiB): refused, the buffer stays valid.
    EXPECT_EQ(arena.grow_large(moved, 2 << 20, 4 << 20), nullptr);
    EXPECT_EQ(moved[0], 'x');
    arena.release();
    EXPECT_EQ(pool.stats().large_in_use_bytes, 0u);
}

TEST(Arena, GrowLargeOfAnOlderBlockCopiesAndKeepsIt) {
    ChunkPool pool(4, 8 << 20);
    Arena arena(&pool, 8 << 20);
    auto* older = static_cast<char*>(arena.alloc(100 * 1024, 16));
    ASSERT_NE(older, nullptr);
    older[0] = 'o';
    ASSERT_NE(arena.alloc(100 * 1024, 16), nullptr);  // Newer: older is not the head.
    auto* grown = static_cast<char*>(arena.grow_large(older, 100 * 1024, 1 << 20));
    ASSERT_NE(grown, nullptr);
    EXPECT_EQ(grown[0], 'o');
    EXPECT_EQ(older[0], 'o');  // Still held until release.
    EXPECT_EQ(pool.stats().large_in_use_bytes, (128u + 128u + 1024u) * 1024);
    EXPECT_EQ(arena.grow_large(grown, 1 << 20, 16 << 20), nullptr);  // The arena's cap.
    arena.release();
}

}  // namespace
}  // namespace rw
