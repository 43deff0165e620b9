// proxy/probe.h — a probe of one channel, on the admin thread: an operator's (POST
// /admin/channels/{id}/test) or the idle trial of a down channel whose backoff passed with
// no live request to take it (idle_probe.h). It goes to the address the resolver checked
// (RULES security §5), over TLS with the data plane's verification for https channels.
// A channel with a probe_model is sent a minimal request on it (max_tokens 1: chat, or
// messages on anthropic channels), which reaches the model and may cost a token or two:
// its usage row is recorded under the system key (created by migration 11, never usable
// by a client) through the writer's control queue, priced like any row, so probe spend is
// in /admin/usage and the quota/spend invariant holds. Without one, GET /v1/models with
// the channel's key (free; no row). The outcome goes to the shared channel health like a
// live attempt's (2xx brings the channel up; 401/403 takes it down; 429 skips it; a 5xx,
// connect error or timeout counts as a server failure); an idle trial settles the trial
// it holds. Blocking, with a total deadline, never on a shard. The composition root hands
// it to the admin API as a function pointer, so proxy/admin/ links none of this.
#pragma once

#include <cstdint>
#include <string>

#include "storage/snapshot.h"

namespace rw {

class ChannelHealthBoard;
class Resolver;
class Writer;

struct ProbeRequest {
    int64_t channel_id = 0;
    ChannelKind kind = ChannelKind::openai;
    std::string api_key;  // Wiped by the caller after the probe.
    bool auto_disable = true;
    std::string probe_model;  // Empty: GET /v1/models.
    bool is_trial = false;    // Holds the channel's half-open trial (judge() said trial).
};

struct ProbeOutcome {
    bool is_ok = false;   // The provider answered 2xx.
    uint16_t status = 0;  // Its HTTP status; 0 when none came.
    int64_t latency_ms = 0;
    std::string error;         // Why not ok (never a secret, never the provider's body).
    bool is_recorded = false;  // A usage row went to the writer (a probe_model request).
};

using ChannelProbeFn = ProbeOutcome (*)(void* context, const ProbeRequest& request);

struct ProbeDeps {
    Resolver* resolver = nullptr;
    ChannelHealthBoard* health = nullptr;
    uint32_t timeout_ms = 10000;  // Connect, TLS, request and the whole answer together.
    // Recording a probe_model request's row: the writer (its control queue, produced by
    // the admin thread only) and the snapshot (the system key, prices), read as reader
    // snapshot_reader. Without a writer a probe_model channel is probed with GET.
    Writer* writer = nullptr;
    SnapshotPublisher* snapshots = nullptr;
    uint32_t snapshot_reader = 0;
};

// ChannelProbeFn over a ProbeDeps context.
[[nodiscard]] ProbeOutcome channel_probe(void* context, const ProbeRequest& request);

}  // namespace rw
