// proxy/translate_shared.h — the mappings the whole-answer and stream translators share:
// stop reasons and usage, each side's names. Internal to translate_*.cc.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace rw {

// Usage in Anthropic's terms: input excludes the cached and cache-written tokens (OpenAI's
// prompt_tokens includes its cached ones; written ones are Anthropic's only).
struct TranslatedUsage {
    uint64_t input;
    uint64_t output;
    uint64_t cache_read;
    uint64_t cache_write;
    uint64_t reasoning;  // Part of output (OpenAI's completion_tokens_details).
};

class Arena;
struct StreamTranslator;

// What the two stream translators from Chat chunks (to Anthropic events, to Responses
// events) write and take alike (translate_stream.cc).
// `event: name\ndata: ` — the head of an SSE event; the caller writes its data and "\n\n".
void sse_event_open(std::string& out, std::string_view name);
// Grows an arena buffer holding `used` bytes to at least `needed` bytes (doubling from
// 1 KiB; the bytes kept); false when the arena has no room.
[[nodiscard]] bool arena_buffer_grow(Arena& arena, char*& buffer, uint32_t used, uint32_t& capacity,
                                     uint64_t needed);
// The chunk's usage (when it has one) into t's counts.
void chat_chunk_usage(StreamTranslator& t, simdjson::dom::object chunk);
// The choice's finish_reason (when it has one) into t.finish_reason.
void chat_choice_finish(StreamTranslator& t, simdjson::dom::object choice);

// Copies text, cut to capacity - 1 bytes at a UTF-8 character boundary, NUL-terminated.
void copy_field(char* target, size_t capacity, std::string_view text);

// Anthropic stop_reason → OpenAI finish_reason, and back.
[[nodiscard]] std::string_view finish_from_stop_reason(std::string_view stop_reason);
[[nodiscard]] std::string_view stop_reason_from_finish(std::string_view finish_reason);

// The usage objects, each side's shape.
void chat_usage_write(std::string& out, const TranslatedUsage& usage);
void anthropic_usage_write(std::string& out, const TranslatedUsage& usage);
[[nodiscard]] TranslatedUsage usage_from_anthropic(simdjson::dom::object usage);
[[nodiscard]] TranslatedUsage usage_from_chat(simdjson::dom::object usage);

}  // namespace rw
