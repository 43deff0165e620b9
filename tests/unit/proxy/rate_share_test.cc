// tests/unit/proxy/rate_share_test.cc — the shard side of proxy/rate_share.h without Redis:
// a limit with no lease admits its advance (RINGWAY_REDIS_ADVANCE_PERCENT of the limit, at
// least 1, per window) and then refuses; leased units are spent one by one; a reservation
// given back is this host's again; usage above a reservation is taken without a check; the
// others' concurrency counts nothing until a batch brought them; the Redis names.
#include "proxy/rate_share.h"

#include <gtest/gtest.h>

#include "proxy/admission.h"

namespace rw {
namespace {

class RateShareTest : public ::testing::Test {
protected:
    RateShareTest() : key_limits_(16), share_(config(), 16, 16, key_limits_) {}

    static const Config& config() {
        static Config config{};  // Defaults: advance 10%, Redis never reached (no thread).
        return config;
    }

    bool take(uint32_t slot, uint64_t amount, uint32_t limit) {
        return share_.take(RateKind::key_requests, slot, amount, limit, "0123abcd");
    }

    KeyLimits key_limits_;
    RateShare share_;
};

TEST_F(RateShareTest, WithoutALeaseOnlyTheAdvanceIsAdmitted) {
    EXPECT_TRUE(take(1, 1, 10));   // 10% of 10 is below 1: the advance is 1.
    EXPECT_FALSE(take(1, 1, 10));  // Then nothing until a lease comes.
    EXPECT_EQ(share_.stats().lease_refused, 1u);
    for (int i = 0; i < 10; i++) {  // rpm 100: an advance of 10.
        EXPECT_TRUE(take(2, 1, 100)) << i;
    }
    EXPECT_FALSE(take(2, 1, 100));
    EXPECT_FALSE(share_.stats().is_up);
    EXPECT_EQ(share_.mode(), ShareMode::local);  // The default RINGWAY_REDIS_FAILURE.
}

TEST_F(RateShareTest, LeasedUnitsAreSpentAndGivenBack) {
    EXPECT_TRUE(take(3, 1, 10));                     // The advance.
    share_.give_back(RateKind::key_requests, 3, 3);  // As a lease (or a refund) would.
    for (int i = 0; i < 3; i++) {
        EXPECT_TRUE(take(3, 1, 10)) << i;
    }
    EXPECT_FALSE(take(3, 1, 10));
    share_.give_back(RateKind::key_requests, 3, 1);  // A request that never went upstream.
    EXPECT_TRUE(take(3, 1, 10));
    EXPECT_FALSE(take(3, 1, 10));
    // A larger amount needs that many leased units at once.
    share_.give_back(RateKind::key_requests, 3, 4);
    EXPECT_FALSE(take(3, 5, 10));
    EXPECT_TRUE(take(3, 4, 10));
}

TEST_F(RateShareTest, UsageAboveTheReservationSpendsTheLeaseFirst) {
    share_.give_back(RateKind::key_tokens, 4, 100);
    share_.take_more(RateKind::key_tokens, 4, 60);  // 40 leased units left.
    EXPECT_TRUE(share_.take(RateKind::key_tokens, 4, 40, 1000, "k"));
    EXPECT_FALSE(share_.take(RateKind::key_tokens, 4, 200, 1000, "k"));  // Above the advance.
    share_.take_more(RateKind::key_tokens, 4, 500);  // No lease left: all of it is owed.
    EXPECT_TRUE(share_.take(RateKind::key_tokens, 4, 100, 1000, "k"));  // The advance (10%).
    EXPECT_FALSE(share_.take(RateKind::key_tokens, 4, 1, 1000, "k"));
}

TEST_F(RateShareTest, ConcurrencyCountsOthersOnlyOnceABatchBroughtThem) {
    EXPECT_TRUE(share_.concurrency_allows(5, 2, 2, "k"));
    EXPECT_FALSE(share_.concurrency_allows(5, 3, 2, "k"));
}

TEST(RateShareName, IsTheKeyHashAndAModelHash) {
    KeyHash hash{};
    for (uint32_t i = 0; i < hash.size(); i++) {
        hash[i] = uint8_t(i * 17);
    }
    char out[rate_share_name_bytes];
    const uint32_t bytes = rate_share_name(hash, {}, out);
    EXPECT_EQ(std::string_view(out, bytes), "00112233445566778899aabbccddeeff");
    const uint32_t with_model = rate_share_name(hash, "gpt-4o", out);
    ASSERT_EQ(with_model, 32u + 1 + 16);
    const std::string first(out, with_model);
    EXPECT_EQ(first[32], ':');
    (void)rate_share_name(hash, "gpt-4o-mini", out);
    EXPECT_NE(std::string(out, with_model), first);  // Another model, another bucket.
}

}  // namespace
}  // namespace rw
