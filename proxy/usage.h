// proxy/usage.h — token usage extraction from upstream JSON with simdjson On Demand: whole
// response bodies (usage_from_json; with a stored Responses id in the same walk,
// usage_and_response_id_from_json) and single SSE event payloads (usage_read_document,
// used by sse_scan). The relay calls it on the shard thread once a body or usage event is
// complete. Untrusted input: garbage gives false, never an assert. Documents must be
// followed by json_padding_bytes readable bytes.
#pragma once

#include <cstdint>
#include <string_view>

namespace rw {

// Which API the upstream answers in; decides key names and where usage sits.
enum class UsageFormat : uint8_t {
    chat,                // chat.completions and legacy completions: prompt/completion/total.
    responses,           // OpenAI Responses API: input/output/total.
    embeddings,          // prompt/total (total alone: all input); completion is always 0.
    anthropic_messages,  // input/output + cache_creation_input/cache_read_input, no total.
};

// The token kinds a provider reports, kept apart so each can be priced at its own rate.
// prompt and completion are the totals the token quota charges (as before kinds were
// kept); the kinds below are parts of them, never added on top:
//   prompt_tokens     = uncached input + cached_input_tokens + cache_write_tokens
//   completion_tokens = visible output + reasoning_tokens
// usage_counts_from_parts clamps the parts so these hold for any upstream numbers.
struct UsageCounts {
    uint64_t prompt_tokens = 0;  // Anthropic: input + cache creation + cache read.
    uint64_t completion_tokens = 0;
    uint64_t total_tokens = 0;         // Reported, or prompt + completion when missing.
    bool has_usage = false;            // A usage object was seen (not absent, not null).
    uint64_t cached_input_tokens = 0;  // Of prompt: read from the provider's prompt cache.
    uint64_t cache_write_tokens = 0;   // Of prompt: written to it (Anthropic cache creation).
    uint64_t reasoning_tokens = 0;     // Of completion: hidden reasoning output.
};

// Reads usage from a whole (non-streaming) response body. Returns false when the body is
// not a JSON object or its usage is malformed (not an object or null; a counter that is not
// a non-negative integer). Returns true with has_usage false when usage is absent or null.
// counts is written in every case (zero unless has_usage).
[[nodiscard]] bool usage_from_json(std::string_view padded_body, UsageFormat format,
                                   UsageCounts& counts);

// The counters as the provider names them, before they are folded into UsageCounts.
// Streams report usage in parts (Anthropic: input in message_start, output in message_delta),
// so a later usage object overwrites only the counters it carries.
//
// Where each kind comes from:
//   cache_read_tokens  OpenAI chat prompt_tokens_details.cached_tokens, Responses
//                      input_tokens_details.cached_tokens (both part of prompt/input),
//                      Anthropic cache_read_input_tokens (not part of input_tokens)
//   cache_creation     Anthropic cache_creation_input_tokens (not part of input_tokens)
//   reasoning_tokens   OpenAI completion_tokens_details / output_tokens_details
//                      .reasoning_tokens (part of completion/output)
// A *_details member that is not an object is ignored (OpenAI-compatible servers vary):
// its tokens are then priced as plain input or output, never lost from the totals.
struct UsageParts {
    uint64_t input_tokens = 0;           // prompt_tokens / input_tokens
    uint64_t output_tokens = 0;          // completion_tokens / output_tokens
    uint64_t cache_creation_tokens = 0;  // Anthropic cache_creation_input_tokens
    uint64_t cache_read_tokens = 0;      // See above.
    uint64_t reasoning_tokens = 0;       // See above.
    uint64_t total_tokens = 0;
    bool has_total = false;
    bool has_usage = false;
};

// Where the usage object sits in a document.
enum class UsageAt : uint8_t {
    root,         // {"usage":{...}}: bodies, chat chunks, Anthropic message_delta.
    in_response,  // {"response":{"usage":{...}}}: Responses API response.completed & co.
    in_message,   // {"message":{"usage":{...}}}: Anthropic message_start.
};

struct UsageDocument {
    bool is_json;    // A JSON object whose usage (if any) was well-formed.
    bool has_usage;  // It carried a usage object (parts were updated).
    bool has_error;  // It has a top-level "error" member that is not null.
};

// Reads one document and merges its usage object at `at` into parts. parts is left
// untouched unless the whole read succeeds, so a malformed event cannot half-apply.
[[nodiscard]] UsageDocument usage_read_document(std::string_view padded_json, UsageFormat format,
                                                UsageAt at, UsageParts& parts);

// The longest stored response id kept (OpenAI's are "resp_" and 48 hex digits: 53 bytes);
// a longer one is not recorded, so its later requests answer 404 (proxy/stored_response.h).
constexpr uint32_t stored_response_id_bytes_max = 63;  // record_foreign_id_bytes_max.

// Whether `id` may be a response id: 1..stored_response_id_bytes_max bytes of
// [A-Za-z0-9_-].
[[nodiscard]] bool stored_response_id_valid(std::string_view id);

// The id of a stored Responses object in a document (padded for simdjson): the response
// itself ({"id":…,"store":…}) or an event carrying it ({"response":{"id":…}}). Empty when
// there is none, it is not a valid id, or the object says "store": false.
[[nodiscard]] std::string_view stored_response_id_read(std::string_view padded_json,
                                                       bool is_in_response);

// usage_from_json and, in the same walk, what stored_response_id_read(padded_body, false)
// gives: a whole Responses answer is parsed once for both. The same results for every
// well-formed document (the fuzz target checks it); when the walk fails the id is read on
// its own. response_id points into the body or the shard's parser (valid until the next
// document is read).
[[nodiscard]] bool usage_and_response_id_from_json(std::string_view padded_body, UsageFormat format,
                                                   UsageCounts& counts,
                                                   std::string_view& response_id);

// Folds parts into counts (has_usage copied; total computed when not reported).
UsageCounts usage_counts_from_parts(const UsageParts& parts, UsageFormat format);

}  // namespace rw
