// proxy/translate.h — Chat Completions ⇄ Anthropic Messages translation, for a client whose
// protocol is not its channel's: an OpenAI client (/v1/chat/completions) on an anthropic
// channel, an Anthropic client (/v1/messages) on an openai or openai-compatible one. Pure
// functions over bytes (no sockets, no request state): the request body
// (translate_request.cc), a whole answer or an upstream error body (translate_response.cc)
// and a stream, event by event, through a state machine that lives in the request's arena
// (translate_stream.cc). A request field that cannot be carried over is refused with a 400
// naming it, never dropped. Passthrough (same protocol both sides) never comes here.
// Documents are read with a thread_local simdjson DOM parser (translation only; the
// passthrough path keeps its On Demand parser and allocates nothing). Shard thread or tests.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "arena/arena.h"
#include "proxy/usage.h"

namespace rw {

enum class Translation : uint8_t {
    none,
    chat_to_messages,   // OpenAI client, anthropic channel: request Chat→Messages, answer back.
    messages_to_chat,   // Anthropic client, openai channel: request Messages→Chat, answer back.
    responses_to_chat,  // Responses client, chat-only channel: request Responses→Chat, back.
};

// The per-model default max_tokens an Anthropic upstream requires when a Chat request sets
// none (RINGWAY_ANTHROPIC_MAX_TOKENS: "pattern=N,…", a pattern being a model name or a
// "prefix*"; the first match wins; otherwise translate_max_tokens_fallback).
constexpr uint64_t translate_max_tokens_fallback = 4096;
constexpr uint32_t translate_max_tokens_rules_max = 16;
struct MaxTokensRule {
    char pattern[64];
    uint32_t pattern_bytes;
    bool is_prefix;
    uint64_t max_tokens;
};
struct MaxTokensDefaults {
    MaxTokensRule rules[translate_max_tokens_rules_max];
    uint32_t count = 0;
};
// Parses the env value; false (with error set) on a malformed list.
[[nodiscard]] bool max_tokens_defaults_parse(std::string_view text, MaxTokensDefaults& out,
                                             std::string& error);
[[nodiscard]] uint64_t max_tokens_default(const MaxTokensDefaults& defaults,
                                          std::string_view model);

struct TranslateRequestOptions {
    std::string_view model;       // The model the upstream gets (after the channel's map).
    uint64_t max_tokens_default;  // chat_to_messages: when the client set no limit.
    bool include_usage_upstream;  // messages_to_chat streams: ask for the usage chunk.
};

// The upstream body for `padded_body` (json_padding_bytes readable after it) into out.
// False when a field cannot be translated: error is then one sentence naming it (the 400's
// message) and param the field's name.
[[nodiscard]] bool translate_request(Translation translation, std::string_view padded_body,
                                     const TranslateRequestOptions& options, std::string& out,
                                     std::string& error, std::string& param);

// A whole upstream answer (2xx) in the client's format. model_requested names the model when
// the upstream's answer does not; created_s is a chat.completion's "created". False when the
// body is not the upstream's format.
[[nodiscard]] bool translate_response(Translation translation, std::string_view padded_body,
                                      std::string_view model_requested, uint64_t created_s,
                                      std::string& out);

// An upstream error body (4xx/5xx) in the client's error shape; a body that is not the
// upstream's error JSON becomes a generic one carrying the status.
void translate_error(Translation translation, std::string_view padded_body, uint16_t status,
                     std::string& out);

// The upstream path a translated request goes to ("/v1/messages" or "/v1/chat/completions").
[[nodiscard]] std::string_view translate_upstream_path(Translation translation);
// The usage format the upstream answers in (metering reads the upstream's own usage).
[[nodiscard]] UsageFormat translate_upstream_format(Translation translation);

// ---- Streams -----------------------------------------------------------------------------

enum class OpenBlock : uint8_t { none, text, thinking, tool };

constexpr uint32_t translate_tool_blocks_max = 128;      // Content blocks / tool calls tracked.
constexpr uint32_t translate_line_bytes_max = 1u << 20;  // One SSE line (event data) at most.
// responses_to_chat: a streamed answer's output items are kept for response.completed.
constexpr uint32_t translate_output_bytes_max = 16u << 20;

// The state of one translated stream (arena; trivially destructible).
struct StreamTranslator {
    Translation translation;
    bool include_usage;  // chat_to_messages: the client asked for the usage chunk.
    bool is_started;     // The first client event went out.
    bool is_finished;    // The final client event went out ([DONE] / message_stop).
    bool had_error;      // The upstream's error event was translated.
    bool has_usage;
    bool saw_cr;           // The last byte fed was a CR (a CRLF may straddle pieces).
    OpenBlock open_block;  // messages_to_chat: the Anthropic block now open.
    int32_t open_tool;     // messages_to_chat: the OpenAI tool index of the open block.
    uint32_t next_block;   // messages_to_chat: the next Anthropic block index.
    uint32_t tool_count;   // chat_to_messages: tool calls started.
    int16_t block_tool[translate_tool_blocks_max];  // chat_to_messages: block → tool index.
    char finish_reason[24];
    char id[96];
    char model[128];
    uint64_t created_s;
    uint64_t input_tokens;  // As the client's format names them (see usage_write).
    uint64_t output_tokens;
    uint64_t cache_read_tokens;
    uint64_t cache_write_tokens;
    uint64_t reasoning_tokens;
    // The current line (a piece may end inside one) and the current event's data.
    char* line;
    uint32_t line_bytes;
    uint32_t line_capacity;
    char* data;
    uint32_t data_bytes;
    uint32_t data_capacity;
    bool has_data;
    // responses_to_chat: the open output item's text or arguments, the finished items' JSON
    // (response.completed repeats them), the open item's index and the event counter.
    char* item_text;
    uint32_t item_text_bytes;
    uint32_t item_text_capacity;
    char* output;
    uint32_t output_bytes;
    uint32_t output_capacity;
    uint32_t output_index;
    uint64_t sequence;
    char call_id[96];
    char tool_name[128];
    Arena* arena;  // The arena the translator lives in (the end of a stream grows it).
};

// A translator in arena for the client's stream; nullptr when it refuses memory.
[[nodiscard]] StreamTranslator* stream_translator_create(Arena& arena, Translation translation,
                                                         bool include_usage,
                                                         std::string_view model_requested,
                                                         uint64_t created_s);

// Feeds upstream stream bytes (any cut) and appends the client's events to out. False when
// the stream cannot be translated (a line over translate_line_bytes_max, arena exhausted):
// the caller ends the stream with its error.
[[nodiscard]] bool stream_translate_feed(Arena& arena, StreamTranslator& translator,
                                         std::string_view bytes, std::string& out);

// The upstream stream ended cleanly: anything the client still needs to close its stream
// ([DONE], message_delta + message_stop) when the upstream's end marker was not seen.
void stream_translate_finish(StreamTranslator& translator, std::string& out);

}  // namespace rw
