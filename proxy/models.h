// proxy/models.h — GET /v1/models: the models of the enabled channels the key may use, in
// OpenAI's list format. Shard thread only.
#pragma once

namespace rw {

struct Gateway;
struct ProxyRequest;

// Answers an admitted request (its key checked) and finishes it; no upstream, no record.
void models_serve(Gateway& gateway, ProxyRequest& request);

}  // namespace rw
