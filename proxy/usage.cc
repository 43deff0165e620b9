// proxy/usage.cc — usage objects read with simdjson On Demand. Only the path to "usage" is
// walked; choices, output and content are skipped through the structural index without
// being decoded. Shard thread only (uses the thread's parser from json_fields).
#include "proxy/usage.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <span>

#include "core/assert.h"
#include "proxy/json_fields.h"

namespace rw {
namespace {

namespace ondemand = simdjson::ondemand;

// Which UsageParts counter a usage key feeds, per format.
// input_details / output_details are the OpenAI *_tokens_details objects read by
// read_details; seconds is whisper-1's duration usage (read_usage); the others are counters.
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
    seconds,
};

// The keys read outside the usage object: at the root of a document, or in the object
// that holds usage (UsageAt::in_response, in_message).
enum class OuterKey : uint8_t { none, error, usage, response, message, id, store };

// A key as the document must spell it raw: its bytes and then the closing quote, held as
// four little-endian words with a mask over the name's bytes + 1 (names up to 31 bytes).
// One table per object kind replaces a compare per name: a key is matched by loading the
// 32 bytes at its start once and comparing words (the first word alone rejects almost
// every other name). Raw means unescaped keys only: upstreams write these keys plainly,
// and skipping the unescape copy is a large share of the cost on bodies with many
// members. A key spelled with escapes is not counted.
template <typename Key>
struct KeyName {
    uint64_t words[4];
    uint64_t masks[4];
    Key key;
};

template <typename Key, size_t name_bytes>
constexpr KeyName<Key> key_name(const char (&name)[name_bytes], Key key) {
    static_assert(name_bytes <= 32, "the name and its closing quote fit four words");
    KeyName<Key> entry{{0, 0, 0, 0}, {0, 0, 0, 0}, key};
    for (size_t index = 0; index < name_bytes; index += 1) {
        // name[name_bytes - 1] is the literal's NUL: the closing quote goes there.
        const char c = index + 1 < name_bytes ? name[index] : '"';
        entry.words[index / 8] |= uint64_t(uint8_t(c)) << (index % 8 * 8);
        entry.masks[index / 8] |= uint64_t(0xFF) << (index % 8 * 8);
    }
    return entry;
}

constexpr KeyName<UsageKey> chat_keys[] = {
    key_name("prompt_tokens", UsageKey::input),
    key_name("completion_tokens", UsageKey::output),
    key_name("total_tokens", UsageKey::total),
    key_name("prompt_tokens_details", UsageKey::input_details),
    key_name("completion_tokens_details", UsageKey::output_details),
    key_name("seconds", UsageKey::seconds)};
constexpr KeyName<UsageKey> responses_keys[] = {
    key_name("input_tokens", UsageKey::input),
    key_name("output_tokens", UsageKey::output),
    key_name("total_tokens", UsageKey::total),
    key_name("input_tokens_details", UsageKey::input_details),
    key_name("output_tokens_details", UsageKey::output_details),
    key_name("seconds", UsageKey::seconds)};
constexpr KeyName<UsageKey> embeddings_keys[] = {key_name("prompt_tokens", UsageKey::input),
                                                 key_name("total_tokens", UsageKey::total),
                                                 key_name("seconds", UsageKey::seconds)};
constexpr KeyName<UsageKey> anthropic_keys[] = {
    key_name("input_tokens", UsageKey::input), key_name("output_tokens", UsageKey::output),
    key_name("cache_creation_input_tokens", UsageKey::cache_creation),
    key_name("cache_read_input_tokens", UsageKey::cache_read),
    key_name("seconds", UsageKey::seconds)};

// Inside prompt_tokens_details / input_tokens_details and their output twins.
constexpr KeyName<UsageKey> input_details_keys[] = {
    key_name("cached_tokens", UsageKey::cache_read)};
constexpr KeyName<UsageKey> output_details_keys[] = {
    key_name("reasoning_tokens", UsageKey::reasoning)};

// A document's root, per UsageAt (root_id_keys: a whole Responses answer whose id is read
// in the same walk), and the object holding usage and a Responses object's id and store.
constexpr KeyName<OuterKey> root_keys[] = {key_name("usage", OuterKey::usage),
                                           key_name("error", OuterKey::error)};
constexpr KeyName<OuterKey> root_id_keys[] = {
    key_name("usage", OuterKey::usage), key_name("error", OuterKey::error),
    key_name("id", OuterKey::id), key_name("store", OuterKey::store)};
constexpr KeyName<OuterKey> root_response_keys[] = {key_name("response", OuterKey::response),
                                                    key_name("error", OuterKey::error)};
constexpr KeyName<OuterKey> root_message_keys[] = {key_name("message", OuterKey::message),
                                                   key_name("error", OuterKey::error)};
constexpr KeyName<OuterKey> holder_keys[] = {key_name("usage", OuterKey::usage),
                                             key_name("id", OuterKey::id),
                                             key_name("store", OuterKey::store)};

std::span<const KeyName<UsageKey>> usage_key_names(UsageFormat format) {
    switch (format) {
        case UsageFormat::chat: return chat_keys;
        case UsageFormat::responses: return responses_keys;
        case UsageFormat::embeddings: return embeddings_keys;
        case UsageFormat::anthropic_messages: return anthropic_keys;
    }
    RW_UNREACHABLE();
}

// The entry of names that key spells, or Key::none. Reads the 32 bytes at the key's start:
// the key lies inside the document, which is followed by json_padding_bytes (64) readable
// bytes, so they are all readable. Bytes past the key's closing quote are masked out.
template <typename Key>
Key key_find(std::span<const KeyName<Key>> names, ondemand::raw_json_string key) {
    static_assert(json_padding_bytes >= 32);
    uint64_t first = 0;
    std::memcpy(&first, key.raw(), sizeof(first));
    for (const KeyName<Key>& entry : names) {
        if (((first ^ entry.words[0]) & entry.masks[0]) != 0) {
            continue;  // Almost every other key differs in its first 8 bytes.
        }
        uint64_t words[3];
        std::memcpy(words, key.raw() + sizeof(first), sizeof(words));
        const uint64_t rest = ((words[0] ^ entry.words[1]) & entry.masks[1]) |
                              ((words[1] ^ entry.words[2]) & entry.masks[2]) |
                              ((words[2] ^ entry.words[3]) & entry.masks[3]);
        if (rest == 0) {
            return entry.key;
        }
    }
    return Key::none;
}

// The one member loop: read(which, value) for each member of object whose key is in
// names; the others are skipped unread (On Demand skips a value nobody asked for). False
// when the JSON breaks or read says false.
template <typename Key, typename Read>
bool members_read(ondemand::object& object, std::span<const KeyName<Key>> names, Read&& read) {
    for (auto member : object) {
        ondemand::raw_json_string key;  // Points into the document; compared raw.
        ondemand::value value;
        if (member.key().get(key) != simdjson::SUCCESS ||
            member.value().get(value) != simdjson::SUCCESS) {
            return false;
        }
        const Key which = key_find(names, key);
        if (which != Key::none && !read(which, value)) {
            return false;
        }
    }
    return true;
}

bool is_null_value(ondemand::value& value) {
    ondemand::json_type type;
    return value.type().get(type) == simdjson::SUCCESS && type == ondemand::json_type::null;
}

// The value as an object; false (with object unset) when it is anything else, or broken.
bool object_of(ondemand::value& value, ondemand::object& object, bool& is_object) {
    ondemand::json_type type;
    if (value.type().get(type) != simdjson::SUCCESS) {
        return false;
    }
    is_object = type == ondemand::json_type::object;
    return !is_object || value.get_object().get(object) == simdjson::SUCCESS;
}

// A token counter: a non-negative integer, or null (absent). Some OpenAI-compatible servers
// write integral counts as doubles (12.0); those are accepted, fractions are not. The
// integer is tried first: a failed get_uint64 leaves the value unread.
bool read_count(ondemand::value& value, uint64_t& count, bool& is_present) {
    if (value.get_uint64().get(count) == simdjson::SUCCESS) {
        is_present = true;
        return true;
    }
    ondemand::json_type type;
    if (value.type().get(type) != simdjson::SUCCESS) {
        return false;
    }
    if (type == ondemand::json_type::null) {
        is_present = false;
        return true;
    }
    double real = 0;
    if (type != ondemand::json_type::number || value.get_double().get(real) != simdjson::SUCCESS) {
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
        case UsageKey::output_details:
        case UsageKey::seconds: RW_UNREACHABLE();
    }
}

// An OpenAI *_tokens_details object: its known counters (cached_tokens, reasoning_tokens)
// overwrite parts. Lenient by design (usage.h): a details value that is not an object, or
// a counter in it that is not a count, is skipped; false only when the JSON itself breaks.
bool read_details(ondemand::value& value, std::span<const KeyName<UsageKey>> names,
                  UsageParts& parts) {
    ondemand::object object;
    bool is_object = false;
    if (!object_of(value, object, is_object)) {
        return false;
    }
    if (!is_object) {
        return true;  // null, or a shape some server invented: priced as plain tokens.
    }
    return members_read(object, names, [&](UsageKey which, ondemand::value& member) {
        uint64_t count = 0;
        bool is_present = false;
        if (read_count(member, count, is_present) && is_present) {
            usage_part_set(parts, which, count);
        }
        return true;
    });
}

// The usage value: an object (its known counters overwrite parts; has_usage set) or null
// (no usage).
bool read_usage(ondemand::value& value, UsageFormat format, UsageParts& parts, bool& has_usage) {
    ondemand::object object;
    bool is_object = false;
    if (!object_of(value, object, is_object)) {
        return false;
    }
    if (!is_object) {
        return is_null_value(value);
    }
    // whisper-1's {"type":"duration","seconds":N} meters audio time, not tokens: no token
    // usage, so the billing rule treats the answer as reporting none.
    bool has_token_key = false;
    bool has_seconds = false;
    const bool is_ok =
        members_read(object, usage_key_names(format), [&](UsageKey which, ondemand::value& member) {
            if (which == UsageKey::seconds) {
                has_seconds = true;
                return true;
            }
            has_token_key = true;
            if (which == UsageKey::input_details || which == UsageKey::output_details) {
                return read_details(member,
                                    which == UsageKey::input_details
                                        ? std::span<const KeyName<UsageKey>>(input_details_keys)
                                        : std::span<const KeyName<UsageKey>>(output_details_keys),
                                    parts);
            }
            uint64_t count = 0;
            bool is_present = false;
            if (!read_count(member, count, is_present)) {
                return false;
            }
            if (is_present) {
                usage_part_set(parts, which, count);
            }
            return true;
        });
    // Provider extras (audio details, service_tier) were skipped unread.
    has_usage = has_usage || (is_ok && (has_token_key || !has_seconds));
    return is_ok;
}

// Counters come from the upstream: absurd values must not wrap into small ones.
uint64_t add_saturated(uint64_t a, uint64_t b) {
    return a + b < a ? UINT64_MAX : a + b;
}

// The "id" and "store" of a Responses object, gathered while its members are read.
struct ResponseIdRead {
    std::string_view id;
    bool is_stored = true;   // OpenAI's default; an object without the member is stored.
    bool is_broken = false;  // An id that is not a string: nothing is recorded.

