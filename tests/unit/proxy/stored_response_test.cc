// tests/unit/proxy/stored_response_test.cc — the shared table of stored response ids
// (proxy/stored_response.h): an id found with its key, channel and model; a full set
// forgets its oldest; forget; and, with writers and readers on several threads at once on
// the same sets, a reader never sees an entry torn between two writes (the seqlock).
#include "proxy/stored_response.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace rw {
namespace {

std::string model_of(int64_t key_id) {
    return "model-" + std::to_string(key_id);
}

TEST(StoredResponses, FindsWhatWasPutAndForgets) {
    StoredResponses table(64);
    table.put("resp_abc", 7, 3, "gpt-4.1-mini");
    StoredResponse found;
    char model[record_model_bytes_max + 1];
    ASSERT_TRUE(table.find("resp_abc", found, model));
    EXPECT_EQ(found.key_id, 7);
    EXPECT_EQ(found.channel_id, 3);
    EXPECT_EQ(found.model_sent, "gpt-4.1-mini");
    EXPECT_FALSE(table.find("resp_abd", found, model));
    EXPECT_FALSE(table.find("resp_ab", found, model));
    table.put("resp_abc", 8, 4, "o3");  // The same id again: refreshed in place.
    ASSERT_TRUE(table.find("resp_abc", found, model));
    EXPECT_EQ(found.key_id, 8);
    EXPECT_EQ(found.model_sent, "o3");
    table.forget("resp_abc");
    EXPECT_FALSE(table.find("resp_abc", found, model));
}

TEST(StoredResponses, FullSetForgetsItsOldest) {
    StoredResponses table(StoredResponses::ways);  // One set: every id shares it.
    for (int64_t i = 0; i < 6; i++) {
        table.put("resp_" + std::to_string(i), i + 1, 1, "m");
    }
    StoredResponse found;
    char model[record_model_bytes_max + 1];
    EXPECT_FALSE(table.find("resp_0", found, model));
    EXPECT_FALSE(table.find("resp_1", found, model));
    for (int64_t i = 2; i < 6; i++) {
        ASSERT_TRUE(table.find("resp_" + std::to_string(i), found, model)) << i;
        EXPECT_EQ(found.key_id, i + 1);
    }
}

// Two writers keep rewriting the same ids (each time with a key, channel and model that
// belong together) while two readers look them up: every entry a reader finds is whole.
TEST(StoredResponses, ReadersNeverSeeATornEntry) {
    StoredResponses table(2 * StoredResponses::ways);  // Two sets: writers and readers meet.
    std::vector<std::string> ids;
    for (int i = 0; i < 6; i++) {
        ids.push_back("resp_" + std::string(40, static_cast<char>('a' + i)));
    }
    std::atomic<bool> is_done{false};
    std::atomic<uint64_t> found_count{0};
    std::atomic<uint64_t> torn_count{0};
    std::vector<std::thread> threads;
    for (int writer = 0; writer < 2; writer++) {
        threads.emplace_back([&, writer] {
            for (int64_t round = 1; round <= 300000; round++) {
                const int64_t key_id = round * 2 + writer;
                const std::string& id = ids[static_cast<size_t>(round) % ids.size()];
                table.put(id, key_id, key_id * 3, model_of(key_id));
                if (round % 7 == 0) {
                    table.forget(id);
                }
            }
        });
    }
    for (int reader = 0; reader < 2; reader++) {
        threads.emplace_back([&] {
            StoredResponse found;
            char model[record_model_bytes_max + 1];
            while (!is_done.load(std::memory_order_relaxed)) {
                for (const std::string& id : ids) {
                    if (!table.find(id, found, model)) {
                        continue;
                    }
                    found_count.fetch_add(1, std::memory_order_relaxed);
                    if (found.channel_id != found.key_id * 3 ||
                        found.model_sent != model_of(found.key_id)) {
                        torn_count.fetch_add(1, std::memory_order_relaxed);
                    }
                }
            }
        });
    }
    threads[0].join();
    threads[1].join();
    is_done.store(true);
    threads[2].join();
    threads[3].join();
    EXPECT_GT(found_count.load(), 0u);
    EXPECT_EQ(torn_count.load(), 0u);
}

}  // namespace
}  // namespace rw
