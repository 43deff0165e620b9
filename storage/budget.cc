// storage/budget.cc — period arithmetic (UTC calendar, Howard Hinnant's civil date
// algorithms) and the tagged per-period words of BudgetTable (see budget.h).
#include "storage/budget.h"

#include <algorithm>

namespace rw {
namespace {

constexpr int64_t seconds_per_day = 86400;
constexpr uint32_t amount_bits = 51;
constexpr uint64_t amount_mask = (uint64_t(1) << amount_bits) - 1;
constexpr uint32_t tag_mask = (1u << budget_tag_bits) - 1;
// The top bit marks a word that names a period; a word never seeded (0) names none and
// counts as older than any period.
constexpr uint64_t tagged_bit = uint64_t(1) << 63;
static_assert(amount_bits + budget_tag_bits <= 63);

int64_t floor_div(int64_t a, int64_t b) {
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0);
}

// Days since 1970-01-01 of a civil date (proleptic Gregorian).
int64_t days_from_civil(int64_t year, uint32_t month, uint32_t day) {
    year -= month <= 2 ? 1 : 0;
    const int64_t era = floor_div(year, 400);
    const uint32_t yoe = uint32_t(year - era * 400);
    const uint32_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    const uint32_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + int64_t(doe) - 719468;
}

void civil_from_days(int64_t days, int64_t& year, uint32_t& month, uint32_t& day) {
    days += 719468;
    const int64_t era = floor_div(days, 146097);
    const uint32_t doe = uint32_t(days - era * 146097);
    const uint32_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const uint32_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const uint32_t mp = (5 * doy + 2) / 153;
    day = doy - (153 * mp + 2) / 5 + 1;
    month = mp < 10 ? mp + 3 : mp - 9;
    year = int64_t(yoe) + era * 400 + (month <= 2 ? 1 : 0);
}

uint64_t pack(uint32_t tag, int64_t amount) {
    return tagged_bit | (uint64_t(tag & tag_mask) << amount_bits) |
           uint64_t(std::clamp<int64_t>(amount, 0, budget_amount_max));
}
// The word's period tag, or a value no tag equals (tag_mask + 1) for a word never seeded.
uint32_t tag_part(uint64_t word) {
    return (word & tagged_bit) != 0 ? uint32_t(word >> amount_bits) & tag_mask : tag_mask + 1;
}
int64_t amount_part(uint64_t word) {
    return int64_t(word & amount_mask);
}
// True when `tag` names a later period than `than` (within half the tag space).
bool is_later(uint32_t tag, uint32_t than) {
    if (tag > tag_mask) {
        return false;  // Never seeded.
    }
    const uint32_t ahead = (tag - than) & tag_mask;
    return ahead != 0 && ahead < (1u << (budget_tag_bits - 1));
}

}  // namespace

std::string_view budget_period_name(BudgetPeriod period) {
    switch (period) {
        case BudgetPeriod::none: return "none";
        case BudgetPeriod::daily: return "daily";
        case BudgetPeriod::weekly: return "weekly";
        case BudgetPeriod::monthly: return "monthly";
    }
    RW_UNREACHABLE();
}

bool budget_period_parse(std::string_view text, BudgetPeriod& period) {
    for (const BudgetPeriod candidate :
         {BudgetPeriod::none, BudgetPeriod::daily, BudgetPeriod::weekly, BudgetPeriod::monthly}) {
        if (text == budget_period_name(candidate)) {
            period = candidate;
            return true;
        }
    }
    return false;
}

int64_t budget_period_index(BudgetPeriod period, int64_t now_s) {
    const int64_t days = floor_div(now_s, seconds_per_day);
    switch (period) {
        case BudgetPeriod::none: return 0;
        case BudgetPeriod::daily: return days;
        // 1970-01-01 was a Thursday: day -3 (1969-12-29) starts week 0.
        case BudgetPeriod::weekly: return floor_div(days + 3, 7);
        case BudgetPeriod::monthly: {
            int64_t year = 0;
            uint32_t month = 0;
            uint32_t day = 0;
            civil_from_days(days, year, month, day);
            return (year - 1970) * 12 + int64_t(month) - 1;
        }
    }
    RW_UNREACHABLE();
}

