// proxy/json_fields.h — the fields ringway reads from a client request body (model, stream,
// stream_options.include_usage) with simdjson On Demand, their byte spans in the body, and
// the rewrite that renames the model and forces include_usage while keeping every other
// byte identical. Called by the request path after the body is complete (shard thread).
// Bodies are contiguous and followed by json_padding_bytes readable bytes (simdjson's
// padded reads); every output body in the arena is padded the same way.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <string_view>

#include "arena/arena.h"
#include "core/limits.h"
#include "core/text.h"

namespace rw {

// Readable bytes after every JSON document handed to simdjson. core/limits.h's
// body_padding_bytes promises the same 64 for client bodies. json_document_bytes_max
// (core/limits.h) is the shard parser's default ceiling on one document; simdjson's On
// Demand buffers cost about six bytes per document byte.
constexpr uint32_t json_padding_bytes = simdjson::SIMDJSON_PADDING;
static_assert(json_padding_bytes == body_padding_bytes);

// The shard thread's one On Demand parser, shared by json_fields, usage and sse_scan. It
// is thread_local because a parser holds the buffers of the document being read and only
// one document is read at a time on a shard. Its buffers grow to the largest document seen
// (a heap allocation, up to its max capacity); json_parser_reserve() sizes them at shard
// start so the data plane does not allocate. Documents above the max fail cleanly.
[[nodiscard]] simdjson::ondemand::parser& json_thread_parser();
[[nodiscard]] bool json_parser_reserve(uint32_t capacity_bytes, uint32_t document_bytes_max);

// Why a body was refused. Everything but none and arena_exhausted is the client's fault
// and answered with 400 and request_fields_error_message(); arena_exhausted is local (503).
enum class RequestFieldsError : uint8_t {
    none,
    not_json,    // Not one well-formed JSON document (trailing bytes too).
    not_object,  // Valid JSON, but the top level is not an object.
    too_large,   // Above the parser's document_bytes_max.
    model_missing,
    model_not_string,
    stream_not_bool,            // null counts as absent, like the OpenAI API.
    stream_options_not_object,  // null counts as absent.
    include_usage_not_bool,     // null counts as present-and-false (rewritten to true).
    duplicate_key,              // A key ringway reads appears twice.
    output_limit_not_integer,   // max_tokens & co. not a non-negative integer (null: absent).
    choices_not_integer,        // n not a positive integer (null: absent).
    arena_exhausted,
};

// Byte range in the original body.
struct JsonSpan {
    uint32_t offset;
    uint32_t bytes;
};

// The result of request_fields_parse(). Spans index the body that was parsed; model points
// into that body (no escapes) or into the request arena (unescaped copy). When a has_ flag is
// false its span and value are zero.
struct RequestFields {
    std::string_view model;                // Unescaped value; in the body or the arena.
    JsonSpan model_span;                   // Raw token with its quotes.
    JsonSpan stream_options_span;          // The object '{'..'}' or the null token.
    JsonSpan include_usage_span;           // Raw value token (true, false or null).
    uint32_t object_end_offset;            // The top-level object's closing '}'.
    uint32_t member_count;                 // Top-level members.
    uint32_t stream_options_member_count;  // Members of stream_options.
    bool has_model;
    bool has_stream;
    bool is_streaming;            // "stream": true.
    bool has_stream_options;      // Present and not null.
    bool is_stream_options_null;  // "stream_options": null (span is the null token).
    bool has_include_usage;       // Present (true, false or null).
    bool include_usage;           // Its value; null reads as false.
    // The most output the request allows: the largest of max_tokens, max_completion_tokens
    // and max_output_tokens present, times n when n is given. Budgets reserve it.
    bool has_output_limit;
    uint64_t output_tokens_max;
    uint64_t choices_count;  // n; 1 when absent.
    // Responses: a well-formed previous_response_id (arena copy); empty otherwise. Routes
    // the request to the channel that holds that response (proxy/stored_response.h).
    std::string_view previous_response_id;
};

// Reads the fields from padded_body (json_padding_bytes readable after it). Duplicate keys
// are refused rather than resolved: ringway would route and bill by one and the upstream
// might act on the other. Keys are compared unescaped for the same reason ("mod\u0065l"
// is "model"). fields is complete even when the result is model_missing; for other errors
// its content is unspecified. The model may be copied into arena (escapes only).
[[nodiscard]] RequestFieldsError request_fields_parse(Arena& arena, std::string_view padded_body,
                                                      RequestFields& fields);

std::string_view request_fields_error_code(RequestFieldsError error);     // snake_case
std::string_view request_fields_error_message(RequestFieldsError error);  // One sentence.
std::string_view request_fields_error_param(RequestFieldsError error);    // "model", or empty.

// The body to send upstream: the model value replaced by new_model (JSON-escaped; empty
// keeps the client's) and, when ensure_include_usage, stream_options.include_usage forced
// to true (inserted, or its value replaced), and added_member (",\"name\":value", e.g. a
// strict key's injected max_tokens; empty: none) appended as the last top-level member.
// Every other byte is unchanged. fields must come
// from request_fields_parse() on body with has_model when new_model is not empty.
// Returns body itself when nothing changes; otherwise a new body in arena followed by
// json_padding_bytes zero bytes outside the view. Returns an empty view when the arena
// refuses memory (a parsed body is never empty, so empty always means failure).
[[nodiscard]] std::string_view request_rewrite(Arena& arena, std::string_view body,
                                               const RequestFields& fields,
                                               std::string_view new_model,
                                               bool ensure_include_usage,
                                               std::string_view added_member = {});

// Escapes text into the arena with core/text.h's escaper (without the quotes). False when
// the arena refuses memory.
[[nodiscard]] bool json_escape_to_arena(Arena& arena, std::string_view text,
                                        std::string_view& escaped);

}  // namespace rw
