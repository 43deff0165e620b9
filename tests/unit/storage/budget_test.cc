// tests/unit/storage/budget_test.cc — budget periods (UTC calendar: days, ISO weeks from
// Monday, months) and BudgetTable's tagged per-period words: reserve within the limit,
// roll over to an empty period in the same CAS, settle only into the period reserved in.
#include "storage/budget.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace rw {
namespace {

// 2026-12-05 12:00:00 UTC is a Saturday.
constexpr int64_t saturday_noon = 1796472000;

TEST(BudgetPeriod, NamesRoundTrip) {
    for (const BudgetPeriod period :
         {BudgetPeriod::none, BudgetPeriod::daily, BudgetPeriod::weekly, BudgetPeriod::monthly}) {
        BudgetPeriod parsed = BudgetPeriod::none;
        ASSERT_TRUE(budget_period_parse(budget_period_name(period), parsed));
        EXPECT_EQ(parsed, period);
    }
    BudgetPeriod parsed = BudgetPeriod::none;
    EXPECT_FALSE(budget_period_parse("yearly", parsed));
}

TEST(BudgetPeriod, BoundsAreUtcCalendarAligned) {
    char day[11] = {};
    budget_day_text(saturday_noon, day);
    EXPECT_STREQ(day, "2026-12-05");
    // Daily: midnight to midnight.
    EXPECT_EQ(budget_period_start_s(BudgetPeriod::daily,
                                    budget_period_index(BudgetPeriod::daily, saturday_noon)),
              saturday_noon - 43200);
    EXPECT_EQ(budget_period_next_start_s(BudgetPeriod::daily, saturday_noon),
              saturday_noon + 43200);
    // Weekly: Monday 2026-11-30 00:00 to Monday 2026-12-07 00:00.
    const int64_t week = budget_period_index(BudgetPeriod::weekly, saturday_noon);
    budget_day_text(budget_period_start_s(BudgetPeriod::weekly, week), day);
    EXPECT_STREQ(day, "2026-11-30");
    EXPECT_EQ(budget_period_next_start_s(BudgetPeriod::weekly, saturday_noon),
              saturday_noon + 43200 + 86400);
    // Monthly: 2026-12-01 to 2027-01-01 (across a year).
    const int64_t month = budget_period_index(BudgetPeriod::monthly, saturday_noon);
    budget_day_text(budget_period_start_s(BudgetPeriod::monthly, month), day);
    EXPECT_STREQ(day, "2026-12-01");
    budget_day_text(budget_period_next_start_s(BudgetPeriod::monthly, saturday_noon), day);
    EXPECT_STREQ(day, "2027-01-01");
    // February of a leap year ends on the 29th.
    const int64_t leap_feb = 1709208000;  // 2024-02-29 12:00 UTC
    budget_day_text(budget_period_next_start_s(BudgetPeriod::monthly, leap_feb), day);
    EXPECT_STREQ(day, "2024-03-01");
    // A second before a boundary belongs to the period before it.
    const int64_t midnight = saturday_noon + 43200;
    EXPECT_EQ(budget_period_index(BudgetPeriod::daily, midnight - 1) + 1,
              budget_period_index(BudgetPeriod::daily, midnight));
    EXPECT_EQ(budget_period_index(BudgetPeriod::none, midnight), 0);
    EXPECT_EQ(budget_period_next_start_s(BudgetPeriod::none, midnight), 0);
}

TEST(BudgetTable, ReservesWithinTheLimitAndSettles) {
    BudgetTable table(4);
    const uint32_t tag = BudgetTable::tag_of(20000);
    uint32_t counted = 0;
    ASSERT_TRUE(table.try_add(1, BudgetTable::nano, tag, 600, 1000, counted));
    EXPECT_EQ(counted, tag);
    EXPECT_FALSE(table.try_add(1, BudgetTable::nano, tag, 401, 1000, counted));
    ASSERT_TRUE(table.try_add(1, BudgetTable::nano, tag, 400, 1000, counted));
    EXPECT_EQ(table.used(1, BudgetTable::nano, tag), 1000);
    table.settle(1, BudgetTable::nano, tag, 600, 100);  // Cost less than reserved.
    EXPECT_EQ(table.used(1, BudgetTable::nano, tag), 500);
    EXPECT_EQ(table.used(1, BudgetTable::tokens, tag), 0);  // The other word is its own.
    EXPECT_FALSE(table.try_add(1, BudgetTable::nano, tag, 2000, 1000, counted));
}

TEST(BudgetTable, ANewPeriodStartsEmptyAndOldSettlesStayOut) {
    BudgetTable table(2);
    const uint32_t old_tag = BudgetTable::tag_of(20000);
    const uint32_t new_tag = BudgetTable::tag_of(20001);
    uint32_t counted = 0;
    ASSERT_TRUE(table.try_add(0, BudgetTable::nano, old_tag, 900, 1000, counted));
    // The period turns: the first reservation of the new one sees it empty.
    ASSERT_TRUE(table.try_add(0, BudgetTable::nano, new_tag, 700, 1000, counted));
    EXPECT_EQ(counted, new_tag);
    EXPECT_EQ(table.used(0, BudgetTable::nano, new_tag), 700);
    EXPECT_EQ(table.used(0, BudgetTable::nano, old_tag), 0);
    // The old period's request settles: nothing moves in the new period.
    table.settle(0, BudgetTable::nano, old_tag, 900, 800);
    EXPECT_EQ(table.used(0, BudgetTable::nano, new_tag), 700);
    // A request whose clock still reads the old period counts in the newer one.
    ASSERT_TRUE(table.try_add(0, BudgetTable::nano, old_tag, 300, 1000, counted));
    EXPECT_EQ(counted, new_tag);
    EXPECT_EQ(table.used(0, BudgetTable::nano, new_tag), 1000);
    // Seeding sets the period's count.
    table.seed(0, BudgetTable::tokens, new_tag, 42);
    EXPECT_EQ(table.used(0, BudgetTable::tokens, new_tag), 42);
}

TEST(BudgetTable, SlotsStartNeverSeededAndKeepEveryPeriod) {
    BudgetTable table(3);
    for (uint32_t slot = 0; slot < 3; slot++) {
        EXPECT_EQ(table.seeded_period(slot), 0xFF) << slot;  // Never seeded.
    }
    for (const uint8_t period : {uint8_t(0), uint8_t(1), uint8_t(0xFE), uint8_t(0xFF)}) {
        table.set_seeded_period(1, period);
        EXPECT_EQ(table.seeded_period(1), period);
    }
    EXPECT_EQ(table.seeded_period(0), 0xFF);
    EXPECT_EQ(table.seeded_period(2), 0xFF);
}

// Threads race to reserve on one word: the sum admitted never passes the limit.
TEST(BudgetTable, ConcurrentReservationsNeverPassTheLimit) {
    BudgetTable table(1);
    const uint32_t tag = BudgetTable::tag_of(7);
    std::atomic<int64_t> admitted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++) {
        threads.emplace_back([&] {
            for (int i = 0; i < 10000; i++) {
                uint32_t counted = 0;
                if (table.try_add(0, BudgetTable::nano, tag, 7, 100000, counted)) {
                    admitted += 7;
                }
            }
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(admitted.load(), 100000 / 7 * 7);
    EXPECT_EQ(table.used(0, BudgetTable::nano, tag), admitted.load());
}

}  // namespace
}  // namespace rw
