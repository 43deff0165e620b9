// proxy/endpoint.cc — the endpoint table (see endpoint.h).
#include "proxy/endpoint.h"

#include "core/assert.h"

namespace rw {
namespace {

// {path, endpoint, usage format, is_anthropic, is_free}
constexpr EndpointInfo endpoints[] = {
    {"/v1/chat/completions", Endpoint::chat, UsageFormat::chat, false, false},
    {"/v1/completions", Endpoint::completions, UsageFormat::chat, false, false},
    {"/v1/embeddings", Endpoint::embeddings, UsageFormat::embeddings, false, false},
    {"/v1/responses", Endpoint::responses, UsageFormat::responses, false, false},
    {"/v1/messages", Endpoint::messages, UsageFormat::anthropic_messages, true, false},
    // Anthropic's token counting is free of charge [docs.anthropic.com: Token counting].
    {"/v1/messages/count_tokens", Endpoint::count_tokens, UsageFormat::anthropic_messages, true,
     true},
    // OpenAI's input token counts [platform.openai.com: Responses input tokens], likewise;
    // served by openai channels only (a chat-only openai-compatible one has no such path).
    {"/v1/responses/input_tokens", Endpoint::responses_input_tokens, UsageFormat::responses, false,
     true},
};

}  // namespace

const EndpointInfo* endpoint_find(std::string_view path) {
    for (const EndpointInfo& info : endpoints) {
        if (path == info.path) {
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
