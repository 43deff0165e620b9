// proxy/models.h — GET /v1/models: the concrete models of the enabled channels the key may
// use and the gateway's aliases, in OpenAI's list format, or Anthropic's when the request
// carries anthropic-version. Shard thread only.
#pragma once

namespace rw {

struct Gateway;
struct ProxyRequest;

// Answers an admitted request (its key checked) and finishes it; no upstream, no record.
void models_serve(Gateway& gateway, ProxyRequest& request, bool is_anthropic);

}  // namespace rw
