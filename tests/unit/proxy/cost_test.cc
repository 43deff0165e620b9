// tests/unit/proxy/cost_test.cc — the cost rule of proxy/cost.h: golden rows per provider
// shape (tokens by kind times their own rate, one half-up rounding per row, the fee),
// a cached token never also charged at the input price, the bounds of the arithmetic, and
// the reservation bound never below any row it could become.
#include "proxy/cost.h"

#include <gtest/gtest.h>

#include "storage/snapshot.h"

namespace rw {
namespace {

// gpt-4o-mini as OpenAI lists it: $0.15 / $0.60 per Mtok, cached input $0.075.
PriceRates mini_rates() {
    PriceSpec spec;
    spec.model = "gpt-4o-mini";
    spec.input_per_mtok = 150'000'000;
    spec.output_per_mtok = 600'000'000;
    spec.has_cached_input = true;
    spec.cached_input_per_mtok = 75'000'000;
    return price_rates_resolve(spec);
}

TEST(CostNano, OpenAiChatWithCachedTokens) {
    // 2006 prompt of which 1920 cached, 300 completion, in nano-USD:
    // (86 * 150e6 + 1920 * 75e6 + 300 * 600e6) / 1e6 = 12900 + 144000 + 180000 = 336900.
    const int64_t cost = cost_nano(mini_rates(), CostTokens{2006, 300, 1920, 0, 0}, true);
    EXPECT_EQ(cost, 336'900);
    // Without the cached discount every prompt token is at the input price: never both.
    const int64_t uncached = cost_nano(mini_rates(), CostTokens{2006, 300, 0, 0, 0}, true);
    EXPECT_EQ(uncached, 2006 * 150 + 300 * 600);
    EXPECT_EQ(uncached - cost, 1920 * (150 - 75));
}

TEST(CostNano, ReasoningPricedApartOrAsOutput) {
    PriceSpec spec;
    spec.model = "o4-mini";
    spec.input_per_mtok = 1'100'000'000;   // $1.10
    spec.output_per_mtok = 4'400'000'000;  // $4.40
    // Not priced apart: reasoning is output.
    EXPECT_EQ(cost_nano(price_rates_resolve(spec), CostTokens{1000, 500, 0, 0, 400}, true),
              1000 * 1100 + 500 * 4400);
    spec.has_reasoning = true;
    spec.reasoning_per_mtok = 8'800'000'000;
    EXPECT_EQ(cost_nano(price_rates_resolve(spec), CostTokens{1000, 500, 0, 0, 400}, true),
              1000 * 1100 + 100 * 4400 + 400 * 8800);
}

TEST(CostNano, AnthropicCacheReadsAndWrites) {
    // Claude Sonnet 4: $3 input, $15 output, cache reads $0.30, 5-minute cache writes $3.75.
    PriceSpec spec;
    spec.model = "claude-sonnet-4*";
    spec.input_per_mtok = 3'000'000'000;
    spec.output_per_mtok = 15'000'000'000;
    spec.has_cached_input = true;
    spec.cached_input_per_mtok = 300'000'000;
    spec.has_cache_write = true;
    spec.cache_write_per_mtok = 3'750'000'000;
    // input 12, cache writes 100, cache reads 2000 (prompt 2112), output 6.
    EXPECT_EQ(cost_nano(price_rates_resolve(spec), CostTokens{2112, 6, 2000, 100, 0}, true),
              12 * 3000 + 100 * 3750 + 2000 * 300 + 6 * 15000);
    // Cache writes without their own rate cost the input rate.
    spec.has_cache_write = false;
    EXPECT_EQ(cost_nano(price_rates_resolve(spec), CostTokens{2112, 6, 2000, 100, 0}, true),
              112 * 3000 + 2000 * 300 + 6 * 15000);
}

TEST(CostNano, OneHalfUpRoundingPerRowAndTheFee) {
    PriceRates rates;
    rates.input_per_mtok = 1;  // 10^-9 USD per Mtok: a token costs 10^-6 nano-USD.
    rates.output_per_mtok = 3;
    // 499,999 input tokens: 0.499999 nano → 0; 500,000 → 0.5 → 1 (half up).
    EXPECT_EQ(cost_nano(rates, CostTokens{499'999, 0, 0, 0, 0}, true), 0);
    EXPECT_EQ(cost_nano(rates, CostTokens{500'000, 0, 0, 0, 0}, true), 1);
    // The kinds are summed before the one rounding: 300,000 * 1 + 100,000 * 3 = 0.6 → 1,
    // where rounding each kind (0.3 → 0, 0.3 → 0) would give 0.
    EXPECT_EQ(cost_nano(rates, CostTokens{300'000, 100'000, 0, 0, 0}, true), 1);
    rates.per_request = 2'500'000;  // $0.0025 per request, added after the rounding.
    EXPECT_EQ(cost_nano(rates, CostTokens{500'000, 0, 0, 0, 0}, true), 2'500'001);
    EXPECT_EQ(cost_nano(rates, CostTokens{}, true), 2'500'000);
    // A row billed nothing pays no fee either.
    EXPECT_EQ(cost_nano(rates, CostTokens{500'000, 0, 0, 0, 0}, false), 0);
}

TEST(CostNano, PartsAboveTheirTotalsAreClampedAndHugeRowsFit) {
    // A cached count above the prompt cannot make a token cost twice or go negative.
    EXPECT_EQ(cost_nano(mini_rates(), CostTokens{100, 0, 500, 500, 0}, true), 100 * 75);
    PriceRates top;
    top.input_per_mtok = top.output_per_mtok = top.cached_input_per_mtok =
        top.cache_write_per_mtok = top.reasoning_per_mtok = price_per_mtok_nano_max;
    top.per_request = price_per_request_nano_max;
    const int64_t cost =
        cost_nano(top, CostTokens{UINT64_MAX, UINT64_MAX, UINT64_MAX, 0, UINT64_MAX}, true);
    // 2 * (2^32 - 1) tokens at $10,000 per Mtok (10^13 nano / 10^6 tokens = 10^7 nano a
    // token), plus the $1,000 fee.
    EXPECT_EQ(cost, int64_t{2} * UINT32_MAX * 10'000'000 + price_per_request_nano_max);
}

TEST(CostUpperBound, NeverBelowAnySplitOfTheSameCounts) {
    PriceSpec spec;
    spec.model = "m";
    spec.input_per_mtok = 1'000'000;
    spec.output_per_mtok = 2'000'001;
    spec.has_cache_write = true;
    spec.cache_write_per_mtok = 1'250'000;  // Dearer than input.
    spec.has_reasoning = true;
    spec.reasoning_per_mtok = 3'000'000;
    spec.per_request = 7;
    const PriceRates rates = price_rates_resolve(spec);
    const int64_t bound = cost_upper_bound_nano(rates, 1001, 333);
    for (uint64_t cached = 0; cached <= 1001; cached += 77) {
        for (uint64_t write = 0; write + cached <= 1001; write += 91) {
            for (uint64_t reasoning = 0; reasoning <= 333; reasoning += 37) {
                EXPECT_LE(cost_nano(rates, CostTokens{1001, 333, cached, write, reasoning}, true),
                          bound);
            }
        }
    }
    // All prompt as cache writes and all output as reasoning is the dearest split; the
    // bound rounds up where the row rounds half up.
    EXPECT_EQ(bound,
              (int64_t{1001} * 1'250'000 + int64_t{333} * 3'000'000 + 999'999) / 1'000'000 + 7);
    EXPECT_EQ(cost_upper_bound_nano(rates, UINT64_MAX, UINT64_MAX), INT64_MAX);
}

TEST(CostReservationBound, LooksUpThePriceInTheSnapshot) {
    PriceEntry entry;
    entry.id = 4;
    entry.model = "gpt-4o-mini";
    entry.effective_from_ms = 1000;
    entry.rates = mini_rates();
    std::vector<PriceEntry> prices;
    prices.push_back(entry);
    const Snapshot snapshot({}, {}, PriceTable(std::move(prices)));
    int64_t bound = 0;
    int64_t price_id = 0;
    ASSERT_TRUE(
        cost_reservation_bound(snapshot, "gpt-4o-mini", 9, 5000, 1000, 100, bound, price_id));
    EXPECT_EQ(price_id, 4);
    EXPECT_EQ(bound, 1000 * 150 + 100 * 600);
    EXPECT_FALSE(cost_reservation_bound(snapshot, "gpt-4o", 9, 5000, 1000, 100, bound, price_id));
    EXPECT_FALSE(
        cost_reservation_bound(snapshot, "gpt-4o-mini", 9, 999, 1000, 100, bound, price_id));
}

}  // namespace
}  // namespace rw
