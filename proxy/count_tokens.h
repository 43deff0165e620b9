// proxy/count_tokens.h — POST /v1/messages/count_tokens for a model no anthropic channel
// serves (an OpenAI or OpenAI-compatible channel does): a local estimate, since those
// providers have no such endpoint. Shard thread only.
#pragma once

#include <cstdint>

namespace rw {

struct Gateway;
struct ProxyRequest;

// The estimate: ceil(request body bytes / 4), the billing rule's prompt estimate. Rough
// (it counts JSON syntax and the model name too) but never low for English text.
[[nodiscard]] uint64_t count_tokens_estimate(uint64_t body_bytes);

// Answers an admitted request {"input_tokens":N,"estimated":true} with the header
// x-ringway-token-count: estimated, and finishes it: no upstream was reached, so there is
// no usage record.
void count_tokens_serve(Gateway& gateway, ProxyRequest& request);

}  // namespace rw
