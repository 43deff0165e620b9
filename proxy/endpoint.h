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
    images_edits,
    audio_transcriptions,
    audio_translations,
    // Stored responses (stored_response.h): routed by the response id, not by a model.
    responses_retrieve,
    responses_delete,
    responses_cancel,
    responses_input_items,
};

struct EndpointInfo {
    std::string_view path;
    Endpoint endpoint;
    UsageFormat format;
    bool is_anthropic;  // Served by anthropic channels (only), answered in Anthropic's shape.
    bool is_free;       // The provider charges nothing for it: its row carries 0 tokens.
    bool is_binary;     // A 2xx answer is bytes (audio), relayed as they arrive, not read whole.
    bool has_output;    // It generates output tokens (a budget reserves them); embeddings do not.
    // multipart/form-data, relayed as it arrives (upload.h); its model is the `model` part.
    bool is_multipart = false;
    // A stored response's request (stored_response.h): its path holds the id, so `path`
    // here is the text its usage row names it by, never a request path.
    bool is_stored = false;
};

[[nodiscard]] const EndpointInfo& endpoint_info(Endpoint endpoint);

// The endpoint served at `path`, or nullptr.
[[nodiscard]] const EndpointInfo* endpoint_find(std::string_view path);

// The client-facing (and upstream) path of an endpoint, e.g. "/v1/chat/completions".
[[nodiscard]] std::string_view endpoint_path(Endpoint endpoint);

}  // namespace rw
