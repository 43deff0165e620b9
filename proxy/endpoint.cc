// proxy/endpoint.cc — the endpoint table (see endpoint.h).
#include "proxy/endpoint.h"

#include "core/assert.h"

namespace rw {
namespace {

// {path, endpoint, usage format, is_anthropic, is_free, is_binary, has_output}
constexpr EndpointInfo endpoints[] = {
    {"/v1/chat/completions", Endpoint::chat, UsageFormat::chat, false, false, false, true},
    {"/v1/completions", Endpoint::completions, UsageFormat::chat, false, false, false, true},
    {"/v1/embeddings", Endpoint::embeddings, UsageFormat::embeddings, false, false, false, false},
    {"/v1/responses", Endpoint::responses, UsageFormat::responses, false, false, false, true},
    {"/v1/messages", Endpoint::messages, UsageFormat::anthropic_messages, true, false, false, true},
    // Anthropic's token counting is free of charge [docs.anthropic.com: Token counting].
    {"/v1/messages/count_tokens", Endpoint::count_tokens, UsageFormat::anthropic_messages, true,
     true, false, false},
    // gpt-image answers carry usage as the Responses API names it (input_tokens,
    // output_tokens, total_tokens, input_tokens_details); dall-e answers carry none.
    {"/v1/images/generations", Endpoint::images_generations, UsageFormat::responses, false, false,
     false, true},
    // The answer is the audio itself (chunked, or Content-Length): no usage in it.
    {"/v1/audio/speech", Endpoint::audio_speech, UsageFormat::responses, false, false, true, true},
    // OpenAI's moderation answers carry no usage; rerank servers (Jina, vLLM, Cohere-style
    // OpenAI-compatible ones) report {"usage":{"prompt_tokens"?,"total_tokens"}} or nothing.
    {"/v1/moderations", Endpoint::moderations, UsageFormat::embeddings, false, false, false, false},
    {"/v1/rerank", Endpoint::rerank, UsageFormat::embeddings, false, false, false, false},
    // OpenAI's input token counts [platform.openai.com: Responses input tokens], free like
    // count_tokens; served by openai channels only (a chat-only channel has no such path).
    {"/v1/responses/input_tokens", Endpoint::responses_input_tokens, UsageFormat::responses, false,
     true, false, false},
    // Uploads (multipart/form-data), relayed as they arrive. gpt-4o-transcribe and gpt-image
    // answers carry usage as the Responses API names it (input_tokens, output_tokens);
    // whisper-1 reports {"type":"duration","seconds":N} or nothing, dall-e nothing.
    {"/v1/images/edits", Endpoint::images_edits, UsageFormat::responses, false, false, false, true,
     true},
    {"/v1/audio/transcriptions", Endpoint::audio_transcriptions, UsageFormat::responses, false,
     false, false, true, true},
    {"/v1/audio/translations", Endpoint::audio_translations, UsageFormat::responses, false, false,
     false, true, true},
    // Stored responses on the openai channel that created them; free (0-token rows). A
    // background response's tokens are on its creation's row (stored_response.h).
    {"GET /v1/responses/{id}", Endpoint::responses_retrieve, UsageFormat::responses, false, true,
     false, false, false, true},
    {"DELETE /v1/responses/{id}", Endpoint::responses_delete, UsageFormat::responses, false, true,
     false, false, false, true},
    {"/v1/responses/{id}/cancel", Endpoint::responses_cancel, UsageFormat::responses, false, true,
     false, false, false, true},
    {"GET /v1/responses/{id}/input_items", Endpoint::responses_input_items, UsageFormat::responses,
     false, true, false, false, false, true},
};

}  // namespace

const EndpointInfo* endpoint_find(std::string_view path) {
    for (const EndpointInfo& info : endpoints) {
        if (path == info.path && !info.is_stored) {
            return &info;
        }
    }
    return nullptr;
}

const EndpointInfo& endpoint_info(Endpoint endpoint) {
    for (const EndpointInfo& info : endpoints) {
        if (info.endpoint == endpoint) {
            return info;
        }
    }
    RW_UNREACHABLE();
}

std::string_view endpoint_path(Endpoint endpoint) {
    return endpoint_info(endpoint).path;
}

}  // namespace rw
