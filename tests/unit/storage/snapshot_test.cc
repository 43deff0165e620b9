// tests/unit/storage/snapshot_test.cc — Snapshot lookup, epoch-based retire (nothing
// freed while a reader may hold it), swaps under concurrent readers, and quota counters
// that survive reloads.
#include "storage/snapshot.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "storage/keys.h"

namespace rw {
namespace {

std::unique_ptr<Snapshot> make_snapshot(int64_t key_count, int64_t id_base) {
    std::vector<KeyEntry> keys;
    for (int64_t i = 0; i < key_count; i++) {
        KeyEntry key;
        key.id = id_base + i;
        key.hash = key_hash("secret-" + std::to_string(i));
        key.is_active = true;
        keys.push_back(std::move(key));
    }
    return std::make_unique<Snapshot>(std::move(keys), std::vector<ChannelEntry>{});
}

TEST(Snapshot, FindKeyByHash) {
    const std::unique_ptr<Snapshot> snapshot = make_snapshot(1000, 1);
    for (int64_t i = 0; i < 1000; i++) {
        const KeyEntry* key = snapshot->find_key(key_hash("secret-" + std::to_string(i)));
        ASSERT_NE(key, nullptr);
        EXPECT_EQ(key->id, i + 1);
    }
    EXPECT_EQ(snapshot->find_key(key_hash("secret-1000")), nullptr);
    EXPECT_EQ(snapshot->find_key(KeyHash{}), nullptr);
    ASSERT_NE(snapshot->find_key_by_id(500), nullptr);
    EXPECT_EQ(snapshot->find_key_by_id(500)->id, 500);
    EXPECT_EQ(snapshot->find_key_by_id(5000), nullptr);
    const Snapshot empty({}, {});
    EXPECT_EQ(empty.find_key(key_hash("x")), nullptr);
}

TEST(SnapshotPublisher, RetiresOnlyAfterEveryReaderMovedOn) {
    SnapshotPublisher publisher(2);
    EXPECT_EQ(publisher.acquire(0), nullptr);
    publisher.publish(make_snapshot(1, 1));
    const Snapshot* first = publisher.acquire(0);  // Reader 0 holds epoch 1.
    ASSERT_NE(first, nullptr);
    EXPECT_EQ(first->epoch(), 1u);
    publisher.publish(make_snapshot(1, 2));
    EXPECT_EQ(publisher.retired_count(), 1u);       // Reader 0 may still use epoch 1.
    const Snapshot* second = publisher.acquire(1);  // Reader 1 only ever saw epoch 2.
    EXPECT_EQ(second->epoch(), 2u);
    EXPECT_EQ(publisher.collect(), 0u);
    EXPECT_EQ(first->keys()[0].id, 1);             // Still alive (ASan would object).
    EXPECT_EQ(publisher.acquire(0)->epoch(), 2u);  // Reader 0 moves on.
    EXPECT_EQ(publisher.collect(), 1u);
    EXPECT_EQ(publisher.retired_count(), 0u);
    // A reader keeping an old snapshot across turns says so with acknowledge().
    publisher.publish(make_snapshot(1, 3));
    publisher.acknowledge(0, 2);
    publisher.quiesce(1);
    EXPECT_EQ(publisher.collect(), 0u);
    publisher.quiesce(0);
    EXPECT_EQ(publisher.collect(), 1u);
}

TEST(SnapshotPublisher, SwapWhileReadersRun) {
    constexpr uint32_t reader_count = 3;
    SnapshotPublisher publisher(reader_count);
    publisher.publish(make_snapshot(64, 1000));
    std::atomic<bool> is_done{false};
    std::atomic<uint64_t> lookups{0};
    std::atomic<uint32_t> started{0};  // Readers running (each reads at least once).
    std::vector<std::thread> readers;
    for (uint32_t r = 0; r < reader_count; r++) {
        readers.emplace_back([&, r] {
            const KeyHash probe = key_hash("secret-7");
            uint64_t local = 0;
            uint64_t last_epoch = 0;
            started.fetch_add(1);
            do {
                const Snapshot* snapshot = publisher.acquire(r);  // Once per "loop turn".
                ASSERT_GE(snapshot->epoch(), last_epoch);         // Never goes back.
                last_epoch = snapshot->epoch();
                const KeyEntry* key = snapshot->find_key(probe);
                ASSERT_NE(key, nullptr);
                // Every snapshot is built with ids base + i and base = epoch * 1000.
                ASSERT_EQ(key->id, int64_t(snapshot->epoch()) * 1000 + 7);
                local++;
            } while (!is_done.load(std::memory_order_relaxed));
            publisher.quiesce(r);
            lookups.fetch_add(local);
        });
    }
    // The swaps start once every reader runs (on a loaded machine a reader may otherwise
    // first be scheduled after the last publish, and nothing would be read during swaps).
    while (started.load() < reader_count) {
        std::this_thread::yield();
    }
    for (uint64_t epoch = 2; epoch <= 2000; epoch++) {
        publisher.publish(make_snapshot(64, int64_t(epoch) * 1000));
    }
    is_done.store(true);
    for (std::thread& reader : readers) {
        reader.join();
    }
    publisher.collect();
    EXPECT_EQ(publisher.retired_count(), 0u);
    EXPECT_EQ(publisher.epoch(), 2000u);
    EXPECT_GE(lookups.load(), uint64_t(reader_count));
}

TEST(QuotaTable, SlotsAreStableAndBounded) {
    QuotaTable quotas(2);
    const Result<uint32_t> a = quotas.slot_for_key(10, 100);
    ASSERT_TRUE(a.ok());
    quotas.add_tokens(a.value, 5);
    const Result<uint32_t> again = quotas.slot_for_key(10, 0);  // Reload: no reset.
    EXPECT_EQ(again.value, a.value);
    EXPECT_EQ(quotas.used_tokens(a.value), 105);
    EXPECT_TRUE(quotas.slot_for_key(11, 0).ok());
    EXPECT_FALSE(quotas.slot_for_key(12, 0).ok());
    EXPECT_EQ(quotas.assigned_count(), 2u);
}

}  // namespace
}  // namespace rw
