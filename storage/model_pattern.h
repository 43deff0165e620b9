// storage/model_pattern.h — the one rule by which a model name matches a list of names and
// "prefix*" patterns, shared by prices (storage/prices.h), a channel's `models` and
// `model_map` keys (ChannelEntry), and a key's `models` allow-list (KeyEntry):
//   an exact name beats the longest matching prefix, which beats shorter ones, and "*"
//   (the empty prefix) matches every model and loses to everything else.
// Lists are compiled once when a snapshot is built (model_patterns_sort puts the best match
// first), so the request path scans a short vector and takes the first match. Any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rw {

// "gpt-4o" (exact) or "gpt-4*" (stem "gpt-4", a prefix); "*" is the empty prefix.
struct ModelPattern {
    std::string stem;  // Without the '*'.
    bool is_prefix = false;
};

[[nodiscard]] ModelPattern model_pattern_parse(std::string_view text);

// Empty when `text` is a valid name or pattern of 1..bytes_max bytes ('*' only at its end,
// no control characters); otherwise why not, e.g. "may hold '*' only at its end (a prefix
// pattern)".
[[nodiscard]] std::string model_pattern_check(std::string_view text, size_t bytes_max);

// "\"name\" why" (the name cut at 64 bytes), for an error naming the bad entry.
[[nodiscard]] std::string model_pattern_why(std::string_view name, std::string_view why);

// How well `pattern` matches `model`: 0 not at all; an exact match is model_rank_exact;
// a prefix 1 + its stem's length (so "*" is 1). A larger rank wins.
constexpr uint32_t model_rank_exact = UINT32_MAX;
[[nodiscard]] inline uint32_t model_pattern_rank(const ModelPattern& pattern,
                                                 std::string_view model) {
    if (!pattern.is_prefix) {
        return pattern.stem == model ? model_rank_exact : 0;
    }
    return model.starts_with(pattern.stem) ? uint32_t(pattern.stem.size()) + 1 : 0;
}

// The order in which a compiled list is scanned so that its first match is its best:
// exact names first, then prefixes longest first. A strict weak order (stable sorts keep
// equal patterns in their given order).
[[nodiscard]] inline bool model_pattern_precedes(const ModelPattern& a, const ModelPattern& b) {
    if (a.is_prefix != b.is_prefix) {
        return !a.is_prefix;
    }
    return a.is_prefix && a.stem.size() > b.stem.size();
}

}  // namespace rw
