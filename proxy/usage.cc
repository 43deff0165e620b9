// proxy/usage.cc — usage objects read with simdjson On Demand. Only the path to "usage" is
// walked; choices, output and content are skipped through the structural index without
// being decoded. Shard thread only (uses the thread's parser from json_fields).
#include "proxy/usage.h"

#include <algorithm>
#include <cmath>
#include <span>

#include "core/assert.h"
#include "proxy/json_fields.h"

namespace rw {
namespace {

namespace ondemand = simdjson::ondemand;

// Which UsageParts counter a usage key feeds, per format.
// input_details / output_details are the OpenAI *_tokens_details objects read by
// read_details; the others are counters.
enum class UsageKey : uint8_t {
    none,
    input,
    output,
    cache_creation,
    cache_read,
    reasoning,
    total,
    input_details,
    output_details,
};

struct UsageKeyName {
    const char* name;  // No quote or backslash (raw_json_string::unsafe_is_equal's contract).
    UsageKey key;
};

constexpr UsageKeyName chat_keys[] = {{"prompt_tokens", UsageKey::input},
                                      {"completion_tokens", UsageKey::output},
                                      {"total_tokens", UsageKey::total},
                                      {"prompt_tokens_details", UsageKey::input_details},
                                      {"completion_tokens_details", UsageKey::output_details}};
constexpr UsageKeyName responses_keys[] = {{"input_tokens", UsageKey::input},
                                           {"output_tokens", UsageKey::output},
                                           {"total_tokens", UsageKey::total},
                                           {"input_tokens_details", UsageKey::input_details},
                                           {"output_tokens_details", UsageKey::output_details}};
constexpr UsageKeyName embeddings_keys[] = {{"prompt_tokens", UsageKey::input},
                                            {"total_tokens", UsageKey::total}};
constexpr UsageKeyName anthropic_keys[] = {
    {"input_tokens", UsageKey::input},
    {"output_tokens", UsageKey::output},
    {"cache_creation_input_tokens", UsageKey::cache_creation},
    {"cache_read_input_tokens", UsageKey::cache_read}};

// Inside prompt_tokens_details / input_tokens_details and their output twins.
constexpr UsageKeyName input_details_keys[] = {{"cached_tokens", UsageKey::cache_read}};
constexpr UsageKeyName output_details_keys[] = {{"reasoning_tokens", UsageKey::reasoning}};

std::span<const UsageKeyName> usage_key_names(UsageFormat format) {
    switch (format) {
        case UsageFormat::chat: return chat_keys;
        case UsageFormat::responses: return responses_keys;
        case UsageFormat::embeddings: return embeddings_keys;
        case UsageFormat::anthropic_messages: return anthropic_keys;
    }
    RW_UNREACHABLE();
}

// Keys are compared raw (unsafe_is_equal), not unescaped: upstreams write these keys
// plainly, and skipping the unescape copy is a large share of the cost on bodies with many
// top-level members. A key spelled with escapes is not counted.
UsageKey usage_key(std::span<const UsageKeyName> names, ondemand::raw_json_string key) {
    for (const UsageKeyName& entry : names) {
        if (key.unsafe_is_equal(entry.name)) {
            return entry.key;
        }
    }
    return UsageKey::none;
}

// A token counter: a non-negative integer, or null (absent). Some OpenAI-compatible servers
// write integral counts as doubles (12.0); those are accepted, fractions are not.
bool read_count(ondemand::value& value, uint64_t& count, bool& is_present) {
    ondemand::json_type type;
    if (value.type().get(type) != simdjson::SUCCESS) {
        return false;
    }
    if (type == ondemand::json_type::null) {
        is_present = false;
        return true;
    }
    if (type != ondemand::json_type::number) {
        return false;
    }
    if (value.get_uint64().get(count) == simdjson::SUCCESS) {
        is_present = true;
        return true;
    }
    double real = 0;
    if (value.get_double().get(real) != simdjson::SUCCESS) {
        return false;
    }
    // 2^53: every integer below it is exact in a double.
    if (!(real >= 0) || real >= 9007199254740992.0 || std::floor(real) != real) {
        return false;
    }
    count = static_cast<uint64_t>(real);
    is_present = true;
    return true;
}

// Stores one counter into parts.
void usage_part_set(UsageParts& parts, UsageKey which, uint64_t count) {
    switch (which) {
        case UsageKey::input: parts.input_tokens = count; break;
        case UsageKey::output: parts.output_tokens = count; break;
        case UsageKey::cache_creation: parts.cache_creation_tokens = count; break;
        case UsageKey::cache_read: parts.cache_read_tokens = count; break;
        case UsageKey::reasoning: parts.reasoning_tokens = count; break;
        case UsageKey::total:
            parts.total_tokens = count;
            parts.has_total = true;
            break;
        case UsageKey::none:
        case UsageKey::input_details:
        case UsageKey::output_details: RW_UNREACHABLE();
    }
}

// An OpenAI *_tokens_details object: its known counters (cached_tokens, reasoning_tokens)
// overwrite parts. Lenient by design (usage.h): a details value that is not an object, or
// a counter in it that is not a count, is skipped; false only when the JSON itself breaks.
bool read_details(ondemand::value& value, std::span<const UsageKeyName> names, UsageParts& parts) {
    ondemand::json_type type;
    if (value.type().get(type) != simdjson::SUCCESS) {
        return false;
    }
    ondemand::object object;
    if (type != ondemand::json_type::object) {
        return true;  // null, or a shape some server invented: priced as plain tokens.
    }
    if (value.get_object().get(object) != simdjson::SUCCESS) {
        return false;
    }
    for (auto member : object) {
        ondemand::raw_json_string key;  // Points into the document; compared raw.
        ondemand::value member_value;
        if (member.key().get(key) != simdjson::SUCCESS ||
            member.value().get(member_value) != simdjson::SUCCESS) {
            return false;
        }
        const UsageKey which = usage_key(names, key);
        uint64_t count = 0;
        bool is_present = false;
        if (which != UsageKey::none && read_count(member_value, count, is_present) && is_present) {
            usage_part_set(parts, which, count);
        }
    }
    return true;
}

// The usage value: an object (its known counters overwrite parts; has_usage set) or null
// (no usage).
bool read_usage(ondemand::value& value, UsageFormat format, UsageParts& parts, bool& has_usage) {
    ondemand::json_type type;
    if (value.type().get(type) != simdjson::SUCCESS) {
        return false;
    }
    if (type == ondemand::json_type::null) {
        return true;
    }
    ondemand::object object;
    if (type != ondemand::json_type::object ||
        value.get_object().get(object) != simdjson::SUCCESS) {
        return false;
    }
    // whisper-1's {"type":"duration","seconds":N} meters audio time, not tokens: no token
    // usage, so the billing rule treats the answer as reporting none.
    bool has_token_key = false;
    bool has_seconds = false;
    for (auto member : object) {
        ondemand::raw_json_string key;  // Points into the document; compared raw.
        ondemand::value member_value;
        if (member.key().get(key) != simdjson::SUCCESS ||
            member.value().get(member_value) != simdjson::SUCCESS) {
            return false;
        }
        const UsageKey which = usage_key(usage_key_names(format), key);
        if (which == UsageKey::none) {
            has_seconds = has_seconds || key.unsafe_is_equal("seconds");
            continue;  // Provider extras (audio details, service_tier) are skipped unread.
        }
        has_token_key = true;
        if (which == UsageKey::input_details || which == UsageKey::output_details) {
            const auto names = which == UsageKey::input_details
                                   ? std::span<const UsageKeyName>(input_details_keys)
                                   : std::span<const UsageKeyName>(output_details_keys);
            if (!read_details(member_value, names, parts)) {
                return false;
            }
            continue;
        }
        uint64_t count = 0;
        bool is_present = false;
        if (!read_count(member_value, count, is_present)) {
            return false;
        }
        if (is_present) {
            usage_part_set(parts, which, count);
        }
    }
    has_usage = has_usage || has_token_key || !has_seconds;
    return true;
}

// {"response":{...,"usage":...}} or {"message":{...,"usage":...}}: the usage member of
// the object at value. A non-object (the failed response of some servers is null) has none.
bool read_nested_usage(ondemand::value& value, UsageFormat format, UsageParts& parts,
                       bool& has_usage) {
    ondemand::json_type type;
    if (value.type().get(type) != simdjson::SUCCESS) {
        return false;
    }
    if (type != ondemand::json_type::object) {
        return true;
    }
    ondemand::object object;
    if (value.get_object().get(object) != simdjson::SUCCESS) {
        return false;
    }
    for (auto member : object) {
        ondemand::raw_json_string key;  // Points into the document; compared raw.
        ondemand::value member_value;
        if (member.key().get(key) != simdjson::SUCCESS ||
            member.value().get(member_value) != simdjson::SUCCESS) {
            return false;
        }
        if (key.unsafe_is_equal("usage") && !read_usage(member_value, format, parts, has_usage)) {
            return false;
        }
    }
    return true;
}

// Counters come from the upstream: absurd values must not wrap into small ones.
uint64_t add_saturated(uint64_t a, uint64_t b) {
    return a + b < a ? UINT64_MAX : a + b;
}

bool is_null_value(ondemand::value& value) {
    ondemand::json_type type;
    return value.type().get(type) == simdjson::SUCCESS && type == ondemand::json_type::null;
}

// Reads "id" and "store" of a Responses object.
std::string_view read_response_object(ondemand::object object) {
    std::string_view id;
    bool is_stored = true;  // OpenAI's default; an object without the member is stored.
    for (auto member : object) {
        ondemand::raw_json_string key;
        ondemand::value value;
        if (member.key().get(key) != simdjson::SUCCESS ||
            member.value().get(value) != simdjson::SUCCESS) {
            return {};
        }
        if (key.unsafe_is_equal("id")) {
            if (value.get_string().get(id) != simdjson::SUCCESS) {
                return {};
            }
        } else if (key.unsafe_is_equal("store")) {
            bool store = true;
            if (value.get_bool().get(store) == simdjson::SUCCESS) {
                is_stored = store;
            }
        }
    }
    return is_stored && stored_response_id_valid(id) ? id : std::string_view{};
}

}  // namespace

UsageDocument usage_read_document(std::string_view padded_json, UsageFormat format, UsageAt at,
                                  UsageParts& parts) {
    const UsageDocument refused{false, false, false};  // Whatever was seen before the fault.
    const simdjson::padded_string_view input(padded_json.data(), padded_json.size(),
                                             padded_json.size() + json_padding_bytes);
    ondemand::document document;
    ondemand::object object;
    if (json_thread_parser().iterate(input).get(document) != simdjson::SUCCESS ||
        document.get_object().get(object) != simdjson::SUCCESS) {
        return refused;
    }
    UsageParts next = parts;  // Committed only when the whole document read cleanly.
    bool has_usage = false;
    bool has_error = false;
    const std::string_view container = at == UsageAt::in_response  ? "response"
                                       : at == UsageAt::in_message ? "message"
                                                                   : "usage";
    for (auto member : object) {
        ondemand::raw_json_string key;  // Points into the document; compared raw.
        ondemand::value member_value;
        if (member.key().get(key) != simdjson::SUCCESS ||
            member.value().get(member_value) != simdjson::SUCCESS) {
            return refused;
        }
        if (key.unsafe_is_equal("error")) {
            has_error = has_error || !is_null_value(member_value);
        } else if (key.unsafe_is_equal(container)) {
            const bool is_ok = at == UsageAt::root
                                   ? read_usage(member_value, format, next, has_usage)
                                   : read_nested_usage(member_value, format, next, has_usage);
            if (!is_ok) {
                return refused;
            }
        }
    }
    if (has_usage) {
        next.has_usage = true;
        parts = next;
    }
    RW_ASSERT(!has_usage || parts.has_usage);
    return UsageDocument{true, has_usage, has_error};
}

UsageCounts usage_counts_from_parts(const UsageParts& parts, UsageFormat format) {
    UsageCounts counts;
    if (!parts.has_usage) {
        return counts;
    }
    counts.has_usage = true;
    counts.prompt_tokens = parts.input_tokens;
    if (format == UsageFormat::embeddings && parts.input_tokens == 0 && parts.has_total) {
        // An input-only answer that reports only its total (vLLM's and Jina's rerank):
        // every token of it is input, priced so.
        counts.prompt_tokens = parts.total_tokens;
    }
    counts.completion_tokens = format == UsageFormat::embeddings ? 0 : parts.output_tokens;
    if (format == UsageFormat::anthropic_messages) {
        // Anthropic's input_tokens excludes cached input; billing counts all of it.
        counts.prompt_tokens = add_saturated(counts.prompt_tokens, parts.cache_creation_tokens);
        counts.prompt_tokens = add_saturated(counts.prompt_tokens, parts.cache_read_tokens);
    }
    counts.total_tokens = parts.has_total
                              ? parts.total_tokens
                              : add_saturated(counts.prompt_tokens, counts.completion_tokens);
    // The kinds are parts of prompt and completion (usage.h); an upstream that reports more
    // cached than prompt tokens is clamped, so no token is ever priced twice.
    counts.cached_input_tokens = std::min(parts.cache_read_tokens, counts.prompt_tokens);
    if (format == UsageFormat::anthropic_messages) {
        counts.cache_write_tokens = std::min(parts.cache_creation_tokens,
                                             counts.prompt_tokens - counts.cached_input_tokens);
    }
    counts.reasoning_tokens = std::min(parts.reasoning_tokens, counts.completion_tokens);
    RW_ASSERT(counts.cached_input_tokens + counts.cache_write_tokens <= counts.prompt_tokens);
    RW_ASSERT(counts.reasoning_tokens <= counts.completion_tokens);
    return counts;
}

bool usage_from_json(std::string_view padded_body, UsageFormat format, UsageCounts& counts) {
    UsageParts parts;
    const UsageDocument document = usage_read_document(padded_body, format, UsageAt::root, parts);
    counts = usage_counts_from_parts(parts, format);
    RW_ASSERT(counts.has_usage == (document.is_json && document.has_usage));
    return document.is_json;
}

bool stored_response_id_valid(std::string_view id) {
    if (id.empty() || id.size() > stored_response_id_bytes_max) {
        return false;
    }
    for (const char c : id) {
        const bool is_word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!is_word) {
            return false;
        }
    }
    return true;
}

std::string_view stored_response_id_read(std::string_view padded_json, bool is_in_response) {
    const simdjson::padded_string_view input(padded_json.data(), padded_json.size(),
                                             padded_json.size() + json_padding_bytes);
    ondemand::document document;
    ondemand::object object;
    if (json_thread_parser().iterate(input).get(document) != simdjson::SUCCESS ||
        document.get_object().get(object) != simdjson::SUCCESS) {
        return {};
    }
    if (!is_in_response) {
        return read_response_object(object);
    }
    for (auto member : object) {
        ondemand::raw_json_string key;
        ondemand::value value;
        if (member.key().get(key) != simdjson::SUCCESS ||
            member.value().get(value) != simdjson::SUCCESS) {
            return {};
        }
        if (key.unsafe_is_equal("response")) {
            ondemand::object response;
            return value.get_object().get(response) == simdjson::SUCCESS
                       ? read_response_object(response)
                       : std::string_view{};
        }
    }
    return {};
}

}  // namespace rw
