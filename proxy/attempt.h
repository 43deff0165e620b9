// proxy/attempt.h — one try of a request on one channel: a pooled or new upstream
// connection, the request head and body sent in one sendmsg, and what becomes of the try
// when it fails. Retries happen only when the upstream cannot have acted on the request
// (the fault's is_retry_safe, RULES §6) and run at the end of the loop turn, never from
// inside the completion that failed the try. Shard thread only.
#pragma once

#include <cstdint>

#include "proxy/fault.h"

namespace rw {

struct Gateway;
struct ProxyRequest;
struct UpstreamConn;

// Starts the current candidate's attempt (request.attempt_index).
void attempt_start(Gateway& gateway, ProxyRequest& request);

// The attempt on `upstream` failed with `fault`: the channel counts a failure, the
// connection is closed, and the next candidate is queued when the fault is retry-safe,
// nothing reached the client, and one is left; otherwise the request finishes with it.
void attempt_failed(Gateway& gateway, ProxyRequest& request, UpstreamConn& upstream, Fault fault);

// The shared channel health hears how the current attempt ended on its channel:
// Fault::none a success; upstream_auth_failed an auth failure; a 429 head a rate limit
// (with its Retry-After); any other upstream fault a server failure. The gateway's own
// faults say nothing about the channel (a trial they held is given back).
void attempt_health_report(Gateway& gateway, ProxyRequest& request, int64_t channel_id,
                           Fault fault);

// Turn end: starts the attempts attempt_failed queued, and those that waited for the slot
// of an idle pooled connection closed to make room (attempt_start, table full).
void attempt_retries_run(Gateway& gateway);

// Detaches a finished response's connection from its request: back to the channel's
// keep-alive list when it may serve another request (RULES §2), else closed.
void attempt_release_upstream(Gateway& gateway, UpstreamConn& upstream, bool is_reusable);

// The upstream's head is complete and the answer is committed to it (no other attempt): its
// relayed header lines keep their bytes, the rest of their worst-case buffer
// (upstream_relayed_headers_bytes_max) goes back to the arena when nothing came after it.
// A stream's arena then spans one page less (about 4 KiB per open stream).
void attempt_relayed_headers_trim(ProxyRequest& request);

// Completions of the attempt's connect and send.
void attempt_on_connect(Gateway& gateway, UpstreamConn& upstream, int result);
void attempt_on_send(Gateway& gateway, UpstreamConn& upstream, int result);

// Upstream deadlines (connect, first byte, idle between bytes, keep-alive), checked by a
// sweep over the pool's used slots every timer_sweep_ms, like the client ones.
void attempt_sweep(Gateway& gateway);

}  // namespace rw