    void on_member(OuterKey which, ondemand::value& value) {
        if (which == OuterKey::id) {
            is_broken = is_broken || value.get_string().get(id) != simdjson::SUCCESS;
        } else if (which == OuterKey::store) {
            bool store = true;
            if (value.get_bool().get(store) == simdjson::SUCCESS) {
                is_stored = store;
            }
        }
    }

    std::string_view result() const {
        return !is_broken && is_stored && stored_response_id_valid(id) ? id : std::string_view{};
    }
};

// {"response":{...,"usage":...}} or {"message":{...,"usage":...}}: the usage member of
// the object at value. A non-object (the failed response of some servers is null) has none.
bool read_nested_usage(ondemand::value& value, UsageFormat format, UsageParts& parts,
                       bool& has_usage) {
    ondemand::object object;
    bool is_object = false;
    if (!object_of(value, object, is_object)) {
        return false;
    }
    return !is_object || members_read(object, std::span<const KeyName<OuterKey>>(holder_keys),
                                      [&](OuterKey which, ondemand::value& member) {
                                          return which != OuterKey::usage ||
                                                 read_usage(member, format, parts, has_usage);
                                      });
}

bool document_object(std::string_view padded_json, ondemand::document& document,
                     ondemand::object& object) {
    const simdjson::padded_string_view input(padded_json.data(), padded_json.size(),
                                             padded_json.size() + json_padding_bytes);
    return json_thread_parser().iterate(input).get(document) == simdjson::SUCCESS &&
           document.get_object().get(object) == simdjson::SUCCESS;
}

// The id of a Responses object, or empty (ResponseIdRead::result; broken JSON: empty).
std::string_view response_object_id(ondemand::object& object) {
    ResponseIdRead id;
    const bool is_ok = members_read(object, std::span<const KeyName<OuterKey>>(holder_keys),
                                    [&](OuterKey which, ondemand::value& value) {
                                        id.on_member(which, value);
                                        return true;
                                    });
    return is_ok ? id.result() : std::string_view{};
}

std::span<const KeyName<OuterKey>> root_key_names(UsageAt at) {
    switch (at) {
        case UsageAt::root: return root_keys;
        case UsageAt::in_response: return root_response_keys;
        case UsageAt::in_message: return root_message_keys;
    }
    RW_UNREACHABLE();
}

// usage_read_document, and with id set the stored response id of a root Responses object
// read in the same walk (ResponseIdRead: left unread when the walk fails).
UsageDocument read_document(std::string_view padded_json, UsageFormat format, UsageAt at,
                            UsageParts& parts, ResponseIdRead* id) {
    const UsageDocument refused{false, false, false};  // Whatever was seen before the fault.
    ondemand::document document;
    ondemand::object object;
    if (!document_object(padded_json, document, object)) {
        return refused;
    }
    UsageParts next = parts;  // Committed only when the whole document read cleanly.
    bool has_usage = false;
    bool has_error = false;
    const auto names =
        id != nullptr ? std::span<const KeyName<OuterKey>>(root_id_keys) : root_key_names(at);
    const bool is_ok = members_read(object, names, [&](OuterKey which, ondemand::value& value) {
        switch (which) {
            case OuterKey::error: has_error = has_error || !is_null_value(value); return true;
            case OuterKey::usage: return read_usage(value, format, next, has_usage);
            case OuterKey::response:
            case OuterKey::message: return read_nested_usage(value, format, next, has_usage);
            case OuterKey::id:
            case OuterKey::store:
                RW_ASSERT(id != nullptr);  // Only root_id_keys names them.
                id->on_member(which, value);
                return true;
            case OuterKey::none: break;
        }
        RW_UNREACHABLE();
    });
    if (!is_ok) {
        return refused;
    }
    if (has_usage) {
        next.has_usage = true;
        parts = next;
    }
    RW_ASSERT(!has_usage || parts.has_usage);
    return UsageDocument{true, has_usage, has_error};
}

}  // namespace