int64_t budget_period_start_s(BudgetPeriod period, int64_t index) {
    switch (period) {
        case BudgetPeriod::none: return 0;
        case BudgetPeriod::daily: return index * seconds_per_day;
        case BudgetPeriod::weekly: return (index * 7 - 3) * seconds_per_day;
        case BudgetPeriod::monthly: {
            const int64_t year = 1970 + floor_div(index, 12);
            const uint32_t month = uint32_t(index - floor_div(index, 12) * 12) + 1;
            return days_from_civil(year, month, 1) * seconds_per_day;
        }
    }
    RW_UNREACHABLE();
}

int64_t budget_period_next_start_s(BudgetPeriod period, int64_t now_s) {
    if (period == BudgetPeriod::none) {
        return 0;
    }
    return budget_period_start_s(period, budget_period_index(period, now_s) + 1);
}

void budget_day_text(int64_t unix_s, char* out) {
    int64_t year = 0;
    uint32_t month = 0;
    uint32_t day = 0;
    civil_from_days(floor_div(unix_s, seconds_per_day), year, month, day);
    const uint32_t y = uint32_t(std::clamp<int64_t>(year, 0, 9999));
    const char text[10] = {char('0' + y / 1000),
                           char('0' + y / 100 % 10),
                           char('0' + y / 10 % 10),
                           char('0' + y % 10),
                           '-',
                           char('0' + month / 10),
                           char('0' + month % 10),
                           '-',
                           char('0' + day / 10),
                           char('0' + day % 10)};
    std::copy(text, text + 10, out);
}

BudgetTable::BudgetTable(uint32_t slot_count)
    : words_(size_t(slot_count) * 2), seeded_(slot_count), slot_count_(slot_count) {
    RW_ASSERT(slot_count > 0);
}

int64_t BudgetTable::used(uint32_t slot, Word word, uint32_t tag) const {
    const uint64_t value = at(slot, word).load(std::memory_order_relaxed);
    return tag_part(value) == (tag & tag_mask) ? amount_part(value) : 0;
}

bool BudgetTable::try_add(uint32_t slot, Word word, uint32_t tag, int64_t amount, int64_t limit,
                          uint32_t& counted_tag) {
    RW_ASSERT(amount >= 0);
    std::atomic_ref<uint64_t> cell = at(slot, word);
    uint64_t value = cell.load(std::memory_order_relaxed);
    for (;;) {
        uint32_t word_tag = tag_part(value);
        int64_t current = amount_part(value);
        if (word_tag != (tag & tag_mask)) {
            if (is_later(word_tag, tag & tag_mask)) {
                counted_tag = word_tag;  // Another shard already turned the period.
            } else {
                word_tag = tag & tag_mask;  // This request turns it: the new period is empty.
                current = 0;
            }
        }
        if (limit >= 0 && current > limit - std::min(amount, limit + 1)) {
            return false;
        }
        if (cell.compare_exchange_weak(value, pack(word_tag, current + amount),
                                       std::memory_order_relaxed)) {
            counted_tag = word_tag;
            return true;
        }
    }
}

void BudgetTable::settle(uint32_t slot, Word word, uint32_t tag, int64_t reserved,
                         int64_t charged) {
    RW_ASSERT(reserved >= 0 && charged >= 0);
    std::atomic_ref<uint64_t> cell = at(slot, word);
    uint64_t value = cell.load(std::memory_order_relaxed);
    for (;;) {
        if (tag_part(value) != (tag & tag_mask)) {
            return;  // The period is over: its count is gone, and this request's with it.
        }
        const int64_t next = amount_part(value) + charged - reserved;
        if (cell.compare_exchange_weak(value, pack(tag, next), std::memory_order_relaxed)) {
            return;
        }
    }
}

void BudgetTable::seed(uint32_t slot, Word word, uint32_t tag, int64_t amount) {
    at(slot, word).store(pack(tag, amount), std::memory_order_relaxed);
}

}  // namespace rw
