// tests/unit/arena/chunk_pool_test.cc — ChunkPool's idle trim: what a burst grew and then
// left cached for a whole period goes back to the heap, down to the small-chunk floor,
// while a load that keeps using its cache loses nothing (steady state allocates nothing).
// Builds without recycling (RW_NO_RECYCLE: debug, sanitizers) cache nothing to trim.
#include "arena/chunk_pool.h"

#include <gtest/gtest.h>

#include <vector>

namespace rw {
namespace {

#if defined(RW_NO_RECYCLE)
constexpr bool is_recycling = false;
#else
constexpr bool is_recycling = true;
#endif

constexpr uint64_t period_ms = 1000;
constexpr uint64_t floor_count = 4;

// Takes `small` chunks and `large` 64 KiB blocks, then gives them all back.
void burst(ChunkPool& pool, uint32_t small, uint32_t large) {
    std::vector<Chunk*> chunks;
    std::vector<LargeBlock*> blocks;
    for (uint32_t i = 0; i < small; i++) {
        chunks.push_back(pool.take_small());
        ASSERT_NE(chunks.back(), nullptr);
    }
    for (uint32_t i = 0; i < large; i++) {
        blocks.push_back(pool.take_large(large_block_bytes_min));
        ASSERT_NE(blocks.back(), nullptr);
    }
    for (Chunk* chunk : chunks) {
        pool.give_small(chunk);
    }
    for (LargeBlock* block : blocks) {
        pool.give_large(block);
    }
}

TEST(ChunkPoolTrim, ABurstIsGivenBackAfterAnIdlePeriod) {
    if (!is_recycling) {
        GTEST_SKIP() << "RW_NO_RECYCLE: nothing is cached";
    }
    ChunkPool pool(1000, 64ull << 20);
    pool.reserve_small(floor_count);
    EXPECT_EQ(pool.trim(0, period_ms, floor_count), 0u);
    ASSERT_NO_FATAL_FAILURE(burst(pool, 100, 20));
    const uint64_t cached_after_burst = pool.bytes_cached();
    EXPECT_EQ(cached_after_burst, 100 * sizeof(Chunk) + 20ull * large_block_bytes_min);
    EXPECT_EQ(pool.bytes_in_use(), 0u);
    // Not a whole period yet: nothing moves.
    EXPECT_EQ(pool.trim(period_ms - 1, period_ms, floor_count), 0u);
    // The period in which the burst happened: its blocks were taken during it, so its
    // low-water mark is 0 and nothing is trimmed yet.
    EXPECT_EQ(pool.trim(period_ms, period_ms, floor_count), 0u);
    // A whole period with no take: everything above the floor goes back.
    const uint64_t freed = pool.trim(2 * period_ms, period_ms, floor_count);
    EXPECT_EQ(freed, cached_after_burst - floor_count * sizeof(Chunk));
    EXPECT_EQ(pool.bytes_cached(), floor_count * sizeof(Chunk));
    EXPECT_EQ(pool.stats().trimmed_bytes, freed);
    // Taking again after a trim grows from the heap, as a new burst would.
    const uint64_t heap_takes = pool.stats().heap_takes;
    ASSERT_NO_FATAL_FAILURE(burst(pool, floor_count + 1, 1));
    EXPECT_EQ(pool.stats().heap_takes, heap_takes + 2);
}

TEST(ChunkPoolTrim, ASteadyLoadKeepsItsCache) {
    if (!is_recycling) {
        GTEST_SKIP() << "RW_NO_RECYCLE: nothing is cached";
    }
    ChunkPool pool(1000, 64ull << 20);
    pool.reserve_small(floor_count);
    ASSERT_NO_FATAL_FAILURE(burst(pool, 50, 8));
    const uint64_t heap_takes = pool.stats().heap_takes;
    // The same load in every period uses the whole cache: nothing is trimmed and no take
    // goes to the heap again.
    for (uint64_t period = 1; period <= 5; period++) {
        ASSERT_NO_FATAL_FAILURE(burst(pool, 50, 8));
        EXPECT_EQ(pool.trim(period * period_ms, period_ms, floor_count), 0u) << period;
    }
    EXPECT_EQ(pool.stats().heap_takes, heap_takes);
    // A smaller load afterwards: only what it left unused for the period is given back,
    // and the load still runs without going to the heap.
    ASSERT_NO_FATAL_FAILURE(burst(pool, 10, 2));
    EXPECT_EQ(pool.trim(6 * period_ms, period_ms, floor_count),
              40 * sizeof(Chunk) + 6ull * large_block_bytes_min);
    ASSERT_NO_FATAL_FAILURE(burst(pool, 10, 2));
    EXPECT_EQ(pool.trim(7 * period_ms, period_ms, floor_count), 0u);
    EXPECT_EQ(pool.stats().heap_takes, heap_takes);
}

}  // namespace
}  // namespace rw
