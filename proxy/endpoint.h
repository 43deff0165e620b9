// proxy/endpoint.h — the API endpoints the gateway proxies: their paths and the usage
// format each answers in. Constant data, any thread.
#pragma once

#include <cstdint>
#include <string_view>

#include "proxy/usage.h"

namespace rw {

enum class Endpoint : uint8_t {
    chat,
    completions,
    embeddings,
    responses,
    messages,
    count_tokens,
    images_generations,
    audio_speech,
    moderations,
    rerank,
    responses_input_tokens,
};

struct EndpointInfo {
    std::string_view path;
    Endpoint endpoint;
    UsageFormat format;
    bool is_anthropic;  // Served by anthropic channels (only), answered in Anthropic's shape.
    bool is_free;       // The provider charges nothing for it: its row carries 0 tokens.
    bool is_binary;     // A 2xx answer is bytes (audio), relayed as they arrive, not read whole.
    bool has_output;    // It generates output tokens (a budget reserves them); embeddings do not.
};

[[nodiscard]] const EndpointInfo& endpoint_info(Endpoint endpoint);

// The endpoint served at `path`, or nullptr.
[[nodiscard]] const EndpointInfo* endpoint_find(std::string_view path);

// The client-facing (and upstream) path of an endpoint, e.g. "/v1/chat/completions".
[[nodiscard]] std::string_view endpoint_path(Endpoint endpoint);

}  // namespace rw
