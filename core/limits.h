// core/limits.h — every fixed maximum of the shard runtime in one place, with the
// relationships between them as static_asserts. Values an operator tunes come from
// Config (RINGWAY_*); these are the compile-time bounds those values are checked against.
// Header-only constants: any library may include it.
#pragma once

#include <bit>
#include <cstdint>

#include "arena/chunk_pool.h"
#include "storage/config.h"

namespace rw {

constexpr uint32_t shards_max = 256;
constexpr uint32_t conns_per_shard_max = 1u << 20;  // Slot index fits the 32-bit tag field.
constexpr uint32_t ring_entries = 4096;             // SQ size; the CQ is twice that.
constexpr uint32_t recv_buffers_max = 32768;        // Kernel limit for a provided ring.
constexpr uint32_t recv_buffer_bytes_min = 1024;
constexpr uint32_t recv_buffer_bytes_max = 1u << 20;

// A connection parks received buffers it has not parsed yet (pipelined requests that
// arrive while the previous one is answered). Past the pause mark its multishot recv is
// cancelled; the extra room holds CQEs that were already on the way.
constexpr uint32_t conn_pending_bufs_max = 16;
constexpr uint32_t conn_pending_bufs_pause = 8;
// Received pieces up to this size are merged into the last parked buffer (see on_recv).
constexpr uint32_t pending_merge_bytes_max = 512;

// Pieces queued for one client's sends: response heads, chunk framing, arena memory and
// upstream recv buffers lent to the send. One chunk of a relayed stream takes three.
constexpr uint32_t conn_send_segments_max = 32;

// After an error response the connection is half-closed and its input discarded for at
// most this long or this many bytes before the final close (nginx lingering_close), so
// the client reads the error instead of an RST.
constexpr uint32_t linger_ms_max = 2000;
constexpr uint64_t linger_bytes_max = 1u << 20;

// Deadlines are checked by a sweep of the shard's connections at this period; it is the
// granularity of every timeout.
constexpr uint32_t timer_sweep_ms = 25;

// Response heads and small bodies the core writes itself.
constexpr uint32_t response_head_bytes_max = 1024;
constexpr uint32_t metrics_text_bytes_max = 64 * 1024;

// GET /v1/models: distinct models listed at most, and the longest model (or channel) name
// listed; a JSON-escaped byte is at most 6 bytes (\u00XX).
constexpr uint32_t models_listed_max = 256;
constexpr uint32_t model_name_bytes_max = 200;

// TLS session cache (proxy/tls): hosts with a remembered session per context (one context
// serves one channel, so a handful is plenty; the oldest is evicted), and the longest host
// accepted (a DNS name is at most 253 characters, RFC 1035 2.3.4; an IPv6 literal 45).
constexpr uint32_t tls_session_hosts_max = 8;
constexpr uint32_t tls_host_bytes_max = 253;

static_assert(std::has_single_bit(ring_entries));
// Storage sizes its per-shard queues and snapshot readers (shards + the resolver) by this.
static_assert(shards_max + 1 <= storage_shards_max);
static_assert(std::has_single_bit(recv_buffers_max));
static_assert(conn_pending_bufs_pause < conn_pending_bufs_max);
static_assert(response_head_bytes_max <= chunk_payload_bytes / 4);
static_assert(metrics_text_bytes_max >= chunk_payload_bytes);

}  // namespace rw
