// storage/prices.cc — PriceTable construction and lookup, and price validation (see
// prices.h). Construction runs on the control plane; find() on any shard.
#include "storage/prices.h"

#include <algorithm>
#include <utility>

#include "core/assert.h"
#include "storage/model_pattern.h"

namespace rw {

namespace {

bool entry_less(const PriceEntry& a, const PriceEntry& b) {
    return a.model < b.model;
}

// True when candidate is the later version of the two (effective_from, then id).
bool is_later(const PriceEntry& candidate, const PriceEntry* best) {
    if (best == nullptr) {
        return true;
    }
    if (candidate.effective_from_ms != best->effective_from_ms) {
        return candidate.effective_from_ms > best->effective_from_ms;
    }
    return candidate.id > best->id;
}

}  // namespace

PriceTable::PriceTable(std::vector<PriceEntry> entries) {
    RW_ASSERT(entries.size() <= prices_max);
    for (PriceEntry& entry : entries) {
        RW_ASSERT(entry.id > 0);
        (entry.is_prefix ? prefix_ : exact_).push_back(std::move(entry));
    }
    std::stable_sort(exact_.begin(), exact_.end(), entry_less);
    std::stable_sort(prefix_.begin(), prefix_.end(), entry_less);
    for (const PriceEntry& entry : prefix_) {
        prefix_lengths_.push_back(uint32_t(entry.model.size()));
    }
    std::sort(prefix_lengths_.begin(), prefix_lengths_.end(), std::greater<>());
    prefix_lengths_.erase(std::unique(prefix_lengths_.begin(), prefix_lengths_.end()),
                          prefix_lengths_.end());
    RW_ASSERT(size() == uint32_t(exact_.size() + prefix_.size()));
}

const PriceEntry* PriceTable::find_in(std::span<const PriceEntry> sorted, std::string_view pattern,
                                      int64_t channel_id, int64_t at_ms) {
    auto it = std::lower_bound(sorted.begin(), sorted.end(), pattern,
                               [](const PriceEntry& entry, std::string_view text) {
                                   return std::string_view(entry.model) < text;
                               });
    const PriceEntry* own = nullptr;  // This channel's.
    const PriceEntry* any = nullptr;  // Any channel's.
    for (; it != sorted.end() && it->model == pattern; ++it) {
        if (it->effective_from_ms > at_ms) {
            continue;  // Not yet in force when the request started.
        }
        if (channel_id != 0 && it->channel_id == channel_id && is_later(*it, own)) {
            own = &*it;
        } else if (it->channel_id == 0 && is_later(*it, any)) {
            any = &*it;
        }
    }
    return own != nullptr ? own : any;
}

// model_pattern.h's rule over sorted tables: the exact name, then each distinct prefix
// length longest first (the ranks model_pattern_rank gives, in falling order).
const PriceEntry* PriceTable::find(std::string_view model, int64_t channel_id,
                                   int64_t at_ms) const {
    if (const PriceEntry* exact = find_in(exact_, model, channel_id, at_ms)) {
        return exact;
    }
    for (const uint32_t length : prefix_lengths_) {  // Longest first.
        if (length > model.size()) {
            continue;
        }
        if (const PriceEntry* prefix =
                find_in(prefix_, model.substr(0, length), channel_id, at_ms)) {
            RW_ASSERT(model.starts_with(prefix->model));
            return prefix;
        }
    }
    return nullptr;
}

std::string price_spec_check(const PriceSpec& spec) {
    if (const std::string why = model_pattern_check(spec.model, price_model_bytes_max);
        !why.empty()) {
        return "model " + why;
    }
    if (spec.channel_id < 0) {
        return "channel_id must be a channel id";
    }
    const std::pair<const char*, int64_t> rates[] = {
        {"input_per_mtok", spec.input_per_mtok},
        {"output_per_mtok", spec.output_per_mtok},
        {"cached_input_per_mtok", spec.cached_input_per_mtok},
        {"cache_write_per_mtok", spec.cache_write_per_mtok},
        {"reasoning_per_mtok", spec.reasoning_per_mtok},
    };
    for (const auto& [name, rate] : rates) {
        if (rate < 0 || rate > price_per_mtok_nano_max) {
            return std::string(name) + " must be 0..10000 USD";
        }
    }
    if (spec.per_request < 0 || spec.per_request > price_per_request_nano_max) {
        return "per_request must be 0..1000 USD";
    }
    if (spec.effective_from_s < 0 || spec.effective_from_s > 253402300799) {
        return "effective_from must be Unix seconds up to 9999-12-31";
    }
    return {};
}

PriceRates price_rates_resolve(const PriceSpec& spec) {
    PriceRates rates;
    rates.input_per_mtok = spec.input_per_mtok;
    rates.output_per_mtok = spec.output_per_mtok;
    rates.cached_input_per_mtok =
        spec.has_cached_input ? spec.cached_input_per_mtok : spec.input_per_mtok;
    rates.cache_write_per_mtok =
        spec.has_cache_write ? spec.cache_write_per_mtok : spec.input_per_mtok;
    rates.reasoning_per_mtok = spec.has_reasoning ? spec.reasoning_per_mtok : spec.output_per_mtok;
    rates.per_request = spec.per_request;
    return rates;
}

}  // namespace rw
