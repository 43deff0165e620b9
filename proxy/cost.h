// proxy/cost.h — the money of a request: what a usage row costs under a price, and the
// upper bound a budget reservation needs before the upstream call. Pure integer functions
// (no clock, no I/O, no floating point), unit-tested in tests/unit/proxy/cost_test.cc.
// Any thread.
//
// The rule, one rounding per row: every token kind is multiplied by its rate (nano-USD
// per million tokens) and the products are summed exactly (128-bit); the sum is divided by
// one million once, rounding half up to the nano-USD; the per-request fee is then added.
// Each token is priced once, at its own kind's rate (usage.h: the kinds are parts of
// prompt and completion):
//   cost = round_half_up(( (prompt - cached - cache_write) * input
//                          + cached * cached_input + cache_write * cache_write
//                          + (completion - reasoning) * output + reasoning * reasoning )
//                        / 10^6) + per_request
// A row that is billed nothing (an upstream error without usage) costs 0, fee included.
//
// Where it runs: on the shard, when the request's record is built (request.cc), from the
// snapshot's price table. The shard already holds everything the rule needs, a budget
// settle (admission) must use the same number the row gets, and the writer — the one
// thread every row passes through — stays free of pricing work.
#pragma once

#include <cstdint>
#include <string_view>

#include "storage/prices.h"
#include "storage/records.h"

namespace rw {

class Snapshot;

// The token counts of one row by kind. The parts must not exceed their totals.
struct CostTokens {
    uint64_t prompt_tokens = 0;
    uint64_t completion_tokens = 0;
    uint64_t cached_input_tokens = 0;  // Of prompt.
    uint64_t cache_write_tokens = 0;   // Of prompt.
    uint64_t reasoning_tokens = 0;     // Of completion.
};

// The cost in nano-USD of `tokens` under `rates` by the rule above; per_request is added
// when is_charged (false: an upstream error without usage, which costs nothing). Tokens
// above 2^32 per kind are clamped (a record's counters are 32-bit), so the result always
// fits: at most ~2.2 * 10^17 nano-USD.
[[nodiscard]] int64_t cost_nano(const PriceRates& rates, const CostTokens& tokens, bool is_charged);

// cost_nano over a record's own counters (what usage_record_build stores).
[[nodiscard]] int64_t cost_of_record(const PriceRates& rates, const UsageRecord& record,
                                     bool is_charged);

// For a budget reservation at admission: an upper bound of what a request can cost when
// its prompt is at most prompt_tokens_max tokens and its output at most
// output_tokens_max, whatever kinds the provider reports them as — each prompt token at
// the dearest input-side rate, each output token at the dearest output-side rate, rounded
// up, plus the fee. Never less than cost_nano for any split of those counts. Saturates at
// INT64_MAX.
[[nodiscard]] int64_t cost_upper_bound_nano(const PriceRates& rates, uint64_t prompt_tokens_max,
                                            uint64_t output_tokens_max);

// The price a request would be charged by and the upper bound above under it, looked up
// in `snapshot` as request.cc does for the row: the model sent upstream on channel_id, the
// version in force at started_unix_ms. False when no price is in force (the model is
// unpriced; a key with a money budget refuses it: 403 model_price_missing). The caller
// holds the snapshot (SnapshotPublisher::acquire) for the call. A request may be retried
// on another candidate channel, whose price may differ: a reservation that must cover
// every exit takes the largest bound over request.candidates (each with its model_sent
// and channel_id), and an unpriced candidate makes the request unpriced for a budget.
[[nodiscard]] bool cost_reservation_bound(const Snapshot& snapshot, std::string_view model_sent,
                                          int64_t channel_id, int64_t started_unix_ms,
                                          uint64_t prompt_tokens_max, uint64_t output_tokens_max,
                                          int64_t& bound_nano, int64_t& price_id);

}  // namespace rw
