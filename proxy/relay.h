// proxy/relay.h — the upstream's answer on its way to the client. The response head
// decides the attempt: a 429 or 5xx is retried on the next channel while one is left (the
// upstream refused it; RULES §6); an SSE answer starts the chunked relay; everything else
// is read whole and answered with its status. Stream bytes are relayed as they arrive,
// re-chunked from the recv buffers without copying; the next upstream recv is armed only
// when the client's send queue has room (the relay's back-pressure). Shard thread only.
#pragma once

#include <liburing.h>

#include <cstdint>

namespace rw {

struct Gateway;
struct ProxyRequest;
struct UpstreamConn;

// A recv completion on an upstream connection (plain TCP, or ciphertext for TLS).
void relay_on_recv(Gateway& gateway, UpstreamConn& upstream, const io_uring_cqe& cqe);

// Plaintext of the response in base (a recv buffer lent as bid, or arena memory with
// no_bid; the buffer is the relay's from here on). True while the attempt goes on; false
// once it ended here (failed, retried, or finished).
[[nodiscard]] bool relay_bytes(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request,
                               char* base, uint32_t length_bytes, uint16_t bid);

// The upstream closed (error 0), reset or failed (errno) the connection.
void relay_on_eof(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request, int error);

// RINGWAY_SSE_KEEPALIVE_MS, called by attempt_sweep for a request on an upstream: a streamed
// request whose upstream has relayed nothing yet, once the interval passed since its start,
// gets the 200 stream head (once, unless the upstream's own went out) and a ": keep-alive"
// comment per interval. A fast upstream never meets it: its bytes are unchanged.
void relay_keepalive_tick(Gateway& gateway, ProxyRequest& request, uint64_t now_ms);

// Client send-queue entries that must be free before the next upstream piece is read.
[[nodiscard]] uint32_t relay_room_needed(const ProxyRequest& request);
// The client cannot take another upstream piece now: its send queue is short of room or it
// holds RINGWAY_STREAM_BUFFER_BYTES of recv buffers. The upstream read waits for
// relay_on_client_writable.
[[nodiscard]] bool relay_is_client_behind(const Gateway& gateway, const ProxyRequest& request);

// Room again in the client's send queue: resume reading the upstream if it was paused.
void relay_on_client_writable(Gateway& gateway, ProxyRequest& request);

}  // namespace rw
