// proxy/probe.h — an operator's probe of one channel, now: a minimal request that costs
// nothing (GET /v1/models with the channel's key) to the address the resolver checked
// (RULES security §5), over TLS with the data plane's verification for https channels.
// The outcome goes to the shared channel health like a live attempt's (2xx brings the
// channel up at once; 401/403 takes it down; 429 skips it; a 5xx, connect error or
// timeout counts as a server failure). Blocking, with a total deadline: it runs on the
// admin thread (POST /admin/channels/{id}/test), never on a shard. The composition root
// hands it to the admin API as a function pointer, so proxy/admin/ links none of this.
#pragma once

#include <cstdint>
#include <string>

#include "storage/snapshot.h"

namespace rw {

class ChannelHealthBoard;
class Resolver;

struct ProbeRequest {
    int64_t channel_id = 0;
    ChannelKind kind = ChannelKind::openai;
    std::string api_key;  // Wiped by the caller after the probe.
    bool auto_disable = true;
};

struct ProbeOutcome {
    bool is_ok = false;   // The provider answered 2xx.
    uint16_t status = 0;  // Its HTTP status; 0 when none came.
    int64_t latency_ms = 0;
    std::string error;  // Why not ok (never a secret, never the provider's body).
};

using ChannelProbeFn = ProbeOutcome (*)(void* context, const ProbeRequest& request);

struct ProbeDeps {
    Resolver* resolver = nullptr;
    ChannelHealthBoard* health = nullptr;
    uint32_t timeout_ms = 10000;  // Connect, TLS, request and status line together.
};

// ChannelProbeFn over a ProbeDeps context.
[[nodiscard]] ProbeOutcome channel_probe(void* context, const ProbeRequest& request);

}  // namespace rw
