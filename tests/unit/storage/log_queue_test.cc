// tests/unit/storage/log_queue_test.cc — the SPSC ring: reservation accounting, a full
// queue refusing reservations, and one producer + one consumer thread moving 1M records
// with every sequence number seen exactly once and in order.
#include "storage/log_queue.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "storage_test_support.h"

namespace rw {
namespace {

TEST(LogQueue, ReservationAccounting) {
    LogQueue queue(8);
    EXPECT_EQ(queue.slot_count(), 8u);
    for (int i = 0; i < 8; i++) {
        ASSERT_TRUE(queue.try_reserve());
    }
    EXPECT_EQ(queue.reserved_count(), 8u);
    EXPECT_FALSE(queue.try_reserve());  // Reservations alone fill it.
    EXPECT_EQ(queue.reserve_failed_count(), 1u);
    queue.cancel_reservation();
    EXPECT_EQ(queue.reserved_count(), 7u);
    ASSERT_TRUE(queue.try_reserve());
    for (uint64_t i = 0; i < 5; i++) {
        queue.push(test::make_record(i, 1, 10));
    }
    EXPECT_EQ(queue.reserved_count(), 3u);
    EXPECT_EQ(queue.pushed_count(), 5u);
    EXPECT_EQ(queue.depth(), 5u);
    EXPECT_FALSE(queue.try_reserve());  // 5 pushed + 3 reserved = 8.

    UsageRecord out[4];
    EXPECT_EQ(queue.drain(out, 4), 4u);
    EXPECT_EQ(record_text(out[0].request_id), "req-0");
    EXPECT_EQ(record_text(out[3].request_id), "req-3");
    EXPECT_EQ(queue.depth(), 1u);
    // Drained slots become reservable again.
    for (int i = 0; i < 4; i++) {
        ASSERT_TRUE(queue.try_reserve());
    }
    EXPECT_FALSE(queue.try_reserve());
    EXPECT_EQ(queue.reserve_failed_count(), 3u);
}

TEST(LogQueue, FullQueueKeepsEveryRecord) {
    LogQueue queue(4);
    for (uint64_t round = 0; round < 3; round++) {
        for (uint64_t i = 0; i < 4; i++) {
            ASSERT_TRUE(queue.try_reserve());
            queue.push(test::make_record(round * 4 + i, 1, 1));
        }
        EXPECT_FALSE(queue.try_reserve());
        UsageRecord out[8];
        ASSERT_EQ(queue.drain(out, 8), 4u);  // Wraps around the ring each round.
        for (uint64_t i = 0; i < 4; i++) {
            EXPECT_EQ(record_text(out[i].request_id), "req-" + std::to_string(round * 4 + i));
        }
        EXPECT_TRUE(queue.is_empty_for_consumer());
    }
}

TEST(LogQueue, RecordTextTruncates) {
    UsageRecord record{};
    const std::string long_model(500, 'm');
    record_set_text(record.model_requested, long_model);
    EXPECT_EQ(record_text(record.model_requested).size(), record_model_bytes_max);
    record_set_text(record.endpoint, "");
    EXPECT_EQ(record_text(record.endpoint), "");
}

TEST(LogQueue, TwoThreadsEveryRecordOnceInOrder) {
    constexpr uint64_t record_count = 1'000'000;
    LogQueue queue(256);
    std::thread producer([&queue] {
        for (uint64_t sequence = 0; sequence < record_count; sequence++) {
            while (!queue.try_reserve()) {
                std::this_thread::yield();  // The shard's 503.
            }
            UsageRecord record{};
            record.ts_ms = int64_t(sequence);
            record.total_tokens = uint32_t(sequence % 1000);
            queue.push(record);
        }
    });
    std::vector<UsageRecord> out(64);
    uint64_t expected = 0;
    uint64_t token_sum = 0;
    while (expected < record_count) {
        const uint32_t count = queue.drain(out.data(), uint32_t(out.size()));
        for (uint32_t i = 0; i < count; i++) {
            ASSERT_EQ(out[i].ts_ms, int64_t(expected));
            token_sum += out[i].total_tokens;
            expected++;
        }
        if (count == 0) {
            std::this_thread::yield();
        }
    }
    producer.join();
    EXPECT_EQ(expected, record_count);
    uint64_t want_sum = 0;
    for (uint64_t s = 0; s < record_count; s++) {
        want_sum += s % 1000;
    }
    EXPECT_EQ(token_sum, want_sum);
    EXPECT_EQ(queue.reserved_count(), 0u);
    EXPECT_EQ(queue.pushed_count(), record_count);
    EXPECT_EQ(queue.drained_count(), record_count);
    EXPECT_EQ(queue.depth(), 0u);
}

}  // namespace
}  // namespace rw
