// storage/budget.h — budget periods and the per-period counters every shard shares.
//
// A key's token quota and money budget hold over its period: `none` (lifetime), `daily`,
// `weekly` (ISO weeks, from Monday) or `monthly`, UTC and calendar-aligned. A period is
// named by its index (days, weeks or months since the epoch; 0 for `none`).
//
// BudgetTable holds, per key (indexed by KeyEntry::quota_slot, like QuotaTable), two words:
// the tokens and the nano-USD used in the key's current period plus what requests in flight
// reserved. Each word carries the low bits of its period index as a tag above the amount,
// so a period rolls over in the same compare-and-swap that reserves in it, with no lock and
// no second word: a reservation made under a newer tag starts from 0, and a request admitted
// in a period that is over settles nothing into the word (its period's count went with it).
// Control plane seeds a slot from the committed usage of the current period (daily_usage)
// when it first loads the key or when the key's period changes.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "arena/zero_pages.h"
#include "core/assert.h"

namespace rw {

enum class BudgetPeriod : uint8_t { none, daily, weekly, monthly };

[[nodiscard]] std::string_view budget_period_name(BudgetPeriod period);
[[nodiscard]] bool budget_period_parse(std::string_view text, BudgetPeriod& period);

// The index of the period holding unix second `now_s` (0 for none).
[[nodiscard]] int64_t budget_period_index(BudgetPeriod period, int64_t now_s);
// The unix second period `index` starts at (0 for none).
[[nodiscard]] int64_t budget_period_start_s(BudgetPeriod period, int64_t index);
// The unix second the period after the one holding now_s starts; 0 for none (no end).
[[nodiscard]] int64_t budget_period_next_start_s(BudgetPeriod period, int64_t now_s);
// 'YYYY-MM-DD' of a unix second (daily_usage's day), into out[10].
void budget_day_text(int64_t unix_s, char* out);

// The most a period may count in one word: 2^51 - 1 (tokens, or nano-USD: about 2.25
// million USD). Budgets and quotas over a period are refused above it (keys.cc).
constexpr int64_t budget_amount_max = (int64_t(1) << 51) - 1;
constexpr uint32_t budget_tag_bits = 12;

class BudgetTable {
public:
    enum Word : uint8_t { tokens = 0, nano = 1 };

    explicit BudgetTable(uint32_t slot_count);

    // The tag of a period index (its low bits; a key idle for exactly 4096 periods in one
    // process run would find its old count).
    [[nodiscard]] static uint32_t tag_of(int64_t period_index) {
        return uint32_t(uint64_t(period_index) & ((1u << budget_tag_bits) - 1));
    }

    // What the word counts for the period tagged `tag` (0 when it holds another period).
    [[nodiscard]] int64_t used(uint32_t slot, Word word, uint32_t tag) const;
    // Adds `amount` to the period tagged `tag` when used + amount <= limit (limit < 0:
    // none); a word still tagged with an older period starts again from 0. A word already
    // tagged with a newer period (another shard's clock turned first) takes the amount in
    // that period. Returns false when it does not fit; else the tag it was counted under.
    [[nodiscard]] bool try_add(uint32_t slot, Word word, uint32_t tag, int64_t amount,
                               int64_t limit, uint32_t& counted_tag);
    // Replaces `reserved` by `charged` in the period tagged `tag`; nothing when the word has
    // moved on to another period. The amount never goes below 0 nor above the max.
    void settle(uint32_t slot, Word word, uint32_t tag, int64_t reserved, int64_t charged);
    // Control plane: sets the word to `amount` in period `tag`.
    void seed(uint32_t slot, Word word, uint32_t tag, int64_t amount);

    // Control plane only: the period a slot was last seeded for, so a reload reseeds a key
    // whose period changed. 0xFF: never seeded.
    [[nodiscard]] uint8_t seeded_period(uint32_t slot) const {
        return uint8_t(seeded_[slot] - 1);  // Stored plus one: a zero page reads 0xFF.
    }
    void set_seeded_period(uint32_t slot, uint8_t period) { seeded_[slot] = uint8_t(period + 1); }

private:
    std::atomic_ref<uint64_t> at(uint32_t slot, Word word) const {
        RW_ASSERT(slot < slot_count_);
        return std::atomic_ref<uint64_t>(words_[size_t(slot) * 2 + word]);
    }

    ZeroPages<uint64_t> words_;  // Two per slot; resident only where keys have budgets.
    // Period + 1 per slot (0: never seeded) on zero pages: filled with 0xFF from the heap it
    // was a whole resident MiB (a byte per key slot) in every idle gateway.
    ZeroPages<uint8_t> seeded_;
    uint32_t slot_count_;
};

}  // namespace rw
