// proxy/cost.cc — the cost rule and the reservation bound (see cost.h). Integer arithmetic
// only: products of 32-bit token counts and rates below 2^44 are summed in 128 bits.
#include "proxy/cost.h"

#include <algorithm>

#include "core/assert.h"
#include "storage/snapshot.h"

namespace rw {
namespace {

using Wide = unsigned __int128;

constexpr uint64_t tokens_per_mtok = 1'000'000;

// The largest row: five kinds of 2^32 - 1 tokens at the top rate, plus the top fee.
constexpr Wide cost_row_max =
    (Wide(UINT32_MAX) * 5 * Wide(price_per_mtok_nano_max) + tokens_per_mtok / 2) / tokens_per_mtok +
    Wide(price_per_request_nano_max);
static_assert(cost_row_max < Wide(INT64_MAX) / 16, "a row's cost fits int64 with room");

uint64_t clamp32(uint64_t value) {
    return std::min<uint64_t>(value, UINT32_MAX);
}

bool rates_are_valid(const PriceRates& rates) {
    for (const int64_t rate :
         {rates.input_per_mtok, rates.output_per_mtok, rates.cached_input_per_mtok,
          rates.cache_write_per_mtok, rates.reasoning_per_mtok}) {
        if (rate < 0 || rate > price_per_mtok_nano_max) {
            return false;
        }
    }
    return rates.per_request >= 0 && rates.per_request <= price_per_request_nano_max;
}

}  // namespace

int64_t cost_nano(const PriceRates& rates, const CostTokens& tokens, bool is_charged) {
    RW_ASSERT(rates_are_valid(rates));  // price_spec_check ran before the snapshot took it.
    if (!is_charged) {
        return 0;
    }
    const uint64_t prompt = clamp32(tokens.prompt_tokens);
    const uint64_t completion = clamp32(tokens.completion_tokens);
    const uint64_t cached = std::min(clamp32(tokens.cached_input_tokens), prompt);
    const uint64_t cache_write = std::min(clamp32(tokens.cache_write_tokens), prompt - cached);
    const uint64_t reasoning = std::min(clamp32(tokens.reasoning_tokens), completion);
    const Wide sum = Wide(prompt - cached - cache_write) * Wide(rates.input_per_mtok) +
                     Wide(cached) * Wide(rates.cached_input_per_mtok) +
                     Wide(cache_write) * Wide(rates.cache_write_per_mtok) +
                     Wide(completion - reasoning) * Wide(rates.output_per_mtok) +
                     Wide(reasoning) * Wide(rates.reasoning_per_mtok);
    // The one rounding of the row: half up, to the nano-USD.
    const Wide rounded = (sum + tokens_per_mtok / 2) / tokens_per_mtok;
    const Wide cost = rounded + Wide(rates.per_request);
    RW_ASSERT(cost <= cost_row_max);
    return int64_t(cost);
}

int64_t cost_of_record(const PriceRates& rates, const UsageRecord& record, bool is_charged) {
    return cost_nano(
        rates,
        CostTokens{record.prompt_tokens, record.completion_tokens, record.cached_input_tokens,
                   record.cache_write_tokens, record.reasoning_tokens},
        is_charged);
}

int64_t cost_upper_bound_nano(const PriceRates& rates, uint64_t prompt_tokens_max,
                              uint64_t output_tokens_max) {
    RW_ASSERT(rates_are_valid(rates));
    const int64_t input_rate =
        std::max({rates.input_per_mtok, rates.cached_input_per_mtok, rates.cache_write_per_mtok});
    const int64_t output_rate = std::max(rates.output_per_mtok, rates.reasoning_per_mtok);
    // 64-bit counts times rates below 2^44 fit in 128 bits with room for the sum.
    const Wide sum =
        Wide(prompt_tokens_max) * Wide(input_rate) + Wide(output_tokens_max) * Wide(output_rate);
    const Wide bound = (sum + tokens_per_mtok - 1) / tokens_per_mtok + Wide(rates.per_request);
    return bound > Wide(INT64_MAX) ? INT64_MAX : int64_t(bound);
}

bool cost_reservation_bound(const Snapshot& snapshot, std::string_view model_sent,
                            int64_t channel_id, int64_t started_unix_ms, uint64_t prompt_tokens_max,
                            uint64_t output_tokens_max, int64_t& bound_nano, int64_t& price_id) {
    const PriceEntry* price = snapshot.prices().find(model_sent, channel_id, started_unix_ms);
    if (price == nullptr) {
        return false;
    }
    bound_nano = cost_upper_bound_nano(price->rates, prompt_tokens_max, output_tokens_max);
    price_id = price->id;
    RW_ASSERT(bound_nano >= 0);
    return true;
}

}  // namespace rw
