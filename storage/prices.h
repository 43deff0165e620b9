// storage/prices.h — model prices as the data plane reads them: PriceEntry (one version of
// a price, its rates resolved to integers) and PriceTable, the immutable lookup a Snapshot
// carries, so shards price a usage row without SQL or locks. Built on the control plane by
// SnapshotStore::reload from the `prices` table (live versions only); read by any shard.
//
// Money is integers only: nano-USD (10^-9 USD), rates per million tokens. A price is a
// model name or a "prefix*" pattern, optionally tied to one channel, in force from its
// effective_from on. The version that prices a request is chosen among those in force at
// the request's start, so adding a version never changes what earlier rows cost:
//   1. the most specific match: channel + exact name, exact name, then the longest prefix
//      (at equal length, the channel's own before the any-channel one);
//   2. within it, the latest effective_from, then the highest id.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/limits.h"

namespace rw {

// nano-USD per million tokens of each kind, plus a fee per request. A kind the operator
// left unpriced is resolved to its parent's rate at load: cached input and cache writes
// to the input rate, reasoning to the output rate (reasoning is part of the output).
struct PriceRates {
    int64_t input_per_mtok = 0;
    int64_t output_per_mtok = 0;
    int64_t cached_input_per_mtok = 0;
    int64_t cache_write_per_mtok = 0;
    int64_t reasoning_per_mtok = 0;
    int64_t per_request = 0;  // nano-USD per billed request.
};

struct PriceEntry {
    int64_t id = 0;                 // prices.id (> 0).
    std::string model;              // Exact name, or the prefix of a "prefix*" pattern (no '*').
    bool is_prefix = false;         // The pattern ended in '*'.
    int64_t channel_id = 0;         // 0: any channel.
    int64_t effective_from_ms = 0;  // Unix ms from which this version is in force.
    PriceRates rates;
};

// Immutable after construction; lookups are reads of sorted vectors (no allocation).
class PriceTable {
public:
    PriceTable() = default;
    explicit PriceTable(std::vector<PriceEntry> entries);

    // The version in force at at_ms for `model` served by channel_id (rules above), or
    // nullptr when none is: the request is then unpriced. Valid while the table lives.
    [[nodiscard]] const PriceEntry* find(std::string_view model, int64_t channel_id,
                                         int64_t at_ms) const;
    [[nodiscard]] uint32_t size() const { return uint32_t(exact_.size() + prefix_.size()); }
    // The versions priced by exact name, sorted by name (versions of one name adjacent).
    [[nodiscard]] std::span<const PriceEntry> exact_entries() const { return exact_; }

private:
    // Among entries with this exact pattern text: channel_id's own best version, else the
    // any-channel one; nullptr if neither is in force at at_ms.
    [[nodiscard]] static const PriceEntry* find_in(std::span<const PriceEntry> sorted,
                                                   std::string_view pattern, int64_t channel_id,
                                                   int64_t at_ms);

    std::vector<PriceEntry> exact_;         // Sorted by model.
    std::vector<PriceEntry> prefix_;        // Sorted by model (the prefix).
    std::vector<uint32_t> prefix_lengths_;  // Distinct prefix lengths, longest first.
};

// What the admin API writes: one price version. Rates in nano-USD (the API parses USD
// decimal strings exactly); has_* false stores NULL (resolved as PriceRates says).
struct PriceSpec {
    std::string model;  // "gpt-4o-mini" or "gpt-4o*".
    int64_t channel_id = 0;
    int64_t input_per_mtok = 0;
    int64_t output_per_mtok = 0;
    bool has_cached_input = false;
    int64_t cached_input_per_mtok = 0;
    bool has_cache_write = false;
    int64_t cache_write_per_mtok = 0;
    bool has_reasoning = false;
    int64_t reasoning_per_mtok = 0;
    int64_t per_request = 0;
    int64_t effective_from_s = 0;  // Unix seconds.
};

// Empty when valid; else one sentence naming the field.
[[nodiscard]] std::string price_spec_check(const PriceSpec& spec);

// The rates of a spec with unpriced kinds resolved to their parent's rate.
[[nodiscard]] PriceRates price_rates_resolve(const PriceSpec& spec);

}  // namespace rw