UsageDocument usage_read_document(std::string_view padded_json, UsageFormat format, UsageAt at,
                                  UsageParts& parts) {
    return read_document(padded_json, format, at, parts, nullptr);
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
    ondemand::document document;
    ondemand::object object;
    if (!document_object(padded_json, document, object)) {
        return {};
    }
    if (!is_in_response) {
        return response_object_id(object);
    }
    // The first "response" member decides; the walk stops there.
    std::string_view id;
    bool is_found = false;
    [[maybe_unused]] const bool is_walked = members_read(
        object, root_key_names(UsageAt::in_response), [&](OuterKey which, ondemand::value& value) {
            if (which != OuterKey::response) {
                return true;
            }
            ondemand::object response;
            id = value.get_object().get(response) == simdjson::SUCCESS
                     ? response_object_id(response)
                     : std::string_view{};
            is_found = true;
            return false;
        });
    return is_found ? id : std::string_view{};
}

bool usage_and_response_id_from_json(std::string_view padded_body, UsageFormat format,
                                     UsageCounts& counts, std::string_view& response_id) {
    UsageParts parts;
    ResponseIdRead id;
    const UsageDocument document = read_document(padded_body, format, UsageAt::root, parts, &id);
    counts = usage_counts_from_parts(parts, format);
    RW_ASSERT(counts.has_usage == (document.is_json && document.has_usage));
    // A walk that stopped early (broken JSON, malformed usage) may not have reached the id:
    // then it is read on its own, so the id learnt never depends on the usage.
    response_id = document.is_json ? id.result() : stored_response_id_read(padded_body, false);
    return document.is_json;
}

}  // namespace rw
